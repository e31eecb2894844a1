"""`bench shell`, `bench tc`, `bench tm`, `bench power`: commanding the satellite by hand.

The console holds the bench like a test run does (lease, armed protection, the supply's watchdog fed) and ends
like one: safe state on exit, Ctrl-D, Ctrl-C, SIGTERM, an exception or an emergency stop. The parsing, checks
and actions are :mod:`bench.manual`; this module reads lines (readline completion and history on a terminal,
plain lines from a script) and prints one line per result, or JSON lines with ``--json``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import queue
import sys
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from bench.emergency import StopRecord
    from bench.manual import ManualBench, Result

HISTORY_FILE = Path(os.environ.get("BENCH_SHELL_HISTORY", Path.home() / ".bench_shell_history"))
PROMPT = "bench> "
USAGE = (
    "power on|off|status                      the DUT supply (guarded by the envelope)",
    "tc NODE.COMMAND [arg=value ...]          a telecommand, checked against the ICD and the envelope",
    "tm NODE.MNEMONIC|NODE.STRUCTURE|NODE [--follow] [--count N]   telemetry (one-shot HK, or periodic)",
    "events [--follow] [--count N]            events received (or as they arrive)",
    "help | exit (or Ctrl-D)                  exit makes the bench safe",
)

ConfigOpt = Annotated[
    Path | None, typer.Option("--bench-config", "-c", help="bench config YAML [default: the auto-started twin]")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable output: one JSON object per line")]
OutOpt = Annotated[Path, typer.Option(help="folder receiving the run directory (journal.jsonl)")]
PowerOpt = Annotated[bool, typer.Option("--power", help="power the DUT (and await its nodes) before acting")]


def _err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# -- printing ------------------------------------------------------------------------------------------------
def _number(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def describe(result: Result) -> list[str]:
    """The terminal lines of one result."""
    d = result.data
    if result.kind in ("refused", "error"):
        return [f"{result.kind}: {d['error']}"]
    if result.kind == "power":
        if "channel" in d:
            trips = ", ".join(d["trips"]) or "none"
            return [
                f"DUT {d['state']} (channel {d['channel']}): {d['volts']:.3f} V, {d['amps']:.4f} A "
                f"(set {d['setpoint_v']:.3f} V, limit {d['current_limit_a']:.3f} A); watchdog {d['watchdog']}; "
                f"protection trips: {trips}"
            ]
        if d["state"] == "on":
            return [
                f"DUT on at {d['volts']:.3f} V, {d['amps']:.4f} A after {d['settle_s']:.2f} s; "
                f"nodes alive: {', '.join(d['nodes'])}"
            ]
        return ["DUT off"]
    if result.kind == "tc":
        args = ", ".join(f"{k}={v!r}" for k, v in d["args"].items())
        head = f"{d['command']}({args}) [request {d['request_id']}]"
        stages = " ".join(f"{s} {'ok' if r['success'] else 'FAILED'}" for s, r in d["stages"].items())
        if d["ok"]:
            took = f" in {d['duration_s']:.2f} s" if d["duration_s"] is not None else ""
            return [f"{head}: {stages}{took}"]
        if d["failed_stage"]:
            return [f"{head}: {stages}: code {d['failure_code']} ({d['failure_meaning']})"]
        return [f"{head}: {stages or 'no verification report'}"]
    if result.kind == "tm":
        units = d["units"]
        width = max((len(m) for m in d["values"]), default=0)
        at = f"{dt.datetime.fromtimestamp(d['time']):%H:%M:%S.%f}"[:-3] + " " if "time" in d else ""
        return [f"{at}{m:<{width}} = {_number(v)} {units.get(m, '')}".rstrip() for m, v in d["values"].items()]
    if result.kind == "event":
        data = ", ".join(f"{k}={_number(v)}" for k, v in d["data"].items())
        return [f"#{d['index']} {d['event']} ({d['severity']}){': ' + data if data else ''}"]
    if result.kind == "help":
        return list(USAGE)
    return []


class Printer:
    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self.failures = 0

    def show(self, line: str, result: Result) -> None:
        if not result.ok:
            self.failures += 1
        if self.as_json:
            print(json.dumps({"line": line, "kind": result.kind, "ok": result.ok, **result.data}, default=str),
                  flush=True)  # fmt: skip
            return
        out = sys.stdout if result.ok else sys.stderr
        for text in describe(result):
            print(text, file=out, flush=True)


# -- opening the bench --------------------------------------------------------------------------------------
def _open(config: Path | None, out: Path | None, mode: str, on_stop: Any = None) -> ManualBench:
    from bench.config import ConfigError, load_config
    from bench.envelope import EnvelopeViolation
    from bench.manual import ManualBench
    from bench.reservation import ReservationError
    from bench.twin_launcher import TwinError
    from instruments.errors import InstrumentError

    try:
        loaded = load_config(config)
        return ManualBench.open(loaded, out, mode=mode, on_stop=on_stop)
    except (ConfigError, TwinError, EnvelopeViolation, ReservationError, InstrumentError) as exc:
        _err(f"error: {exc}")
        raise typer.Exit(3) from None


def _closed(manual: ManualBench, reason: str, printer: Printer) -> int:
    """Safe state and release; says how it went; the exit status."""
    results = manual.close(reason)
    stop = manual.stop_record
    unsafe = [role for role, outcome in results.items() if outcome != "ok"]
    if unsafe:
        _err(f"NOT SAFE: {', '.join(f'{r} ({results[r]})' for r in unsafe)} — check the bench by hand")
    elif not printer.as_json:
        _err(f"bench safe ({reason}); lease released" + (f"; journal: {manual.run_dir}" if manual.run_dir else ""))
    if stop is not None:
        return 2
    if unsafe:
        return 1
    if reason.startswith("interrupted"):
        return 130  # as a shell reports a command ended by a signal
    return 1 if printer.failures else 0


# -- the shell -----------------------------------------------------------------------------------------------
def _lines(manual: ManualBench, interactive: bool, turn: threading.Semaphore) -> Iterable[str]:
    """Operator lines: readline (completion, history) on a terminal, else the script's lines."""
    if not interactive:
        for raw in sys.stdin:
            yield raw.rstrip("\n")
        return
    try:
        import readline
    except ImportError:  # pragma: no cover - Windows without pyreadline
        readline = None  # type: ignore[assignment]
    if readline is not None:
        from bench.manual import complete

        def completer(text: str, state: int) -> str | None:
            options = complete(manual.icd, readline.get_line_buffer()[: readline.get_endidx()], text)
            return options[state] if state < len(options) else None

        readline.set_completer(completer)
        readline.set_completer_delims(" ")
        readline.parse_and_bind("tab: complete")
        with contextlib.suppress(OSError):
            readline.read_history_file(HISTORY_FILE)
    try:
        while True:
            turn.acquire()  # the prompt comes back once the previous command has printed its results
            try:
                yield input(PROMPT)
            except EOFError:  # Ctrl-D
                print(file=sys.stderr)
                return
    finally:
        if readline is not None:
            try:
                readline.set_history_length(1000)
                readline.write_history_file(HISTORY_FILE)
            except OSError:
                pass


