"""The operator in the loop: a prompt nobody can answer never waits and skips its test with the reason; a scripted
answer lets it run; every prompt, its answer, who gave it and the wait are journaled and read into the run record."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.errors import ConfigError
from bench.journal import Journal
from bench.prompts import NeedsOperator, OperatorDeclined, OperatorPrompts, Prompt, ScriptedAnswer, load_answers
from reports.run_record import read_journal

PROJECT = Path(__file__).resolve().parents[2]
J3 = "Confirm the RF cable J3 is connected to the attenuator"
TEST_ID = "test_plans/comms/test_comms_uplink.py::test_telecommand_through_the_bench_cable"


def twin_without_answers(tmp_path: Path) -> Path:
    """The default twin config minus its `answers:` (the twin answers the J3 prompt itself): someone must."""
    text = (PROJECT / "bench" / "configs" / "twin.yaml").read_text()
    config = tmp_path / "twin-no-answers.yaml"
    config.write_text(text.split("\n# Prompts the twin answers by construction")[0] + "\n")
    return config


def run_campaign(tmp_path: Path, answers: str = "") -> tuple[subprocess.CompletedProcess[str], list[dict]]:
    campaign = tmp_path / "j3.yaml"
    campaign.write_text(
        "id: j3\nissue: 1\npurpose: the operator step of the uplink plan\nkind: nightly\nmodel_level: EM\n"
        "plans: [test_plans/comms/test_comms_uplink.py]\nkeyword: bench_cable\n" + answers
    )
    out = tmp_path / "runs"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.cli",
            "run",
            str(campaign),
            f"--out={out}",
            "-c",
            str(twin_without_answers(tmp_path)),
        ],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=240,
        stdin=subprocess.DEVNULL,  # nobody at the bench
    )
    journal = next(out.glob("*/journal.jsonl"))
    return proc, [json.loads(line) for line in journal.read_text().splitlines()]


def test_a_prompt_nobody_can_answer_skips_the_test_with_the_reason(tmp_path):
    proc, records = run_campaign(tmp_path)
    end = next(r for r in records if r["kind"] == "test_end")
    assert end["outcome"] == "skipped"  # never "passed": the step was not done
    assert end["message"].endswith(f"needs an operator: {J3}")  # pytest says "Skipped: " first
    prompt = next(r for r in records if r["kind"] == "operator_prompt")
    assert prompt["outcome"] == "unanswered" and prompt["answered_by"] == "" and prompt["text"] == J3
    assert f"needs an operator: {J3}" in proc.stderr  # the end-of-run table says why
    assert "verdict: INCOMPLETE" in proc.stderr


def test_a_scripted_answer_lets_the_step_run(tmp_path):
    proc, records = run_campaign(tmp_path, f'answers:\n  "{J3}": yes\n')
    assert proc.returncode == 0, proc.stdout + proc.stderr
    end = next(r for r in records if r["kind"] == "test_end")
    assert end["outcome"] == "passed", end
    prompt = next(r for r in records if r["kind"] == "operator_prompt")
    assert prompt["answer"] is True and prompt["outcome"] == "answered"
    assert prompt["answered_by"] == f"script {tmp_path / 'j3.yaml'}"
    report = (next((tmp_path / "runs").glob("*/report.html"))).read_text()
    assert "Operator steps" in report and J3 in report


def prompts(tmp_path: Path, answers: dict[str, ScriptedAnswer], ask=None, why="") -> OperatorPrompts:
    return OperatorPrompts("plan.py::test_x", Journal(tmp_path / "journal.jsonl"), answers, ask, who="ada", why=why)


def test_each_answer_is_journaled_with_who_and_the_wait_and_read_into_the_run_record(tmp_path):
    typed = iter(["maybe", "y", "deployable", "abc", "3.71"])  # a typo is asked again, not a failure
    op = prompts(tmp_path, {}, ask=lambda prompt: next(typed))
    op.confirm(J3)
    assert op.choose("Which antenna is fitted?", ["stub", "deployable"]) == "deployable"
    assert op.enter_value("Battery voltage on the DMM", units="V") == pytest.approx(3.71)
    op.journal.close()
    actions = read_journal(tmp_path / "journal.jsonl").tests[0].operator_actions
    assert [(a.prompt, a.answer, a.answered_by, a.outcome) for a in actions] == [
        ("confirm", "yes", "operator ada", "answered"),
        ("choose", "deployable", "operator ada", "answered"),
        ("value", "3.71", "operator ada", "answered"),
    ]
    assert actions[2].units == "V" and actions[1].options == ("stub", "deployable")
    assert all(a.waited is not None and a.waited >= 0 for a in actions)


def test_a_declined_confirmation_fails_and_is_journaled(tmp_path):
    op = prompts(tmp_path, {}, ask=lambda prompt: "no")
    with pytest.raises(OperatorDeclined, match="the operator declined: Remove the RBF pin"):
        op.confirm("Remove the RBF pin")
    op.journal.close()
    (action,) = read_journal(tmp_path / "journal.jsonl").tests[0].operator_actions
    assert action.outcome == "declined" and action.answer == "no"


def test_with_nobody_to_ask_a_prompt_never_waits(tmp_path):
    def ask(prompt: Prompt) -> object:
        raise AssertionError("must not ask")

    op = prompts(tmp_path, {}, ask=None, why="CI is set")
    with pytest.raises(NeedsOperator, match=f"needs an operator: {J3}"):
        op.confirm(J3)
    scripted = prompts(tmp_path, {"Battery voltage on the DMM": ScriptedAnswer(3.9, "answers.yaml")}, ask=ask)
    assert scripted.enter_value("Battery voltage on the DMM", units="V") == 3.9


def test_a_scripted_answer_of_the_wrong_kind_names_file_and_prompt(tmp_path):
    op = prompts(tmp_path, {"Which antenna?": ScriptedAnswer("whip", "answers.yaml")})
    with pytest.raises(ConfigError, match=r"answers\.yaml: answers\.'Which antenna\?': 'whip' is not one of"):
        op.choose("Which antenna?", ["stub", "deployable"])


def test_an_answers_file_is_a_mapping_of_text_to_answer(tmp_path):
    good = tmp_path / "answers.yaml"
    good.write_text(f'"{J3}": yes\n"Battery voltage on the DMM": 4\n')
    answers = load_answers(good)
    assert answers[J3].value is True and answers["Battery voltage on the DMM"].value == 4.0
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a list\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: an answers file is a YAML mapping"):
        load_answers(bad)


def test_at_a_terminal_the_operator_answers_and_the_journal_says_who(tmp_path):
    """A development run on a terminal: the prompt appears (pytest's capture suspended), "y" answers it."""
    master, slave = pty.openpty()
    argv = [sys.executable, "-m", "bench.cli", "run", "test_plans/comms/test_comms_uplink.py", "-k", "bench_cable",
            "-c", str(twin_without_answers(tmp_path))]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "CI"} | {"TERM": "xterm", "BENCH_OPERATOR": "ada"}
    proc = subprocess.Popen([*argv, f"--out={tmp_path}"], cwd=PROJECT, stdin=slave, stdout=slave, stderr=slave, env=env)
    os.close(slave)
    screen, answered = b"", False
    try:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # the terminal closed with the process
                break
            if not data:
                break
            screen += data
            if not answered and b"OPERATOR" in screen and b"[y/n]" in screen:
                os.write(master, b"y\r")
                answered = True
        assert proc.wait(timeout=60) == 0, screen.decode(errors="replace")[-2000:]
    finally:
        proc.kill()
        os.close(master)
    assert answered
    records = [json.loads(line) for line in next(tmp_path.glob("*/journal.jsonl")).read_text().splitlines()]
    prompt = next(r for r in records if r["kind"] == "operator_prompt")
    assert prompt["answered_by"] == "operator ada" and prompt["answer"] is True and prompt["waited"] >= 0
    assert next(r for r in records if r["kind"] == "test_end")["outcome"] == "passed"


