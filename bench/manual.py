"""Commanding by hand: one operator line → one checked bench action, journaled, answered with plain data.

`bench shell` (and the one-shot `bench tc`, `bench tm`, `bench power`) read lines such as

    power on | off | status
    tc COMMS.SET_BEACON enabled=true
    tm COMMS.BEACON_ENABLED      tm COMMS      tm EPS.EPS_HK --follow --count 5
    events [--follow] [--count N]

:func:`parse_command` turns a line into a :class:`Command` and checks it *before* anything is sent: the
telecommand and its arguments against the ICD (name, arguments, ranges, enums — an unknown mnemonic is named
with its close matches), and against the DUT envelope (:data:`ENVELOPE_ARGS`: e.g. no transmit power above the
radio's envelope). A refusal is a :class:`CommandError` with one line saying what to fix.

:class:`ManualBench` performs commands on a :class:`~bench.session.BenchSession` — the same session a test run
uses: it holds the bench's lease, armed protection and the supply's watchdog heartbeat, and its close is the
session's safe state. Power goes through the guarded supply (:class:`~bench.dut_power.DutPower`), the satellite
through the :class:`~bench.satellite.Satellite` facade. Each command is journaled (``operator_command``) in the
shell's own run directory; results are :class:`Result` values (kind, ok, data), which the command line prints.
"""

from __future__ import annotations

import difflib
import os
import shlex
import shutil
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from bench.config import Envelope, LoadedConfig
from bench.icd import CommandRefused, Icd, UnknownMnemonic, Value, icd_path, load_icd

if TYPE_CHECKING:
    from bench.dut_power import DutPower
    from bench.emergency import StopRecord
    from bench.journal import Journal
    from bench.satellite import Satellite, Verification
    from bench.session import BenchSession

__all__ = [
    "ENVELOPE_ARGS",
    "VERBS",
    "Command",
    "CommandError",
    "EventsCommand",
    "ManualBench",
    "PowerCommand",
    "Result",
    "TcCommand",
    "TmCommand",
    "complete",
    "parse_command",
    "parse_value",
]

VERBS = ("power", "tc", "tm", "events", "help", "exit", "quit")
POWER_ACTIONS = ("on", "off", "status")

# Command arguments the DUT envelope bounds beyond the ICD: (command, argument) → (envelope field, its value).
ENVELOPE_ARGS: dict[tuple[str, str], Callable[[Envelope], tuple[str, float] | None]] = {
    ("COMMS.SET_TX_POWER", "dbm"): lambda e: None if e.rf is None else ("rf.max_tx_power_dbm", e.rf.max_tx_power_dbm),
}


class CommandError(ValueError):
    """A line the bench refuses before sending anything; the message is one line saying what to fix."""


@dataclass(frozen=True, slots=True)
class PowerCommand:
    action: Literal["on", "off", "status"]


@dataclass(frozen=True, slots=True)
class TcCommand:
    mnemonic: str
    args: dict[str, Value]


@dataclass(frozen=True, slots=True)
class TmCommand:
    """One telemetry value (``NODE.MNEMONIC``), an HK structure or every structure of a node."""

    target: str
    follow: bool = False
    count: int | None = None


@dataclass(frozen=True, slots=True)
class EventsCommand:
    follow: bool = False
    count: int | None = None


@dataclass(frozen=True, slots=True)
class HelpCommand:
    pass


@dataclass(frozen=True, slots=True)
class ExitCommand:
    pass


Command = PowerCommand | TcCommand | TmCommand | EventsCommand | HelpCommand | ExitCommand


@dataclass(frozen=True, slots=True)
class Result:
    """What one command did: ``kind`` (power, tc, tm, event, refused, error, ...), ``ok``, and plain data."""

    kind: str
    ok: bool
    data: dict[str, Any] = field(default_factory=dict)


# ------------------------------------------------------------------------------------------------------------
# Parsing: a line → a checked Command
# ------------------------------------------------------------------------------------------------------------


def parse_value(text: str) -> Value:
    """``true``/``false``/``on``/``off`` → bool, ``12``/``0x0C`` → int, ``1.5`` → float, anything else its text
    (an enum name such as ``NADIR``)."""
    lowered = text.lower()
    if lowered in ("true", "on", "yes"):
        return True
    if lowered in ("false", "off", "no"):
        return False
    try:
        return int(text, 0)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def _options(words: list[str], verb: str) -> tuple[list[str], bool, int | None]:
    """Split ``--follow`` and ``--count N`` off the words of a tm/events line."""
    rest: list[str] = []
    follow, count = False, None
    it = iter(words)
    for word in it:
        if word in ("--follow", "-f"):
            follow = True
        elif word.startswith("--count"):
            value = word.partition("=")[2] or next(it, "")
            if not value.isdigit() or int(value) < 1:
                raise CommandError(f"{verb}: --count takes a whole number of samples, e.g. --count 5")
            count, follow = int(value), True
        elif word.startswith("-"):
            raise CommandError(f"{verb}: unknown option {word!r} (options: --follow, --count N)")
        else:
            rest.append(word)
    return rest, follow, count


