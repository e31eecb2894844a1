"""The simulated OTS-SAT nodes (OBC, EPS, ADCS, COMMS, PAYLOAD) and the satellite that puts them on the CAN bus.

Each node answers its CSP services and PUS telecommands as the ICD describes them and reaches the rest of the
twin only through the small host protocol in :mod:`twin.nodes.base` (clock, ICD, transmit, time stamp, loads,
randomness), which :mod:`twin.nodes.satellite` implements: no node knows the world, and the module graph has
no circle. A new node is one module here and one entry in the satellite's table.
"""
