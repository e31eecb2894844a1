"""JUnit that lists every test the journal has, even when pytest could not report it.

pytest writes junit.xml from the reports it received. A test whose process was cut down before it could report
— a parallel run's worker killed by Ctrl-C mid-test — is then missing from JUnit, although the journal knows it
and the report, VCRM and DB show it *interrupted*. Nothing is overstated, but a CI server counting JUnit would see
fewer tests than ran. :func:`complete_junit` adds each such test as a failure naming how it ended, so JUnit,
report and journal agree.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable
from pathlib import Path

from reports.run_record import TestRecord

__all__ = ["complete_junit", "junit_address"]


def junit_address(test_id: str) -> tuple[str, str]:
    """(classname, name) as pytest's junitxml writes a node id: path without ``.py``, dotted, then classes."""
    parts = test_id.split("::")
    parts[0] = parts[0].removesuffix(".py").replace("/", ".")
    return ".".join(parts[:-1]), parts[-1]


def complete_junit(path: Path, tests: Iterable[TestRecord]) -> list[str]:
    """Add to the JUnit file at ``path`` every test of ``tests`` it lacks, with the journal's outcome (interrupted,
    failed or error: a failure naming it); returns the ids added. A missing or unreadable file is left alone (the
    report names the problem)."""
    try:
        tree = ET.parse(path)
    except (OSError, ET.ParseError):
        return []
    root = tree.getroot()
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    if suite is None:
        return []
    # A test whose worker died between its setup and its end is left by pytest as a bare <testcase time="…"/>
    # with no name: nothing a reader can use. The journal's entry for it replaces it below.
    stubs = [case for case in suite.findall("testcase") if case.get("name") is None]
    for stub in stubs:
        suite.remove(stub)
    present = {(case.get("classname", ""), case.get("name", "")) for case in suite.iter("testcase")}
    added: list[str] = []
    counts = {"tests": 0, "failures": 0, "skipped": 0}
    for test in tests:
        classname, name = junit_address(test.test_id)
        if (classname, name) in present:
            continue
        case = ET.SubElement(suite, "testcase", classname=classname, name=name, time=f"{test.duration or 0.0:.3f}")
        message = f"{test.outcome}: {test.message or 'the test did not report its end'}"
        note = "(added from the run's journal: pytest received no report of this test)"
        if test.outcome == "skipped":
            ET.SubElement(case, "skipped", message=message).text = f"{message}\n{note}"
            counts["skipped"] += 1
        elif test.outcome != "passed":  # failed, error, interrupted: none of them verified anything
            ET.SubElement(case, "failure", message=message).text = f"{message}\n{note}"
            counts["failures"] += 1
        counts["tests"] += 1
        added.append(test.test_id)
    if added or stubs:
        for key, n in counts.items():
            suite.set(key, str(int(suite.get(key, "0")) + n))
        tree.write(path, encoding="utf-8", xml_declaration=True)
    return added
