"""`bench`: the command line of the OTS-SAT test bench — the outermost layer, which only parses, calls the
domain (`bench/`) and the reports (`reports/`), and prints.

bench run                 run the test plans against the bench in the config (default: the twin)
bench twin                serve the digital twin in the foreground on its fixed ports
bench safe                emergency stop: every output off now, and the bench interlocked until --clear
bench status              each known bench: free, or held by whom, since when, running which test
bench report RUN_DIR      rebuild a run's report from its journal (also for killed runs)
bench verify RUN_DIR      check a run's files against its sealed manifest
bench check               validate a bench config and the limits file without touching hardware
bench shell               command the satellite by hand (power, tc, tm, events); one-shot: bench tc | tm | power
bench db import | trend | compare   the results database

    entry        the console script: serves the emergency stop before anything heavy is imported
    stop         `bench safe` in plain Python (no typer/rich/pydantic): the fast path of the stop
    app          the typer application: run, twin, report, verify, check
    reservation  safe (documented and --clear) and status
    shell        shell, tc, tm, power: commanding by hand (the domain: bench/manual.py)
    results      db import, trend, compare     tables   their text tables

Nothing is imported here: `import bench.cli.entry` must stay cheap.
"""