def test_the_wait_for_the_operator_does_not_count_against_the_test_timeout(tmp_path):
    """A 2 s pytest-timeout and an operator who takes 3 s to answer: the timer is paused, the test passes."""
    plan = tmp_path / "test_slow_operator.py"
    plan.write_text('def test_slow(operator):\n    operator.confirm("Remove the RBF pin")\n')
    limits = PROJECT / "test_plans" / "limits.yaml"
    master, slave = pty.openpty()
    argv = [sys.executable, "-m", "bench.cli", "run", str(plan), f"--out={tmp_path / 'runs'}"]
    argv += ["--", f"--limits={limits}", "--timeout=2", "-p", "no:cacheprovider"]
    env = {k: v for k, v in os.environ.items() if k != "CI"} | {"TERM": "xterm"}
    proc = subprocess.Popen(argv, cwd=PROJECT, stdin=slave, stdout=slave, stderr=slave, env=env)
    os.close(slave)
    screen, asked_at, answered = b"", None, False
    try:
        while True:
            wait = None if asked_at is None or answered else max(0.0, asked_at + 3.0 - time.monotonic())
            ready, _, _ = select.select([master], [], [], wait)
            if not ready:  # the slow operator's 3 s are up: answer
                os.write(master, b"y\r")
                answered = True
                continue
            try:
                data = os.read(master, 65536)
            except OSError:
                break
            if not data:
                break
            screen += data
            if asked_at is None and b"[y/n]" in screen:
                asked_at = time.monotonic()
        assert proc.wait(timeout=60) == 0, screen.decode(errors="replace")[-2000:]
    finally:
        proc.kill()
        os.close(master)
    records = [json.loads(line) for line in next(tmp_path.glob("runs/*/journal.jsonl")).read_text().splitlines()]
    assert next(r for r in records if r["kind"] == "operator_prompt")["waited"] >= 2.5
    assert next(r for r in records if r["kind"] == "test_end")["outcome"] == "passed"
