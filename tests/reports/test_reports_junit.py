"""JUnit completed from the journal: a test pytest never reported (its worker killed) is added with its outcome,
never as passed when it was not; tests pytest reported are left as they are."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from journal_builder import JournalBuilder

from reports.junit import complete_junit, junit_address
from reports.run_record import read_journal

JUNIT = """<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" errors="0" failures="0"
skipped="0" tests="1" time="3.0"><testcase classname="test_plans.eps.test_eps_power" name="test_a" time="1.0"/>
<testcase time="0.6"/></testsuite></testsuites>"""


def test_a_test_missing_from_junit_is_added_with_its_journaled_outcome(journal: JournalBuilder) -> None:
    a, b, c = (f"test_plans/eps/test_eps_power.py::test_{x}" for x in "abc")
    journal.run_start()
    journal.test_start(a).test_end(a, "passed")
    journal.test_start(b).test_end(b, "interrupted", message="SIGINT (Ctrl-C)")
    journal.test_start(c)  # the journal ends while c runs: interrupted when read
    record = read_journal(journal.write())
    path = journal.run_dir / "junit.xml"
    path.write_text(JUNIT)

    assert complete_junit(path, record.tests) == [b, c]
    suite = ET.parse(path).getroot().find("testsuite")
    assert suite is not None and (suite.get("tests"), suite.get("failures")) == ("3", "2")
    cases = {case.get("name"): case for case in suite.iter("testcase")}
    assert sorted(cases) == ["test_a", "test_b", "test_c"]  # pytest's nameless stub of a test cut short is gone
    assert cases["test_a"].find("failure") is None  # reported by pytest: untouched
    failure = cases["test_b"].find("failure")
    assert failure is not None and failure.get("message") == "interrupted: SIGINT (Ctrl-C)"
    assert cases["test_c"].find("failure") is not None
    assert complete_junit(path, record.tests) == []  # nothing lacks any more


def test_junit_addresses_follow_pytest() -> None:
    assert junit_address("test_plans/comms/test_comms_rf.py::test_power[30]") == (
        "test_plans.comms.test_comms_rf",
        "test_power[30]",
    )
    assert junit_address("tests/x/test_y.py::TestZ::test_w") == ("tests.x.test_y.TestZ", "test_w")
