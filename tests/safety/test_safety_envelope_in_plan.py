"""An envelope violation in a test plan: the step is refused before anything reaches the supply, the test
fails with one line saying what was refused and why, and the rest of the run carries on."""

from __future__ import annotations

import json
import textwrap

from safety_rig import bench_config_for, start_bench

PLAN = textwrap.dedent(
    """
    def test_overvoltage_step(psu):
        psu.set_voltage(psu.channel("dut_main"), 5.0)


    def test_next_step_still_runs(dut_power):
        dut_power.on()
    """
)


def test_envelope_violation_is_refused_and_reported(standalone_twin, tmp_path):
    plan = tmp_path / "test_envelope_plan.py"
    plan.write_text(PLAN)
    proc = start_bench(plan, bench_config_for(standalone_twin, tmp_path), tmp_path, "pass", "-rf")
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1, out
    refusal = "refused: 5 V on channel 1 is outside the DUT envelope [3, 4.2] V"
    assert f"EnvelopeViolation: {refusal}" in out
    [journal] = [p for p in (tmp_path / "runs").glob("*/journal.jsonl") if p.parent.name != "latest"]
    ends = [json.loads(x) for x in journal.read_text().splitlines() if '"test_end"' in x]
    assert refusal in ends[0]["message"] and ends[0]["outcome"] == "failed"
    assert "1 failed, 1 passed" in out
    # Nothing above the envelope ever reached the supply.
    assert standalone_twin.channel_state()["voltage_setpoint"] <= 4.2
    assert not standalone_twin.output_on()
