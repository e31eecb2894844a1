"""The fault-matrix rig: one real bench run (a pytest subprocess) against a standalone twin, whose plan meets one
fault per test and ends with the bench killed (kill -9) while it holds the DUT powered.

Used by ``tests/faults/test_fault_matrix.py`` (behaviour) and ``benchmarks/bench_fault_latency.py`` (timing).

Each plan test powers the DUT, takes one ``measure(...)``, injects its fault through the twin's control endpoint
(the plan learns the endpoint from ``$FAULT_MATRIX_CONTROL``; it calls ``bench.twin_launcher.twin_control`` and
imports nothing from ``twin`` or ``instruments``) and then does the bench operation that meets the fault. The plan
writes *notes* (JSON lines, ``$FAULT_MATRIX_NOTES``), each with a ``time.monotonic()`` stamp (one clock for every
process of this host, the twin's included):

``decision``  the bench step that met the fault raised, or returned a failed measurement: the bench decided;
``after``     the supply's channel 1 as the twin's control endpoint reports it once the bench's own teardown has
              run (``delivering``, and ``off_since``: when the twin saw the output stop delivering) — read through
              the control endpoint, never SCPI, which would feed the supply's watchdog;
``hold``      the last test holds the DUT powered: the rig kills the bench now.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from safety_rig import LIMITS, TwinHandle, bench_config_for

from bench.waiting import await_true
from reports.run_record import RunRecord, TestRecord, read_journal

__all__ = [
    "HOLD_PLAN",
    "PLAN",
    "WATCHDOG_S",
    "MatrixRun",
    "await_note",
    "bench_process",
    "matrix_config",
    "notes_of",
    "run_matrix",
]

WATCHDOG_S = 2.0  # the supply's I/O watchdog in the matrix run (heartbeat every 0.2 s: ten beats may be missed)

PLAN = textwrap.dedent(
    '''
    """The fault matrix: each test powers the DUT, takes one measurement, injects one fault through the twin's
    control endpoint, then does the bench operation that meets it. The last test holds the DUT powered until the
    bench is killed (kill -9): then only the supply's I/O watchdog can switch it off."""

    import json
    import os
    import time
    from pathlib import Path

    import pytest

    from bench.twin_launcher import twin_control
    from bench.waiting import await_true

    _HOST, _PORT = os.environ["FAULT_MATRIX_CONTROL"].rsplit(":", 1)
    ENDPOINTS = {"control": {"host": _HOST, "port": int(_PORT)}}
    NOTES = Path(os.environ["FAULT_MATRIX_NOTES"])
    BEACON_S = 0.32  # one beacon burst
    LOADS = ("adcs_wheels", "payload", "uhf_tx", "heaters")  # all on: 12.6 W, 3.3 A at 3.8 V (limit 3 A)


    def control(**cmd):
        return twin_control(ENDPOINTS, **cmd)


    def state():
        return control(cmd="state")


    def note(kind, test, **fields):
        with NOTES.open("a") as out:
            out.write(json.dumps({"kind": kind, "test": test, "t": time.monotonic(), **fields}) + "\\n")


    def twin_quiet():
        """No transient fault of an earlier test still running (bus-off, babble, an open umbilical)."""
        now = state()
        nodes = now["satellite"]["nodes"].values()
        return not (
            now["dut"]["umbilical_open"]
            or now["satellite"]["can"]["bus_off"]
            or any(n["faults"]["babbling"] for n in nodes)
        )


    @pytest.fixture(autouse=True)
    def _rig(request):
        """Set up before (so torn down after) the bench's fixtures: once the bench has finished with the test, the
        supply as the twin sees it; then the test's faults are undone for the next test."""
        undo = []  # (fault, params) to send once the bench is done with the test
        yield undo
        channel = state()["psu"]["channels"][0]
        note("after", request.node.name, delivering=channel["delivering"], output=channel["output"],
             off_since=channel["off_since"])
        for name, params in undo:
            control(cmd="fault", name=name, **params)
        await_true(twin_quiet, timeout_s=30, what="the twin's transient faults to end", interval_s=0.05)


    @pytest.fixture
    def fault(_rig):
        """fault(name, **params): inject; after the test a latching fault (on=True) is switched off again and an
        unplugged adapter plugged back."""

        def inject(name, **params):
            reply = control(cmd="fault", name=name, **params)
            if params.get("on") is True:
                _rig.append((name, {**params, "on": False}))
            elif name == "i2c_unplug":
                _rig.append(("i2c_replug", {}))  # same TCP port: the next run's bench can open it
            return reply

        return inject


    @pytest.fixture
    def meets(request):
        """meets(step): the bench operation that meets the fault; notes the moment the bench decided."""

        def run(step):
            try:
                result = step()
            except BaseException:
                note("decision", request.node.name)
                raise
            if str(getattr(result, "verdict", "")) == "fail":  # a measurement judged outside its limit
                note("decision", request.node.name)
            return result

        return run


    def powered(dut_power, measure):
        dut_power.on()
        measure("EPS.BUS_VOLTAGE", dut_power.voltage(), instrument="psu")


    def beacon(satellite):
        def key():
            satellite.send("COMMS.SET_BEACON", enabled=False)
            satellite.send("COMMS.SET_BEACON", enabled=True)  # enabling sends the first beacon at once

        return key


    def test_psu_link_drop(dut_power, measure, meets):
        powered(dut_power, measure)

        def read_through_the_drop():
            # The watchdog heartbeat shares the link: if it meets the dropped connection first (and the driver
            # reconnects), drop it again.
            for _ in range(50):
                control(cmd="fault", name="psu_drop")
                dut_power.voltage()

        meets(read_through_the_drop)


    def test_scpi_error(dut_power, measure, fault, meets):
        powered(dut_power, measure)
        fault("psu_error", count=1, code=-221)
        meets(lambda: dut_power.set_bus_voltage(3.9))


    def test_ocp_trip(dut_power, measure, meets):
        powered(dut_power, measure)
        for load in LOADS:
            control(cmd="load", name=load, on=True)
        await_true(lambda: state()["psu"]["channels"][0]["ocp_tripped"], timeout_s=30, what="the supply's OCP")
        meets(lambda: measure("EPS.IDLE_CURRENT", dut_power.await_stable_current(), instrument="psu"))


    def test_brownout_and_reboot(satellite_on, dut_power, measure, fault, meets):
        satellite_on.enable_hk("OBC")  # a procedure watching the OBC's housekeeping
        measure("EPS.BUS_VOLTAGE", dut_power.voltage(), instrument="psu")
        satellite_on.await_tm("OBC.UPTIME", timeout_s=10)
        boots = state()["dut"]["boot_count"]
        fault("brownout", seconds=0.3)
        await_true(lambda: state()["dut"]["boot_count"] > boots, timeout_s=30, what="the brown-out and reboot")
        meets(lambda: satellite_on.await_tm("OBC.UPTIME", timeout_s=1.5))


    def test_can_bus_off(satellite_on, dut_power, measure, fault, meets):
        measure("EPS.BUS_VOLTAGE", dut_power.voltage(), instrument="psu")
        fault("bus_off", seconds=2)
        satellite_on.await_counters(lambda c: c.bus_off, 30, "the bus-off")
        meets(lambda: satellite_on.ping("OBC", timeout_s=1.0))


    def test_babbling_node(satellite_on, dut_power, measure, fault, meets):
        measure("EPS.BUS_VOLTAGE", dut_power.voltage(), instrument="psu")
        before = satellite_on.counters.non_csp_frames
        fault("babble", node="PAYLOAD", seconds=2)
        # Polled: the link wakes its waiters on CSP traffic, not on each non-CSP frame.
        await_true(lambda: satellite_on.counters.non_csp_frames > before + 100, timeout_s=30, what="the babble")
        meets(lambda: satellite_on.ping("OBC", timeout_s=2.0))
        meets(lambda: satellite_on.send("ADCS.SET_MODE", mode="IDLE"))


    def test_frame_loss(satellite_on, dut_power, measure, fault, meets):
        measure("EPS.BUS_VOLTAGE", dut_power.voltage(), instrument="psu")
        fault("lost_fragment", node="EPS", count=3)  # its verification reports and the HK report each lose one
        meets(lambda: satellite_on.request_hk("EPS", timeout_s=1.0))


    def test_i2c_nack(dut_power, eps_i2c, measure, fault, meets):
        powered(dut_power, measure)
        fault("i2c_nack", address=eps_i2c.address, on=True)
        meets(eps_i2c.get_housekeeping)


    def test_i2c_unplug(dut_power, eps_i2c, measure, fault, meets):
        powered(dut_power, measure)
        fault("i2c_unplug")
        meets(eps_i2c.get_housekeeping)


    def test_console_silent(console, dut_power, measure, fault, meets):
        powered(dut_power, measure)
        console.expect(r"obc> ", timeout_s=10)
        fault("console_silent", on=True)
        meets(lambda: console.command("version", timeout_s=1.0))


    def test_console_garbage(console, dut_power, measure, fault, meets):
        powered(dut_power, measure)
        console.expect(r"obc> ", timeout_s=10)
        fault("console_garbage", on=True)
        for _ in range(8):
            meets(lambda: console.command("version", timeout_s=5.0))


    def test_rf_cable_off(satellite_on, rf, dut_power, measure, fault, meets):
        measure("EPS.BUS_VOLTAGE", dut_power.voltage(), instrument="psu")
        fault("rf_cable_disconnected", on=True)
        meets(lambda: rf.capture(BEACON_S, after_arming=beacon(satellite_on), timeout_s=1.0))


    def test_analyzer_overload(satellite_on, rf, dut_power, measure, fault, meets):
        measure("EPS.BUS_VOLTAGE", dut_power.voltage(), instrument="psu")
        fault("rf_attenuator_missing", on=True)
        meets(lambda: rf.capture(BEACON_S, after_arming=beacon(satellite_on), timeout_s=10.0))


    def test_unknown_limit_name(dut_power, measure, meets):
        powered(dut_power, measure)
        meets(lambda: measure("EPS.IDLE_CURENT", dut_power.current(), instrument="psu"))


    def test_wrong_units(dut_power, measure, meets):
        powered(dut_power, measure)
        meets(lambda: measure("EPS.BUS_VOLTAGE", 1000 * dut_power.voltage(), units="mV", instrument="psu"))


    def test_bench_killed(dut_power, measure):
        powered(dut_power, measure)
        note("hold", "test_bench_killed")
        await_true(lambda: False, timeout_s=600, what="kill -9", interval_s=0.05)
    '''
)

# For the signal and timeout rows of the benchmark: one test holding the DUT powered until something ends it.
HOLD_PLAN = textwrap.dedent(
    '''
    """One test that powers the DUT, measures, and holds it powered until a signal, a timeout or a stop ends it."""

    import json
    import os
    import time
    from pathlib import Path

    from bench.waiting import await_true

    NOTES = Path(os.environ["FAULT_MATRIX_NOTES"])


    def note(kind, **fields):
        with NOTES.open("a") as out:
            out.write(json.dumps({"kind": kind, "test": "test_hold", "t": time.monotonic(), **fields}) + "\\n")


    def test_hold(dut_power, measure):
        dut_power.on()
        measure("EPS.BUS_VOLTAGE", dut_power.voltage(), instrument="psu")
        note("hold")
        try:
            await_true(lambda: False, timeout_s=600, what="the end of the test", interval_s=0.05)
        except BaseException:  # pytest-timeout's failure, raised in here: the bench's decision
            note("decision")
            raise
    '''
)


def notes_of(path: Path) -> list[dict[str, Any]]:
    """The notes written so far (a last line still being written is left for the next read)."""
    if not path.exists():
        return []
    notes = []
    for line in path.read_text().splitlines(keepends=True):
        if line.endswith("\n") and line.strip():
            notes.append(json.loads(line))
    return notes


def matrix_config(twin: TwinHandle, workdir: Path, watchdog_s: float) -> Path:
    """The standalone-twin config (`safety_rig.bench_config_for`) with the satellite side on this twin's ports too."""
    config: Path = bench_config_for(twin, workdir, watchdog_s=watchdog_s)
    endpoints = twin.twin.endpoints
    can = endpoints["can_socketcand"]
    text = config.read_text()
    for fixed, actual in (
        ("127.0.0.1:29536", f"{can['host']}:{can['port']}"),
        ("socket://127.0.0.1:29540", str(endpoints["i2c"]["url"])),
        ("socket://127.0.0.1:29541", str(endpoints["console"]["url"])),
    ):
        if fixed not in text:
            raise AssertionError(f"{config}: the standalone config no longer names {fixed}; update the rig")
        text = text.replace(fixed, actual)
    config.write_text(text)
    return config


def bench_process(
    plan_source: str, twin: TwinHandle, workdir: Path, *extra: str, watchdog_s: float = WATCHDOG_S
) -> tuple[subprocess.Popen[str], Path]:
    """Start `bench` (pytest) on a plan written from ``plan_source`` against ``twin``; returns it and its notes file."""
    workdir.mkdir(parents=True, exist_ok=True)
    plan = workdir / "test_fault_plan.py"
    plan.write_text(plan_source)
    notes = workdir / "notes.jsonl"
    config = matrix_config(twin, workdir, watchdog_s)
    control = twin.twin.endpoints["control"]
    environ = {
        **os.environ,
        "FAULT_MATRIX_CONTROL": f"{control['host']}:{control['port']}",
        "FAULT_MATRIX_NOTES": str(notes),
    }
    argv = [sys.executable, "-m", "pytest", str(plan), "-q", "-p", "no:cacheprovider", "-p", "no:randomly"]
    argv += ["--bench-config", str(config), "--out", str(workdir / "runs"), "--limits", str(LIMITS)]
    argv += ["--rootdir", str(workdir), *extra]
    proc = subprocess.Popen(argv, cwd=workdir, env=environ, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return proc, notes


def await_note(proc: subprocess.Popen[str], notes: Path, kind: str, timeout_s: float) -> dict[str, Any]:
    """The first note of ``kind``; fails with the bench's output if the bench ends first."""
    await_true(
        lambda: any(n["kind"] == kind for n in notes_of(notes)) or proc.poll() is not None,
        timeout_s=timeout_s,
        what=f"the plan's {kind!r} note",
        interval_s=0.05,
    )
    found = [n for n in notes_of(notes) if n["kind"] == kind]
    if not found:
        output = proc.communicate(timeout=60)[0]
        raise AssertionError(f"the bench ended (code {proc.returncode}) before its {kind!r} note:\n{output}")
    return found[0]


def run_dir_of(workdir: Path) -> Path:
    [run_dir] = [p for p in (workdir / "runs").iterdir() if p.is_dir() and not p.is_symlink()]
    return run_dir


@dataclass
class MatrixRun:
    """What one matrix run left: its journal read once, the plan's notes, and the kill at its end."""

    run_dir: Path
    record: RunRecord
    notes: list[dict[str, Any]]
    output: str
    killed_at: float  # time.monotonic() just before kill -9
    after_kill: dict[str, Any]  # supply channel 1 once the watchdog switched it off
    watchdog_s: float
    tests: dict[str, TestRecord] = field(init=False)

    def __post_init__(self) -> None:
        self.tests = {t.name: t for t in self.record.tests}

    def note(self, kind: str, test: str) -> dict[str, Any] | None:
        return next((n for n in self.notes if n["kind"] == kind and n["test"] == test), None)

    def attachment(self, test: str, name: str) -> str:
        """The text of a test's attachment (e.g. "CSP-PUS trace", "OBC console log")."""
        [found] = [a for a in self.tests[test].attachments if a.name == name]
        return (self.run_dir / found.path).read_text(errors="replace")


def run_matrix(twin: TwinHandle, workdir: Path, *, watchdog_s: float = WATCHDOG_S) -> MatrixRun:
    """Run the matrix plan; kill -9 the bench once its last test holds the DUT; await the watchdog."""
    proc, notes = bench_process(PLAN, twin, workdir, watchdog_s=watchdog_s)
    try:
        await_note(proc, notes, "hold", timeout_s=600)
        killed_at = time.monotonic()
        proc.send_signal(signal.SIGKILL)  # no handler, no teardown: only the supply's watchdog is left
        output = proc.communicate(timeout=60)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=60)
    # Through the control endpoint: SCPI traffic of ours would feed the watchdog.
    await_true(lambda: not twin.output_on(), timeout_s=60, what="the supply's watchdog to switch the DUT off")
    run_dir = run_dir_of(workdir)
    return MatrixRun(
        run_dir=run_dir,
        record=read_journal(run_dir / "journal.jsonl"),
        notes=notes_of(notes),
        output=output,
        killed_at=killed_at,
        after_kill=twin.channel_state(),
        watchdog_s=watchdog_s,
    )