_EOF = object()  # the operator's end of input (Ctrl-D, end of script)
_STOP = object()  # an emergency stop (or a lost lease) made the bench safe


def _reader(
    manual: ManualBench, interactive: bool, inbox: queue.Queue[object], turn: threading.Semaphore
) -> threading.Thread:
    """Read the operator's lines in a thread of their own: the main thread waits on ``inbox`` for a line *or*
    an emergency stop, so a stop ends an idle shell at once — no signal, no polling."""

    def read() -> None:
        try:
            for line in _lines(manual, interactive, turn):
                inbox.put(line)
        finally:
            inbox.put(_EOF)

    thread = threading.Thread(target=read, name="shell-input", daemon=True)
    thread.start()
    return thread


def shell(
    bench_config: ConfigOpt = None,
    out: OutOpt = Path("runs"),
    as_json: JsonOpt = False,
) -> None:
    """Command the satellite by hand: power, telecommands, telemetry, events (Tab completes ICD names).

    Holds the bench (its lease) and feeds the supply's watchdog while it runs; every command is journaled in
    <out>/<run-id>/journal.jsonl; exit, Ctrl-D, Ctrl-C, SIGTERM or `bench safe` leave the bench safe. Lines can
    also come from a script: `printf 'power on\\ntm EPS\\n' | bench shell`.
    """
    printer = Printer(as_json)
    inbox: queue.Queue[object] = queue.Queue()

    def stopped(record: StopRecord) -> None:  # the lease keeper's thread, after the session made the bench safe
        _err(f"EMERGENCY STOP: {record.describe()}; the bench is safe — the shell ends")
        inbox.put(_STOP)

    manual = _open(bench_config, out, "shell", on_stop=stopped)
    interactive = sys.stdin.isatty()
    reason = "shell end"
    if not as_json:
        lease = f"bench {manual.session.bench_name} held; watchdog {'fed' if manual.session.watchdog_armed else 'off'}"
        _err(f"{lease}; journal {manual.run_dir}; `help` lists the commands, Ctrl-D ends (bench safe)")
    turn = threading.Semaphore(1)
    _reader(manual, interactive, inbox, turn)
    try:
        while True:
            line = inbox.get()  # interruptible: Ctrl-C and SIGTERM reach the session's handlers here
            if line is _EOF or line is _STOP or manual.stop_record is not None:
                break
            assert isinstance(line, str)
            if not interactive and not as_json and line.strip():
                print(f"{PROMPT}{line}", flush=True)
            if _run(manual, line, printer) or manual.stop_record is not None:
                break
            turn.release()
    except KeyboardInterrupt:
        reason = "interrupted (Ctrl-C or SIGTERM)"
    except BaseException:
        _closed(manual, "shell error", printer)
        raise
    if manual.stop_record is not None:
        reason = "emergency stop"
    if interactive:
        printer.failures = 0  # at a terminal the operator saw each refusal; the status says how it ended
    raise typer.Exit(_closed(manual, reason, printer))