def _mnemonic(word: str) -> str:
    """ICD mnemonics are upper case (``comms.set_beacon`` means ``COMMS.SET_BEACON``)."""
    return word.upper()


def check_tc(icd: Icd, envelope: Envelope, mnemonic: str, args: dict[str, Value]) -> None:
    """Refuse (CommandError) a telecommand the ICD does not define, with arguments it does not take or outside
    its ranges, or outside the DUT envelope — before a byte is sent."""
    try:
        command = icd.command(mnemonic)
        command.encode_args(args)
    except (UnknownMnemonic, CommandRefused) as exc:
        raise CommandError(str(exc)) from None
    for arg in command.definition.args:
        bound = ENVELOPE_ARGS.get((mnemonic, arg.name))
        limit = bound(envelope) if bound is not None else None
        value = args.get(arg.name)
        if limit is not None and isinstance(value, int | float) and value > limit[1]:
            raise CommandError(
                f"{mnemonic}.{arg.name}: {value:g} {arg.units} is above the DUT envelope "
                f"(dut.envelope.{limit[0]}: {limit[1]:g}); refused"
            )


def _check_tm(icd: Icd, target: str) -> None:
    if target in icd.tm or target in icd.hk or target in icd.nodes:
        return
    known = [*icd.tm, *icd.hk, *icd.nodes]
    near = difflib.get_close_matches(target, known, n=5, cutoff=0.5)
    if not near:
        head, _, tail = target.partition(".")
        near = [k for k in known if k.startswith(head + ".") or (tail and k.endswith("." + tail))][:5]
    hint = f"; did you mean {', '.join(near)}?" if near else "; `tm NODE` lists a node's values"
    raise CommandError(f"unknown telemetry value, HK structure or node {target!r}{hint}")


def parse_command(line: str, icd: Icd, envelope: Envelope) -> Command | None:
    """The command of one operator line (None for a blank line or a comment), checked against the ICD and the
    envelope. Raises :class:`CommandError`."""
    try:
        words = shlex.split(line, comments=True)
    except ValueError as exc:
        raise CommandError(f"cannot read the line: {exc}") from None
    if not words:
        return None
    verb, rest = words[0].lower(), words[1:]
    if verb == "power":
        if len(rest) != 1 or rest[0].lower() not in POWER_ACTIONS:
            raise CommandError("power takes one of: on, off, status")
        action = rest[0].lower()
        return PowerCommand("on" if action == "on" else "off" if action == "off" else "status")
    if verb == "tc":
        if not rest:
            raise CommandError("tc needs a command, e.g. tc COMMS.SET_BEACON enabled=true")
        mnemonic = _mnemonic(rest[0])
        args: dict[str, Value] = {}
        for word in rest[1:]:
            name, eq, value = word.partition("=")
            if not eq or not name:
                raise CommandError(f"{mnemonic}: {word!r} is not name=value")
            if name in args:
                raise CommandError(f"{mnemonic}: {name} given twice")
            args[name] = parse_value(value)
        check_tc(icd, envelope, mnemonic, args)
        return TcCommand(mnemonic, args)
    if verb == "tm":
        targets, follow, count = _options(rest, "tm")
        if len(targets) != 1:
            raise CommandError("tm takes one NODE.MNEMONIC, NODE.STRUCTURE or NODE, e.g. tm COMMS.BEACON_ENABLED")
        target = _mnemonic(targets[0])
        _check_tm(icd, target)
        return TmCommand(target, follow, count)
    if verb == "events":
        extra, follow, count = _options(rest, "events")
        if extra:
            raise CommandError(f"events takes no argument ({' '.join(extra)!r}); options: --follow, --count N")
        return EventsCommand(follow, count)
    if verb in ("help", "?"):
        return HelpCommand()
    if verb in ("exit", "quit"):
        return ExitCommand()
    near = difflib.get_close_matches(verb, VERBS, n=1)
    hint = f"; did you mean {near[0]}?" if near else f"; commands: {', '.join(VERBS)}"
    raise CommandError(f"unknown command {words[0]!r}{hint}")


