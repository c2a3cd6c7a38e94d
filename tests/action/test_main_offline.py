"""The orchestrator on real Kedro projects, for the paths that never touch the cloud: dry run, fork PR,
mode compile and input errors. Each asserts the log, the outputs file and the summary the runner would see."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from action.main import run
from kedro_vertex_ci.testing import make_project

from .conftest import GITHUB_TOKEN, OIDC_TOKEN, read_outputs

VERTEXAI = {
    "project_id": "acme-ml",
    "region": "europe-west4",
    "run_config": {"image": "europe-west4-docker.pkg.dev/acme-ml/kedro/spaceflights", "root": "gs://acme-ml-vertex/root"},
}


def _no_cloud(*_args: object, **_kwargs: object) -> None:
    raise AssertionError("this path must not connect to any cloud API")


@pytest.fixture
def project_env(tmp_path: Path, make_env: Callable[..., dict[str, str]]) -> Callable[..., dict[str, str]]:
    workspace = tmp_path / "workspace"
    make_project(workspace, "spaceflights", shape="diamond", n=5, vertexai=VERTEXAI)

    def make(case: str, **inputs: object) -> dict[str, str]:
        return make_env(case, working_directory="spaceflights", **inputs)

    return make


def _run(env: dict[str, str]) -> tuple[int, str]:
    stream = io.StringIO()
    code = run(env, stream=stream, connect=_no_cloud)
    return code, stream.getvalue()


def test_dry_run_prints_the_plan_and_writes_outputs(project_env: Callable[..., dict[str, str]]) -> None:
    env = project_env("pull_request", dry_run="true")
    code, log = _run(env)
    assert code == 0, log
    assert "Dry run for pipeline '__default__'" in log
    assert "would build: europe-west4-docker.pkg.dev/acme-ml/kedro/spaceflights" in log
    assert "would submit: one run with labels" in log and "'github-pr': '17'" in log
    assert "would comment: one sticky comment on the pull request" in log
    assert "::group::Compile pipeline __default__" in log and "::endgroup::" in log
    outputs = read_outputs(Path(env["GITHUB_OUTPUT"]))
    assert outputs["spec-path"] == "spaceflights/.kedro-vertex-ci/__default__.json"
    assert outputs["job-id"] == "" and outputs["image-digest"] == ""
    spec = json.loads((Path(env["GITHUB_WORKSPACE"]) / outputs["spec-path"]).read_text())
    assert spec["root"]["dag"]["tasks"]
    summary = Path(env["GITHUB_STEP_SUMMARY"]).read_text()
    assert "Dry run (no cloud API called)" in summary and "```mermaid\nflowchart TD" in summary
    tasks = spec["root"]["dag"]["tasks"]
    edges = sum(len(task.get("dependentTasks", [])) for task in tasks.values())
    assert summary.count(" --> ") == edges > 0
    estimate = re.search(r"\| Estimate \| (\d+) steps, wall ≈ [^,]+, billed ≈ [^(]+ \(lower bound [^;]+; 0/(\d+) node", summary)
    assert estimate and int(estimate.group(1)) == len(tasks), summary  # every node at the default duration
    assert "estimate on Vertex:" in log


def test_dry_run_on_the_default_branch_shows_the_schedule(project_env: Callable[..., dict[str, str]]) -> None:
    code, log = _run(project_env("push_main", dry_run="true", cron="0 6 * * 1"))
    assert code == 0, log
    assert "would schedule: cron 0 6 * * 1" in log and "would submit" not in log


def test_fork_pr_compiles_and_validates_only_and_succeeds(project_env: Callable[..., dict[str, str]]) -> None:
    env = project_env("pull_request_fork", oidc=False)
    assert "ACTIONS_ID_TOKEN_REQUEST_URL" not in env
    code, log = _run(env)
    assert code == 0, log
    assert "::notice title=Compile only::pull request from a fork" in log
    summary = Path(env["GITHUB_STEP_SUMMARY"]).read_text()
    assert "Compiled and validated" in summary and "pull request from a fork" in summary
    assert read_outputs(Path(env["GITHUB_OUTPUT"]))["spec-path"].endswith("__default__.json")


def test_config_error_becomes_a_file_line_annotation(tmp_path: Path, make_env: Callable[..., dict[str, str]]) -> None:
    workspace = tmp_path / "workspace"
    bad = "project_id: acme-ml\nregion: europe-west4\nrun_config:\n  image: x\n  root: gs://b/r\n  grouping:\n    strategy: bogus\n"
    make_project(workspace, "spaceflights", shape="chain", n=3, vertexai=bad)
    env = make_env("push_branch", working_directory="spaceflights", mode="compile")
    code, log = _run(env)
    assert code == 2
    errors = [line for line in log.splitlines() if line.startswith("::error ")]
    assert errors and "file=spaceflights/conf/base/vertexai.yml" in errors[0] and ",line=" in errors[0]
    assert read_outputs(Path(env["GITHUB_OUTPUT"])) == dict.fromkeys(
        ("image-digest", "job-id", "run-url", "schedule-name", "spec-path"), ""
    )


def test_bad_inputs_are_reported_without_a_traceback(make_env: Callable[..., dict[str, str]]) -> None:
    code, log = _run(make_env("push_branch", mode="deploy", build="perhaps"))
    assert code == 2
    assert "::error title=Invalid action input::mode: expected one of" in log
    assert "::error title=Invalid action input::build: expected true or false" in log
    assert "Traceback" not in log


def test_entrypoint_subprocess_masks_tokens(project_env: Callable[..., dict[str, str]]) -> None:
    env = {**os.environ, **project_env("push_branch", dry_run="true")}
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-P", "-m", "action"], env={**env, "PYTHONPATH": str(root)}, cwd=env["GITHUB_WORKSPACE"],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert f"::add-mask::{GITHUB_TOKEN}" in lines[:3] and f"::add-mask::{OIDC_TOKEN}" in lines[:3]
    rest = "\n".join(lines[2:]) + result.stderr
    assert GITHUB_TOKEN not in rest and OIDC_TOKEN not in rest
    assert "would submit" in result.stdout
