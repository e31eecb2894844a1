"""The live view's parts without a browser: the journal tail, the prompt slot (first answer wins), the token rule
of the controls, the report route, and a server whose client dies (the run goes on)."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import socket
import threading
import urllib.error
import urllib.request
from typing import Any

import pytest

from bench import emergency
from bench.icd import load_icd
from bench.live.control import ControlRefused
from bench.live.feed import CAN_FRAME_BITS, JournalTail, LiveFeed
from bench.live.prompts import PromptSlot
from bench.live.server import LiveServer
from bench.prompts import Answered, Prompt
from bench.satellite.history import History
from bench.satellite.link import SatelliteCounters
from bench.waiting import await_true


def test_the_tail_hands_on_whole_lines_only(tmp_path):
    journal = tmp_path / "journal.jsonl"
    tail = JournalTail(journal)
    assert tail.read_lines() == []  # no journal yet: nothing, no error
    with open(journal, "ab", buffering=0) as f:
        f.write(b'{"kind":"a"}\n{"kind":"b"')
        assert tail.read_lines() == [b'{"kind":"a"}']
        f.write(b',"x":1}\n')
        assert tail.read_lines() == [b'{"kind":"b","x":1}']
        assert tail.read_lines() == []


def test_a_late_page_gets_the_running_test_and_no_earlier_measurements(tmp_path):
    journal = tmp_path / "journal.jsonl"
    lines = [
        {"kind": "run_start", "run_id": "r1"},
        {"kind": "test_start", "test_id": "t1"},
        {"kind": "measurement", "test_id": "t1", "name": "A"},
        {"kind": "test_end", "test_id": "t1"},
        {"kind": "test_start", "test_id": "t2"},
        {"kind": "measurement", "test_id": "t2", "name": "B"},
    ]
    journal.write_bytes(b"".join(json.dumps(r, separators=(",", ":")).encode() + b"\n" for r in lines))
    feed = LiveFeed(run_id="r1", journal=journal)
    polled = dict(feed.poll())
    assert [r["kind"] for r in json.loads(polled["journal"])] == [r["kind"] for r in lines]
    replayed = [r for r in json.loads(dict(feed.replay())["journal"])]
    assert [r.get("name") for r in replayed if r["kind"] == "measurement"] == ["B"]
    assert [r["kind"] for r in replayed if r["kind"] != "measurement"] == [
        "run_start", "test_start", "test_end", "test_start",
    ]  # fmt: skip
    assert dict(feed.poll()) == {}  # nothing new, nothing sent


class _Link:
    """The satellite link as the feed reads it: the real history store and counters, filled by the test."""

    def __init__(self) -> None:
        self.icd = load_icd()
        self.history = History(self.icd)
        self.counters = SatelliteCounters(**{name: 0 for name in SatelliteCounters.__dataclass_fields__})

    def latest_telemetry(self) -> list[Any]:
        return self.history.latest_all()

    def count(self, **moved: int) -> None:
        self.counters = dataclasses.replace(self.counters, **moved)


def test_the_bus_load_and_the_last_telemetry_per_node_come_once_a_second():
    link, now = _Link(), [100.0]
    feed = LiveFeed(run_id="r1", bitrate=1_000_000, clock=lambda: now[0])
    assert "bus" not in dict(feed.poll())  # no satellite link opened yet: nothing to show
    feed.bus = link
    first = json.loads(dict(feed.poll())["bus"])
    assert first["frames_per_s"] is None and first["load_pct"] is None  # one sample is no rate yet

    with link.history.cond:
        link.history.file_samples({"EPS.VBAT": 4.012, "EPS.OUT_OBC": True}, 1_800_000_000.0)
        link.history.file_samples({"EPS.VBAT": 4.020, "COMMS.TX_POWER": 30}, 1_800_000_001.5)
    link.count(frames_rx=900, frames_tx=50, non_csp_frames=50)
    now[0] += 0.5
    assert dict(feed.poll()) == {}  # sampled once a second, not at every poll
    now[0] += 0.5
    polled = dict(feed.poll())
    bus = json.loads(polled["bus"])
    assert bus["frames_per_s"] == 1000.0
    assert bus["load_pct"] == pytest.approx(1000 * CAN_FRAME_BITS / 1_000_000 * 100)
    telemetry = json.loads(polled["telemetry"])
    assert telemetry["EPS"]["values"] == [["VBAT", 4.02, "V", 1_800_000_001.5], ["OUT_OBC", True, "", 1_800_000_000.0]]
    assert telemetry["EPS"]["time"] == 1_800_000_001.5
    assert telemetry["COMMS"]["values"] == [["TX_POWER", 30, "dBm", 1_800_000_001.5]]
    assert set(dict(feed.replay())) >= {"bus", "telemetry"}  # a page that connects later sees them at once

    link.count(frames_rx=10, frames_tx=0, non_csp_frames=0)  # the counters were reset: no negative rate
    now[0] += 1.0
    assert json.loads(dict(feed.poll())["bus"])["frames_per_s"] is None


def _ask_in_thread(slot: PromptSlot, prompt: Prompt, terminal: Any = None) -> dict[str, Any]:
    result: dict[str, Any] = {}

    def ask() -> None:
        try:
            result["answer"] = slot.ask(prompt, terminal)
        except BaseException as exc:
            result["error"] = exc

    thread = threading.Thread(target=ask, daemon=True)
    thread.start()
    result["thread"] = thread
    await_true(lambda: slot.shown() is not None, timeout_s=5, what="the prompt to open")
    return result


def test_the_page_answers_a_prompt_once():
    slot = PromptSlot()
    result = _ask_in_thread(slot, Prompt("confirm", "Cable J3 connected?"))
    shown = slot.shown()
    assert shown is not None and shown["text"] == "Cable J3 connected?" and shown["kind"] == "confirm"
    assert not slot.answer(shown["id"] + 1, "yes", "browser 127.0.0.1")  # another prompt's id: refused
    assert slot.answer(shown["id"], "yes", "browser 127.0.0.1")
    result["thread"].join(5)
    assert result["answer"] == Answered("yes", "browser 127.0.0.1")
    assert slot.shown() is None
    assert not slot.answer(shown["id"], "no", "browser 10.0.0.2")  # answered already: the first answer won


def test_a_line_at_the_terminal_answers_first_and_the_page_is_then_refused():
    slot = PromptSlot()
    read_fd, write_fd = os.pipe()
    with os.fdopen(read_fd, "r") as terminal, os.fdopen(write_fd, "w") as keyboard:
        result = _ask_in_thread(slot, Prompt("value", "Battery voltage on the DMM", units="V"), terminal)
        shown = slot.shown()
        assert shown is not None
        keyboard.write("7.42\n")
        keyboard.flush()
        result["thread"].join(5)
        assert result["answer"] == Answered("7.42", "")  # "" = the run's operator at the terminal
        assert not slot.answer(shown["id"], "7.5", "browser 127.0.0.1")


def test_the_emergency_stop_ends_a_wait_for_the_page():
    slot = PromptSlot()
    result = _ask_in_thread(slot, Prompt("confirm", "Ready?"))
    try:
        emergency.latch(emergency.StopRecord("browser 127.0.0.1", "bench-pc", "now", "test"))
        result["thread"].join(5)
        assert isinstance(result.get("error"), emergency.EmergencyStop)
    finally:
        emergency.reset()


class FakeControls:
    """Stands in for RunControls: records what the page asked for."""

    def __init__(self) -> None:
        self.stops: list[str] = []
        self.answers: list[tuple[int, object, str]] = []

    def stop(self, client: str) -> str:
        self.stops.append(client)
        return "stopped"

    def answer(self, prompt_id: int, raw: object, client: str) -> None:
        if raw == "maybe":
            raise ControlRefused("'maybe' is no answer to a confirmation; give yes or no")
        self.answers.append((prompt_id, raw, client))


@pytest.fixture
def served(tmp_path):
    runs = tmp_path / "runs"
    (runs / "r1").mkdir(parents=True)
    (runs / "r1" / "report.html").write_text("<h1>report</h1>")
    (runs / "r1" / "journal.jsonl").write_text("")
    (tmp_path / "secret.txt").write_text("not to be served")
    controls = FakeControls()
    server = LiveServer(
        LiveFeed(run_id="r1", journal=runs / "r1" / "journal.jsonl"),
        controls=controls,  # type: ignore[arg-type]
        runs_dir=runs,
    ).start()
    yield server, controls
    server.stop(drain_s=0)


def _post(url: str, body: dict[str, Any], token: str | None) -> tuple[int, dict[str, Any]]:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["X-Bench-Token"] = token
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_controls_need_the_runs_token(served):
    server, controls = served
    assert server.url.startswith("http://127.0.0.1:") and server.token not in server.url
    assert _post(server.url + "api/stop", {}, None)[0] == 403
    status, body = _post(server.url + "api/stop", {}, "not-the-token")
    assert status == 403 and "token" in body["message"]
    assert controls.stops == []
    status, body = _post(server.url + "api/stop", {}, server.token)
    assert (status, body["ok"], controls.stops) == (200, True, ["127.0.0.1"])
    assert _post(server.url + "api/answer", {"id": 3, "answer": "yes"}, None)[0] == 403
    assert _post(server.url + "api/answer", {"id": 3, "answer": "yes"}, server.token)[0] == 200
    status, body = _post(server.url + "api/answer", {"id": 3, "answer": "maybe"}, server.token)
    assert status == 409 and "give yes or no" in body["message"]
    assert controls.answers == [(3, "yes", "127.0.0.1")]


def test_only_report_files_of_runs_are_served(served):
    server, _ = served

    def get(path: str) -> int:
        try:
            with urllib.request.urlopen(server.url + path, timeout=10) as response:
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return exc.code

    assert get("runs/r1/report.html") == 200
    assert get("runs/r1/journal.jsonl") == 404  # the page links the reports, nothing else of the run
    assert get("runs/r1/report.pdf") == 404  # not written
    assert get("runs/..%2Fsecret.txt/report.html") == 404
    assert get("runs/../secret.txt") == 404
    assert get("static/vendor/uplot/LICENSE") == 200  # the vendored library travels with its licence
    assert get("") == 200


def test_a_page_that_dies_mid_stream_does_not_stop_the_server(served):
    server, _ = served
    host, port = "127.0.0.1", server.port
    with socket.create_connection((host, port), timeout=5) as dying:
        dying.sendall(f"GET /events HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        received = b""
        while b"event: hello" not in received:  # the headers may come alone first; recv times out at 5 s
            chunk = dying.recv(65536)
            assert chunk, f"the stream ended without its hello: {received!r}"
            received += chunk
    with urllib.request.urlopen(server.url + "events", timeout=10) as response:  # a second page still gets it all
        assert response.readline().startswith(b"event: hello")


def test_bench_view_serves_the_page_read_only(tmp_path):
    feed = LiveFeed(view=lambda: {"benches": [], "runs": []})
    server = LiveServer(feed, runs_dir=tmp_path).start()
    try:
        status, body = _post(server.url + "api/stop", {}, server.token)  # even with the token: no run, no control
        assert status == 403 and "read-only" in body["message"]
        hello = dict([feed.hello(controls=False)])["hello"]
        assert json.loads(hello) == {"run_id": "", "mode": "view", "controls": False}
    finally:
        server.stop(drain_s=0)


def test_the_page_is_package_data():
    from bench.live.server import PAGE_DIR

    for name in ("index.html", "live.js", "live.css", "vendor/uplot/uPlot.iife.min.js", "vendor/uplot/LICENSE"):
        assert (PAGE_DIR / name).is_file(), name
    page = (PAGE_DIR / "index.html").read_text() + (PAGE_DIR / "live.js").read_text()
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)  # no CDN: the bench PC may be offline
