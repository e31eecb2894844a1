"""The OTS-SAT digital twin: a separate process (``python -m twin``) serving the simulated satellite and
simulated bench instruments over their real protocols. Nothing outside ``twin`` imports it."""
