"""python-can's own command-line logger joins the twin's CAN bus and sees the satellite's traffic: the twin
bus is an ordinary socketcand bus to any CAN tool, not something only the bench can read."""

from __future__ import annotations

import re
import subprocess
import sys
import threading

import pyvisa

from bench.twin_launcher import TwinProcess
from bench.waiting import await_true


def test_can_logger_sees_the_satellite_boot_traffic():
    with TwinProcess(ports="auto") as twin:
        can_ep = twin.endpoints["can_socketcand"]
        logger = subprocess.Popen(
            [sys.executable, "-m", "can.logger", "-i", "socketcand", "-c", str(can_ep["channel"]),
             "--bus-kwargs", f"host={can_ep['host']}", f"port={can_ep['port']}"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(iter(logger.stdout.readline, "")), daemon=True)
        reader.start()
        try:
            await_true(lambda: any("Connected to" in x for x in lines), timeout_s=20, what="can.logger to connect")
            psu = pyvisa.ResourceManager("@py").open_resource(
                str(twin.endpoints["psu"]["resource"]), read_termination="\n", write_termination="\n"
            )
            psu.write("VOLT 3.8,(@1)")
            psu.write("CURR 3,(@1)")
            psu.write("OUTP 1,(@1)")  # the satellite boots and its nodes announce themselves on the bus
            frame = re.compile(r"ID:\s*[0-9a-fA-F]{8}\s+X")  # an extended-ID frame, as CSP over CAN uses
            await_true(lambda: any(frame.search(x) for x in lines), timeout_s=20, what="a CSP frame in can.logger")
            psu.write("OUTP 0,(@1)")
            psu.close()
        finally:
            logger.terminate()
            logger.wait(timeout=10)
