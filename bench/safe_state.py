"""Safe state: every instrument back to outputs off / RF off, on every way a run can end.

Actions are registered per instrument role. `enter(reason)` runs all of them (each guarded, so one failing
instrument does not keep the others live), journals the outcome and syncs the journal to disk. It is called
from the session teardown (pass, fail, exception, pytest-timeout), from signal handlers (Ctrl-C, SIGTERM,
SIGHUP: safe state first, then the run unwinds as interrupted; a second signal enters safe state again but
lets the unwinding finish, so the run is still journaled and reported) and at interpreter exit. What no software can
cover — kill -9, a power cut of the bench PC — is covered by the supply's I/O watchdog, armed before power-on.
"""

from __future__ import annotations

import atexit
import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType

from bench.journal import Journal

log = logging.getLogger(__name__)

# An action gets `fresh=True` when it must not reuse a connection that may be in the middle of an exchange
# (a signal arrived while the main thread was talking to the instrument).
SafeAction = Callable[[bool], None]


class SafeState:
    def __init__(self, journal: Journal | None = None) -> None:
        self._journal = journal
        self._actions: dict[str, SafeAction] = {}
        self._lock = threading.RLock()
        self._previous: dict[int, object] = {}
        self.entered_reasons: list[str] = []
        self._stopping = False  # a signal started the unwinding
        self.last_results: dict[str, str] = {}

    def register(self, role: str, action: SafeAction) -> None:
        self._actions[role] = action

    def unregister_all(self) -> None:
        self._actions.clear()

    def enter(self, reason: str, *, fresh: bool = False) -> dict[str, str]:
        with self._lock:
            results: dict[str, str] = {}
            for role, action in list(self._actions.items()):
                try:
                    action(fresh)
                    results[role] = "ok"
                except Exception as exc:  # one broken instrument must not keep the others live
                    results[role] = f"{type(exc).__name__}: {exc}"
                    log.error("safe state of %s failed: %s", role, exc)
            self.entered_reasons.append(reason)
            self.last_results = results
            if self._actions:
                log.info("safe state (%s): %s", reason, results)
            if self._journal is not None and not self._journal.closed:
                self._journal.record("safe_state", reason=reason, results=results)
                self._journal.sync()
            return results

    # -- process-level exits -----------------------------------------------------------------------
    def install(self) -> None:
        """Hook signals and interpreter exit. Only the main thread may install signal handlers."""
        atexit.register(self._at_exit)
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            self._previous[sig] = signal.signal(sig, self._on_signal)

    def uninstall(self) -> None:
        atexit.unregister(self._at_exit)
        if threading.current_thread() is not threading.main_thread():
            return
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
        self._previous.clear()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self._stopping:
            # A second Ctrl-C while the run unwinds: safe state again, but let the unwinding finish — it is what
            # journals the interruption and writes the report.
            log.warning("%s received again: safe state again; the run is already stopping", name)
            self.enter(f"{name} (again)", fresh=True)
            return
        self._stopping = True
        log.warning("%s received: entering safe state", name)
        self.enter(name, fresh=True)
        # Unwind the run as an interruption: pytest then tears down, journals and reports what it has.
        raise KeyboardInterrupt(f"{name}: bench stopped after entering safe state")

    def _at_exit(self) -> None:
        if self._actions:
            self.enter("process exit", fresh=True)
