"""The cost model checked against a real run: ``run-local --simulate-step-overhead S`` on the example lands
within 15% of the model's estimate for the same steps; and run-local's measured durations reach ``plan``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kedro_vertex_ci.costmodel import makespan

from .test_e2e_example import BIN, _copy_example, _run

pytestmark = pytest.mark.slow

SIMULATED = 10.0  # seconds: short for a test, large against the jitter of a local step's own time
PARALLEL = 2


def _json(argv: list[str], project: Path) -> dict:
    proc = _run([str(BIN / "kedro-vertex-ci"), *argv], project)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(proc.stdout)


def test_simulated_step_overhead_matches_the_estimate(tmp_path):
    project = _copy_example(tmp_path / "spaceflights_lite", grouping=None)  # the example's own auto
    calibration = _json(["run-local", "--json", "--max-parallel", str(PARALLEL)], project)
    measured = json.loads((Path(calibration["run_dir"]) / "node-durations.json").read_text())["nodes"]

    plan = _json(["plan", "--json"], project)
    sources = {node: info["source"] for node, info in plan["nodes"].items()}
    assert sources == {node: f"measured (run {calibration['run_id']})" for node in measured}
    auto = next(p for p in plan["plans"] if p["strategy"] == "auto")
    steps = auto["step_list"]
    assert sorted(s["name"] for s in calibration["steps"]) == sorted(s["name"] for s in steps)  # the plan that ran
    # The example's placements (default, train_model's 2 CPUs, default) force three steps in a row: the plain
    # bound pays S once, the bound with placements three times, and auto reaches it.
    bound = plan["lower_bound"]
    placed = bound["with_placements"]["wall_seconds"]
    assert bound["wall_seconds"] + 2 * plan["model"]["step_overhead"] <= placed + 1e-6
    assert placed <= auto["wall_seconds"] <= 1.15 * placed

    # Each step's own time here (its fork and Kedro session included): the faster of the first run (cold:
    # data generated, caches empty) and a second one; the model adds S to every step and composes the wall
    # from the step graph and P slots.
    warm = _json(["run-local", "--json", "--max-parallel", str(PARALLEL)], project)
    cold_seconds = {s["name"]: s["duration_seconds"] for s in calibration["steps"]}
    spent = {s["name"]: min(cold_seconds[s["name"]], s["duration_seconds"]) for s in warm["steps"]}
    checked = _json(
        ["run-local", "--json", "--max-parallel", str(PARALLEL), "--simulate-step-overhead", str(SIMULATED)],
        project,
    )
    assert checked["state"] == "succeeded"
    index = {s["name"]: i for i, s in enumerate(steps)}
    position = {node: i for i, node in enumerate(plan["nodes"])}
    predicted = makespan(
        [SIMULATED + spent[s["name"]] for s in steps],
        [[index[d] for d in s["depends_on"]] for s in steps],
        PARALLEL,
        [min(position[n] for n in s["nodes"]) for s in steps],
    )
    wall = checked["duration_seconds"]
    assert abs(wall - predicted) <= 0.15 * predicted, (wall, predicted, spent)