def _run(manual: ManualBench, line: str, printer: Printer) -> bool:
    """Perform one line; True when it asks to end the shell."""
    from bench.emergency import EmergencyStop

    try:
        for result in manual.run_line(line):
            if result.kind == "exit":
                return True
            printer.show(line, result)
    except EmergencyStop as exc:
        _err(f"refused: {exc}")
        return True
    return False


# -- one-shot forms -----------------------------------------------------------------------------------------
def _one_shot(line: str, bench_config: Path | None, out: Path, as_json: bool, power: bool) -> None:
    printer = Printer(as_json)
    manual = _open(bench_config, out, "one-shot")
    reason = "one-shot end"
    try:
        if power:
            _run(manual, "power on", printer)
        if not printer.failures:
            _run(manual, line, printer)
    except KeyboardInterrupt:
        reason = "interrupted"
    except BaseException:
        _closed(manual, "one-shot error", printer)
        raise
    raise typer.Exit(_closed(manual, reason, printer))


def tc(
    command: Annotated[str, typer.Argument(help="NODE.COMMAND from the ICD, e.g. COMMS.SET_BEACON")],
    args: Annotated[list[str] | None, typer.Argument(help="arguments as name=value")] = None,
    bench_config: ConfigOpt = None,
    power: PowerOpt = False,
    out: OutOpt = Path("runs"),
    as_json: JsonOpt = False,
) -> None:
    """One telecommand when no session holds the bench: take it, (power,) send, print the reports, leave it safe."""
    _one_shot(" ".join(["tc", command, *(args or [])]), bench_config, out, as_json, power)


def tm(
    target: Annotated[str, typer.Argument(help="NODE.MNEMONIC, NODE.STRUCTURE or NODE")],
    follow: Annotated[bool, typer.Option("--follow", help="periodic HK, printed as it arrives")] = False,
    count: Annotated[int | None, typer.Option(help="with --follow: stop after N samples")] = None,
    bench_config: ConfigOpt = None,
    power: PowerOpt = False,
    out: OutOpt = Path("runs"),
    as_json: JsonOpt = False,
) -> None:
    """Telemetry when no session holds the bench: take it, (power,) read, leave it safe."""
    line = f"tm {target}" + (" --follow" if follow else "") + (f" --count {count}" if count else "")
    _one_shot(line, bench_config, out, as_json, power)


def power(
    action: Annotated[str, typer.Argument(help="status (on/off only make sense inside `bench shell`)")],
    bench_config: ConfigOpt = None,
    out: OutOpt = Path("runs"),
    as_json: JsonOpt = False,
) -> None:
    """The DUT supply's state when no session holds the bench: output, voltage, current, protection."""
    if action != "status":
        _err(f"error: `bench power {action}` would be undone at once (a one-shot leaves the bench safe); "
             "use `bench power status`, or `power on` inside `bench shell`")  # fmt: skip
        raise typer.Exit(2)
    _one_shot("power status", bench_config, out, as_json, False)


def register(app: typer.Typer) -> None:
    app.command()(shell)
    app.command(context_settings={"allow_interspersed_args": True})(tc)
    app.command()(tm)
    app.command()(power)
