"""`--parallel` deals whole plan files out longest first (by the previous run's durations), so a long plan never
starts last while the other worker idles; what it does not know keeps xdist's order."""

from __future__ import annotations

import json
from pathlib import Path

from fixtures.parallel import LongestFirst, plan_durations

SECONDS = {"comms/test_downlink.py": 38.5, "comms/test_uplink.py": 30.1, "eps/test_outputs.py": 17.9}


def _queue(order: list[str], seconds: dict[str, float]) -> LongestFirst:
    queue = LongestFirst(lambda plan: seconds.get(plan, 0.0))
    for plan in order:
        queue[plan] = {f"{plan}::test": False}
    return queue


def _drain(queue: LongestFirst) -> list[str]:
    return [queue.popitem(last=False)[0] for _ in range(len(queue))]


def test_the_longest_plan_goes_first_whatever_xdist_queued_first():
    queue = _queue(["eps/test_outputs.py", "comms/test_uplink.py", "comms/test_downlink.py"], SECONDS)
    assert _drain(queue) == ["comms/test_downlink.py", "comms/test_uplink.py", "eps/test_outputs.py"]


def test_equal_or_unknown_durations_keep_xdists_order():
    assert _drain(_queue(["b.py", "a.py", "c.py"], {})) == ["b.py", "a.py", "c.py"]
    queue = _queue(["b.py", "a.py"], {})
    assert queue.popitem()[0] == "a.py", "popping from the end is xdist's, unchanged"


def test_a_requeued_plan_is_dealt_again_by_its_duration():
    """xdist puts the work of a crashed worker back with update(): it is dealt by duration like the rest."""
    queue = _queue(["eps/test_outputs.py"], SECONDS)
    queue.update({"comms/test_downlink.py": {"comms/test_downlink.py::test": False}})
    assert _drain(queue) == ["comms/test_downlink.py", "eps/test_outputs.py"]


def test_plan_durations_sum_each_files_tests_across_worker_journals(tmp_path: Path):
    def write(name: str, records: list[dict]) -> None:
        (tmp_path / name).write_text("".join(json.dumps(r) + "\n" for r in records))

    write("journal.jsonl", [{"kind": "run_start", "run_id": "r", "time": "2026-01-01T00:00:00+00:00", "workers": 2}])
    for worker, (test_id, duration) in {"gw0": ("a.py::t1", 2.0), "gw1": ("a.py::t2", 3.5)}.items():
        write(f"journal-{worker}.jsonl", [
            {"kind": "test_start", "test_id": test_id, "time": "2026-01-01T00:00:01+00:00"},
            {"kind": "test_end", "test_id": test_id, "outcome": "passed", "duration": duration,
             "time": "2026-01-01T00:00:05+00:00"},
        ])  # fmt: skip
    write("journal-gw2.jsonl", [{"kind": "test_end", "test_id": "b.py::t", "outcome": "passed", "duration": 1.0}])
    assert plan_durations(tmp_path / "journal.jsonl") == {"a.py": 5.5, "b.py": 1.0}
    assert plan_durations(tmp_path / "missing" / "journal.jsonl") == {}