def complete(icd: Icd, line: str, text: str) -> list[str]:
    """Completions of ``text`` (the word being typed) in ``line`` (everything typed so far)."""
    words = line.split()
    at = len(words) if line.endswith(" ") or not line else len(words) - 1
    if at == 0:
        return [v + " " for v in VERBS if v.startswith(text)]
    verb = words[0].lower()
    if verb == "power" and at == 1:
        return [a for a in POWER_ACTIONS if a.startswith(text)]
    if verb == "tc" and at == 1:
        return _starting(icd.commands, text)
    if verb == "tc" and at >= 2:
        command = icd.commands.get(_mnemonic(words[1]))
        if command is None:
            return []
        given = {w.partition("=")[0] for w in words[2:]}
        names = [f"{a.name}=" for a in command.definition.args if a.name not in given or text.startswith(a.name)]
        name, eq, _ = text.partition("=")
        if eq:  # the value: an enum's names, a bool's words
            for a in command.definition.args:
                if a.name == name:
                    values = list(a.enum) if a.enum else ["true", "false"] if a.type == "bool" else []
                    return [f"{name}={v}" for v in values if f"{name}={v}".startswith(text)]
        return [n for n in names if n.startswith(text)]
    if verb == "tm" and at >= 1:
        if text.startswith("-"):
            return [o for o in ("--follow", "--count") if o.startswith(text)]
        return _starting([*icd.nodes, *icd.hk, *icd.tm], text)
    if verb == "events" and text.startswith("-"):
        return [o for o in ("--follow", "--count") if o.startswith(text)]
    return []


def _starting(names: Iterable[str], text: str) -> list[str]:
    upper = text.upper()
    return sorted(n for n in names if n.startswith(upper))


# ------------------------------------------------------------------------------------------------------------
# Performing commands on a bench session
# ------------------------------------------------------------------------------------------------------------


def _verification(v: Verification) -> dict[str, Any]:
    stages = {}
    for report in (v.acceptance, v.start, *v.progress, v.completion):
        if report is not None:
            stages[report.stage] = {"success": report.success, "code": report.code, "meaning": report.meaning}
    return {
        "command": v.command,
        "node": v.node,
        "args": v.args,
        "request_id": f"0x{v.request_id:08X}",
        "ok": v.ok,
        "failed_stage": v.failed_stage,
        "failure_code": v.failure_code,
        "failure_meaning": v.failure_meaning,
        "duration_s": v.duration_s,
        "stages": stages,
    }


