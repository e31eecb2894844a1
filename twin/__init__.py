"""The OTS-SAT digital twin: a separate process (``python -m twin``) serving the simulated satellite and
simulated bench instruments over their real protocols. Nothing outside ``twin`` imports it (the bench reaches it
through its protocols and command line, docs/contracts.md), and it imports no bench code: its codecs are a second,
independent implementation of the same specs, which is what makes it a check of the bench rather than a mirror.

    app, __main__           the process: build the world, start each service (one line each in a registry)
    world                   clock, seeded randomness, faults, tickers, the DUT's power: what everything shares
    nodes/                  the satellite's nodes on the simulated CAN bus, behind a small host protocol
    canbus, canbus_wire     the bus, served over socketcand and slcan; csp, pus: the protocol codecs
    psu, psu_service        the bench supply and its SCPI service; dialects, dialect_*: the instruments it imitates
    power_model             the satellite's main bus as the supply's load (inrush, brownout, noise)
    rf_link, rf_instruments the RF path and the analyzer/generator services; uhf_modem: the radio's physical layer
    console, usbiss, eps_i2c, sidechannels   the OBC console and the I2C side channel to the EPS
    control                 the control endpoint for tests and fault injection
"""
