"""OBC debug-console procedure: the OBC as its maintenance UART shows it, beneath the flight software.

With the console open before power-on, the boot log must show the firmware banner, pass every self-test and
complete in time; the firmware revision it prints must be the one the OBC reports over CSP (CMP ident); the
maintenance shell must answer. Requirements: OTS-OBC-050, OTS-OBC-051, OTS-OBC-052.
"""

import re
import time

import pytest

pytestmark = pytest.mark.subsystem("OBC")

BANNER = r"OTS-SAT OBC firmware v?(\S+)\s"  # the trailing space: a line still arriving is not a version
PROBLEM = re.compile(r"\b(ERROR|WARNING|FAIL(ED)?)\b")
SELFTEST = re.compile(r"\bselftest\s+(\S+)\s+(PASS|FAIL)\b")
SUMMARY = r"(\d+)/(\d+) self-tests passed"


@pytest.mark.requirement("OTS-OBC-050", "OTS-OBC-051")
def test_boot_log_complete_in_time_and_clean(console, dut_power, measure):
    """Power on: banner, self-tests and `boot complete` within the time limit, no error or warning line,
    one self-test line for every self-test the summary counts, and the shell answers its status command."""
    limit_s = measure.limits["OBC.CONSOLE_BOOT_TIME"].high
    started = time.monotonic()
    dut_power.on(settle=False)
    console.expect(BANNER, timeout_s=limit_s)
    summary = console.expect(SUMMARY, timeout_s=limit_s)
    console.expect(r"boot complete", timeout_s=limit_s)
    measure("OBC.CONSOLE_BOOT_TIME", time.monotonic() - started)
    problems = [line for line in console.lines if PROBLEM.search(line)]
    measure("OBC.CONSOLE_BOOT_PROBLEMS", len(problems), description="; ".join(problems)[:500])
    # The summary's total against the lines: a self-test the log does not show was not seen to pass.
    shown = {m.group(1) for line in console.lines if (m := SELFTEST.search(line))}
    measure("OBC.CONSOLE_SELFTESTS_UNLISTED", int(summary.group(2)) - len(shown), description=", ".join(sorted(shown)))
    console.expect(r"obc> ", timeout_s=limit_s)
    uptime = console.command("uptime")
    assert re.search(r"\d", uptime), f"the console's `uptime` command gave no number: {uptime!r}"


@pytest.mark.requirement("OTS-OBC-052")
def test_console_firmware_equals_csp_ident(console, dut_power, satellite):
    """The revision on the console banner is the revision the OBC reports over CSP (CMP ident)."""
    dut_power.on(settle=False)
    banner = console.expect(BANNER, timeout_s=10)
    satellite.await_nodes_alive(nodes=["OBC"])
    ident = satellite.ident("OBC")
    on_console, over_csp = banner.group(1).removeprefix("v"), ident.revision.removeprefix("v")
    assert on_console == over_csp, f"console says firmware {on_console}, CSP ident says {over_csp}"