class ManualBench:
    """Operator commands on an open :class:`BenchSession`; :meth:`close` is the session's safe state.

    Open with :meth:`open` (run directory, journal, session); perform lines with :meth:`run_line`, which yields
    the :class:`Result` of each step (a follow yields one per sample) and journals each."""

    def __init__(self, session: BenchSession, journal: Journal | None, run_dir: Path | None) -> None:
        self.session = session
        self.journal = journal
        self.run_dir = run_dir
        self.icd = load_icd(icd_path(session.loaded.path, session.loaded.config.icd))
        self.envelope = session.loaded.config.dut.envelope
        self._satellite: Satellite | None = None
        self._power: DutPower | None = None
        self._closed = False
        self._on_stop: Callable[[StopRecord], None] | None = None
        self._arrived = threading.Condition()  # notified by each packet during an events --follow, and by a stop

    # -- opening and closing ----------------------------------------------------------------------------
    @classmethod
    def open(
        cls,
        loaded: LoadedConfig,
        out: Path | None,
        *,
        run_id: str | None = None,
        mode: str = "shell",
        on_stop: Callable[[StopRecord], None] | None = None,
        install_signals: bool = True,
    ) -> ManualBench:
        """Take the bench (its lease: refused at once, naming the holder, when another session has it), arm its
        protection, start the heartbeats. ``out``: the folder receiving the run directory (None: no journal)."""
        from bench.asrun import git_revision, host_name, new_run_id, operator_name, software_version
        from bench.journal import Journal
        from bench.session import BenchSession

        run_id = run_id or new_run_id()
        run_dir = out / run_id if out is not None else None
        journal = Journal(run_dir / "journal.jsonl") if run_dir is not None else None
        if journal is not None:
            dut = loaded.config.dut
            journal.record(
                "run_start", run_id=run_id, campaign=f"manual ({mode})", model_level=dut.model_level.value,
                operator=operator_name(loaded.config.bench.operator), host=host_name(),
                bench=loaded.config.bench.name, git_revision=git_revision(Path(__file__).resolve().parents[1]),
                software_version=software_version(), bench_config=str(loaded.path), config_hash=loaded.sha256,
                dut={"name": dut.name, "part_number": dut.part_number, "model_level": dut.model_level.value,
                     "serial": dut.serial, "envelope": dut.envelope.model_dump()},
                argv=sys.argv, pid=os.getpid(),
            )  # fmt: skip
        try:
            session = BenchSession.open(
                loaded, journal, run_dir, run_id=run_id, install_signals=install_signals, campaign="development"
            )
        except BaseException:
            if journal is not None:
                journal.close()
            if run_dir is not None:  # nothing happened on the bench: leave no run behind
                shutil.rmtree(run_dir, ignore_errors=True)
            raise
        try:
            manual = cls(session, journal, run_dir)
        except BaseException:
            session.close("shell set-up failed")
            raise
        manual._on_stop = on_stop
        session.on_stop = manual._stopped
        return manual

    def _stopped(self, record: StopRecord) -> None:
        """The session made the bench safe after an emergency stop: wake a follow, then tell the listener."""
        with self._arrived:
            self._arrived.notify_all()
        if self._on_stop is not None:
            self._on_stop(record)

    @property
    def stop_record(self) -> StopRecord | None:
        return self.session.stop_record

    def close(self, reason: str = "shell end") -> dict[str, str]:
        """Satellite link closed, then the session's safe state and release; returns the safe-state results."""
        if self._closed:
            return {}
        self._closed = True
        if self._satellite is not None:
            self._satellite.close()
            self._satellite = None
        self.session.close(reason)
        results = dict(self.session.safe_state.last_results)
        if self.journal is not None:
            self.journal.record("run_end", exit_status=0 if self.stop_record is None else 2, counts={})
            self.journal.close()
        return results

    # -- lazily opened collaborators --------------------------------------------------------------------
    @property
    def power(self) -> DutPower:
        if self._power is None:
            from bench.dut_power import DutPower

            cfg = self.session.loaded.config
            self._power = DutPower(self.session.psu, cfg.dut.envelope, cfg.safety)
        return self._power

    @property
    def satellite(self) -> Satellite:
        if self._satellite is None:
            from bench.satellite import open_satellite

            self._satellite = open_satellite(self.session.loaded, self.session.can_adapter())
        return self._satellite

    # -- performing -------------------------------------------------------------------------------------
    def parse(self, line: str) -> Command | None:
        return parse_command(line, self.icd, self.envelope)

    def run_line(self, line: str) -> Iterator[Result]:
        """Parse, check and perform one line; each result is journaled before it is yielded. A refusal or an
        error is a Result (kind ``refused``/``error``), never an exception — except the emergency stop."""
        from bench.emergency import EmergencyStop
        from bench.envelope import EnvelopeViolation
        from bench.errors import ConfigError
        from bench.satellite import LinkDown, RequestRefused, SatelliteTimeout
        from instruments.errors import InstrumentError

        try:
            command = self.parse(line)
        except CommandError as exc:
            yield self._journaled(line, Result("refused", False, {"error": str(exc)}))
            return
        if command is None:
            return
        try:
            for result in self.perform(command):
                yield self._journaled(line, result)
        except EmergencyStop:
            raise
        except (CommandError, EnvelopeViolation, CommandRefused, UnknownMnemonic) as exc:
            yield self._journaled(line, Result("refused", False, {"error": str(exc)}))
        except (SatelliteTimeout, LinkDown, RequestRefused, InstrumentError, ConfigError) as exc:
            yield self._journaled(line, Result("error", False, {"error": str(exc)}))

    def _journaled(self, line: str, result: Result) -> Result:
        if self.journal is not None and not self.journal.closed:
            self.journal.record("operator_command", line=line, result=result.kind, ok=result.ok, data=result.data)
        return result

    def perform(self, command: Command) -> Iterator[Result]:
        from bench import emergency

        emergency.check()
        if isinstance(command, PowerCommand):
            yield self._power_command(command.action)
        elif isinstance(command, TcCommand):
            args: dict[str, Any] = dict(command.args)
            v = self.satellite.send(command.mnemonic, **args)
            yield Result("tc", v.ok, _verification(v))
        elif isinstance(command, TmCommand):
            yield from self._telemetry(command)
        elif isinstance(command, EventsCommand):
            yield from self._events(command)
        elif isinstance(command, HelpCommand):
            yield Result("help", True, {"commands": list(VERBS)})
        else:
            yield Result("exit", True)

    def _power_command(self, action: str) -> Result:
        if action == "on":
            on = self.power.on()
            alive = self.satellite.await_nodes_alive(timeout_s=10)
            return Result("power", True, {"state": "on", "volts": on.volts, "amps": on.settled_current,
                                          "settle_s": on.settle_time_s, "nodes": sorted(alive)})  # fmt: skip
        if action == "off":
            self.power.off()
            return Result("power", True, {"state": "off"})
        psu = self.session.psu
        ch = self.power.channel
        state = psu.protection(ch)
        trips = [k for k, on in (("OVP", state.ovp_tripped), ("OCP", state.ocp_tripped),
                                 ("watchdog", state.watchdog_tripped)) if on]  # fmt: skip
        return Result("power", True, {
            "state": "on" if psu.output(ch) else "off", "channel": ch, "volts": psu.measure_voltage(ch),
            "amps": psu.measure_current(ch), "setpoint_v": psu.voltage_setpoint(ch),
            "current_limit_a": psu.current_limit(ch), "trips": trips,
            "watchdog": "fed" if self.session.watchdog_armed else "not armed",
        })  # fmt: skip

    def _telemetry(self, command: TmCommand) -> Iterator[Result]:
        sat, target = self.satellite, command.target
        if not command.follow:
            if target in self.icd.parameters:
                values = sat.get_parameters(target)
            else:
                structure = self.icd.tm[target].node + "." + self._structure_of(target) if target in self.icd.tm \
                    else target  # fmt: skip
                values = sat.request_hk(structure)
                if target in self.icd.tm:
                    values = {target: values[target]}
            yield Result("tm", True, {"values": values, "units": self._units(values)})
            return
        structures = self.icd.structures(self._structure_of(target, whole=True))
        wanted = [target] if target in self.icd.tm else [f"{h.node.name}.{f.name}" for h in structures
                                                         for f in h.structure.fields]  # fmt: skip
        from bench import emergency

        for hk in structures:
            sat.enable_hk(hk.mnemonic)
        try:
            seen = 0
            while command.count is None or seen < command.count:
                emergency.check()  # a stop ends a follow (a wait under way ends with the satellite's silence)
                sample = sat.await_tm(wanted[-1], timeout_s=max(5.0, 3 * self._period(structures)))
                values = {m: s.value for m in wanted for s in [sat.latest(m)] if s is not None}
                values[sample.mnemonic] = sample.value
                seen += 1
                yield Result("tm", True, {"values": values, "units": self._units(values), "time": sample.time})
        finally:
            if self.stop_record is None and not self._closed:
                for hk in structures:
                    sat.disable_hk(hk.mnemonic)

    def _structure_of(self, target: str, *, whole: bool = False) -> str:
        """The HK structure carrying ``target`` (a field: its structure; a node or structure: itself)."""
        point = self.icd.tm.get(target)
        if point is None:
            return target
        if point.sid is None:
            raise CommandError(f"{target} is a parameter, not housekeeping: `tm {target}` reads it once")
        hk = self.icd.hk_structure(point.node, point.sid)
        assert hk is not None
        return hk.mnemonic if whole else hk.structure.name

    def _period(self, structures: Iterable[Any]) -> float:
        return max((float(h.structure.period_s) for h in structures), default=1.0)

    def _units(self, values: dict[str, Value]) -> dict[str, str]:
        return {m: self.icd.tm[m].field.units for m in values if m in self.icd.tm}

    def _events(self, command: EventsCommand) -> Iterator[Result]:
        sat = self.satellite
        if not command.follow:
            for event in list(sat.events):
                yield Result("event", True, _event(event))
            return
        arrived = self._arrived

        def wake(_line: str) -> None:  # every packet the link traces wakes the follower: nothing polls
            with arrived:
                arrived.notify_all()

        sat.add_tracer(wake)
        try:
            mark, seen = sat.event_mark(), 0

            def news(since: int) -> bool:
                return sat.event_mark() > since or self.stop_record is not None

            while command.count is None or seen < command.count:
                with arrived:
                    arrived.wait_for(partial(news, mark), timeout=60)
                if self.stop_record is not None:
                    from bench import emergency

                    emergency.check()
                for event in [e for e in list(sat.events) if e.index >= mark]:
                    seen += 1
                    yield Result("event", True, _event(event))
                    if command.count is not None and seen >= command.count:
                        break
                mark = sat.event_mark()
        finally:
            sat.remove_tracer(wake)


def _event(event: Any) -> dict[str, Any]:
    return {"event": event.mnemonic, "node": event.node, "id": event.event_id, "severity": event.severity,
            "data": dict(event.data), "time": event.time, "index": event.index}  # fmt: skip
