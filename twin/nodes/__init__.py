"""The simulated OTS-SAT nodes (OBC, EPS, ADCS, COMMS, PAYLOAD) and the satellite that puts them on the CAN bus."""
