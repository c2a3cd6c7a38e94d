"""A partial rerun of a run id (``--from-nodes``/``--to-nodes``/``--resume``) runs the steps that run had.

Compiled again, a project may group its nodes differently — cost-aware ``auto`` learns node durations from
the run itself — and a step of the new grouping would look for an intermediate that the earlier run kept
inside one of its own steps (found by the Kedro oracle's rotating seed under ``auto``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from kedro_vertex_ci.testing.projectgen import make_project

SCRIPT = Path(sys.executable).parent / "kedro-vertex-ci"


def _vertexai(grouping: str) -> dict:
    return {"project_id": "demo-project", "region": "europe-west4",
            "run_config": {"image": "img:1", "grouping": {"cls": grouping}}}


def _run_local(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT), "run-local", "--json", "--no-preload", *args], cwd=project,
                          capture_output=True, text=True, timeout=300, check=False)


def _regroup(project: Path, grouping: str) -> None:
    config = project / "conf" / "base" / "vertexai.yml"
    config.write_text(config.read_text().replace("cls: auto", f"cls: {grouping}"))


@pytest.mark.slow
def test_a_rerun_from_a_node_uses_the_spec_its_run_started_with(tmp_path):
    project = make_project(tmp_path, "rerun_demo", "chain", 3, vertexai=_vertexai("auto"),
                           catalog={"ds_2": {"type": "json.JSONDataset", "filepath": "data/ds_2.json"}})
    first = _run_local(project, "--run-id", "r1")
    assert first.returncode == 0, first.stderr[-3000:]
    assert len(json.loads(first.stdout)["steps"]) == 1  # one step: the chain's data never left it
    run_dir = project / ".kedro-vertex-ci" / "runs" / "r1"
    recorded = json.loads((run_dir / "run.json").read_text())["spec_sha256"]

    _regroup(project, "identity")  # the project now compiles to one step per node
    rerun = _run_local(project, "--run-id", "r1", "--from-nodes", "node_1")
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "continues with the spec it started with" in rerun.stderr
    assert [s["name"] for s in json.loads(rerun.stdout)["steps"] if s["selected"]] == \
        [s["name"] for s in json.loads(first.stdout)["steps"]]
    assert json.loads((run_dir / "run.json").read_text())["spec_sha256"] == recorded

    fresh = _run_local(project, "--run-id", "r2")  # a new run compiles anew: one step per node
    assert fresh.returncode == 0 and len(json.loads(fresh.stdout)["steps"]) == 3, fresh.stderr[-3000:]


def test_a_tampered_spec_record_is_not_used(tmp_path):
    from kedro_vertex_ci.local.run import earlier_spec, spec_digest

    run_dir = tmp_path / "r1"
    run_dir.mkdir()
    spec = {"pipelineInfo": {"name": "p"}, "root": {"dag": {"tasks": {}}}}
    (run_dir / "spec.json").write_text(json.dumps(spec))
    (run_dir / "run.json").write_text(json.dumps({"spec_sha256": spec_digest(spec)}))
    assert earlier_spec(tmp_path, "r1") == spec
    (run_dir / "spec.json").write_text(json.dumps({**spec, "pipelineInfo": {"name": "q"}}))
    assert earlier_spec(tmp_path, "r1") is None
    assert earlier_spec(tmp_path, "missing") is None
