"""A twin process for the tests that talk to it directly (raw SCPI, CAN and serial clients, no bench session).

Started by the bench's own launcher (`bench.twin_launcher.TwinProcess`: free ports, endpoints file, parent-death
watch, log); the test reaches the supply with pyvisa and the rest through the endpoints and the control port.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pyvisa

from bench.twin_launcher import TwinProcess, twin_control
from bench.waiting import await_value

T = TypeVar("T")


def wait_for(predicate: Callable[[], T], timeout: float, what: str, interval: float = 0.01) -> T:
    """Poll until ``predicate()`` is truthy; return it (AwaitTimeout after ``timeout`` s)."""
    return await_value(predicate, bool, timeout_s=timeout, what=what, interval_s=interval)


class TwinUnderTest:
    """``python -m twin --ports auto`` with ``args``; its log (stdout and stderr) in ``workdir``."""

    def __init__(self, workdir: Path, *args: str) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.log_path = workdir / "twin.log"
        self._process = TwinProcess(log_path=self.log_path, startup_timeout_s=15.0, extra_args=args).start()
        self.endpoints: dict[str, dict[str, Any]] = self._process.endpoints
        self._rm: pyvisa.ResourceManager | None = pyvisa.ResourceManager("@py")
        try:
            psu = self._rm.open_resource(
                self.endpoints["psu"]["resource"], read_termination="\n", write_termination="\n", timeout=3000
            )
            assert isinstance(psu, pyvisa.resources.MessageBasedResource)
            self.psu = psu
        except BaseException:
            self.kill()
            raise

    @property
    def stdout(self) -> str:
        return self.log_path.read_text()

    def published_endpoints(self) -> dict[str, dict[str, Any]]:
        """The endpoints file as the twin has (re)written it now; ``endpoints`` is the table read at start."""
        table: dict[str, dict[str, Any]] = json.loads(self._process.endpoints_file.read_text())["endpoints"]
        return table

    def control(self, request: dict[str, Any]) -> dict[str, Any]:
        """The control endpoint's reply as is (refusals included: tests check them)."""
        return twin_control(self.endpoints, check=False, **request)

    def state(self) -> dict[str, Any]:
        return self.control({"cmd": "state"})

    def node_state(self, node: str) -> dict[str, Any]:
        state: dict[str, Any] = self.state()["satellite"]["nodes"][node]
        return state

    def power_on(self) -> None:
        self.psu.write("VOLT 3.8,(@1)")
        self.psu.write("CURR 3,(@1)")
        self.psu.write("OUTP 1,(@1)")
        wait_for(lambda: all(n["alive"] for n in self.state()["satellite"]["nodes"].values()), 5.0, "every node")

    def power_off(self) -> None:
        self.psu.write("OUTP 0,(@1)")
        wait_for(lambda: not self.state()["dut"]["powered"], 5.0, "the DUT to lose power")

    def current(self) -> float:
        return float(self.psu.query("MEAS:CURR? (@1)"))

    def kill(self) -> None:
        if self._rm is not None:
            self._rm.close()
            self._rm = None
        self._process.stop()
