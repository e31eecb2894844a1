"""The page's controls, and only these: the emergency stop, and answers to the open operator prompt.

The stop is the one `bench safe` sets: the bench's interlock in the reservation store (so that no session can
take the bench until `bench safe --clear`), latched in this process at once rather than at the lease keeper's
next heartbeat. The session journals it (`emergency_stop`, who: "browser <client addr>"), makes every
instrument safe, fails the running test and skips the rest: the verdict is ABORTED.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bench.errors import ConfigError
from bench.live.prompts import PromptSlot
from bench.prompts import coerce_answer

if TYPE_CHECKING:
    from bench.config import LoadedConfig
    from bench.session import BenchSession

__all__ = ["ControlRefused", "RunControls"]

log = logging.getLogger(__name__)
STOP_REASON = "emergency stop pressed in the live view"


class ControlRefused(Exception):
    """A control action that cannot be carried out; the message says why (shown on the page)."""


@dataclass
class RunControls:
    loaded: LoadedConfig
    run_id: str
    session: Callable[[], BenchSession | None]
    """The run's bench session once it is open (None before the first bench test, and after the run)."""
    prompts: PromptSlot

    def stop(self, client: str) -> str:
        """The emergency stop, pressed in a browser at ``client``; returns what was done, in words."""
        from bench.reservation import ReservationError, open_store
        from bench.session import bench_key, reservation_url

        who, host = f"browser {client}", socket.gethostname()
        bench = bench_key(self.loaded, self.run_id)
        session = self.session()
        try:
            interlock = open_store(reservation_url(self.loaded)).set_interlock(
                bench, who=who, host=host, reason=STOP_REASON
            )
        except ReservationError as exc:
            if session is None:
                raise ControlRefused(f"the interlock could not be set ({exc}); run `bench safe`") from None
            log.error("live view stop: the interlock could not be set (%s); stopping this run all the same", exc)
            session.stop_now(who, host, STOP_REASON)
            return "stopped (the interlock could not be set in the store: run `bench safe` as well)"
        if session is None:  # nothing is powered yet; the interlock keeps the session from ever opening
            return f"interlock set on bench {bench}: the run cannot take the bench"
        session.stop_now(interlock.who, interlock.host, interlock.reason, at=interlock.time.isoformat())
        return f"stopped: bench {bench} interlocked, outputs off"

    def answer(self, prompt_id: int, raw: object, client: str) -> None:
        """An answer given in the page: checked first (a wrong one is refused with the reason, the prompt stays)."""
        prompt = self.prompts.current()
        if prompt is None:
            raise ControlRefused("no prompt is open (it was answered already)")
        try:
            coerce_answer(prompt, raw, "the answer")
        except ConfigError as exc:
            raise ControlRefused(str(exc)) from None
        if not self.prompts.answer(prompt_id, raw, f"browser {client}"):
            raise ControlRefused("that prompt is no longer open (answered already)")
