"""The bench domain: what a test on OTS-SAT means, independent of pytest and of any one instrument.

The layer sits between the pytest plugin (`fixtures/`) and the drivers (`instruments/`). It turns a bench
config into a session that owns connected, identified and protected instruments, guards every setting by the
DUT envelope, talks to the satellite, judges measurements against limits, and journals all of it. It never
imports the reports (presentation) — except its command line, `bench.cli` — and never the twin, which it
reaches only through the protocols and endpoints of the bench config (the twin's command line included: the
PSU dialect names the config accepts are the contract's, cross-checked with the twin by a test).

    config, levels       bench config schema (pydantic) and its loader; model levels EM/QM/FM/PFM
    icd, limits          the satellite's interface (ICD YAML) and the limits file, as data
    session, roles       a bench session: every instrument opened by role, checked, protected
    envelope             GuardedSupply: the DUT envelope enforced before any byte reaches the supply
    dut_power            the DUT's power states (off → on) over the guarded supply
    safe_state           every instrument back to outputs off on every way a run ends
    emergency, stop      the emergency-stop latch and the stop itself; reservation: who owns a bench
    satellite/, link/    the CSP/PUS link to the satellite (facade, histories, commanding) and its codecs
    rf, dsp/             the RF front end at the antenna port, and the signal processing of its captures
    measurement          measurements, limits, verdicts and margins (immutable records)
    journal              the run journal: append-only JSON Lines, fsync'd at test boundaries
    predicates, waiting  composable predicates and the one await: no sleeps in test plans
    asrun, calibration   the as-run context of a run; instrument calibration status
    plotdata             plain plot data handed to `reports/` to draw
    live/                the live bench view: a web page beside a run (feed, prompts, controls, server)
    twin_launcher        the twin as a subprocess; cli/: the `bench` command line

Heavy dependencies (pydantic, pyvisa, numpy) load when used, not on import of the modules the test plans see:
`pytest --collect-only test_plans` must stay fast (benchmarks/bench_collect.py).
"""
