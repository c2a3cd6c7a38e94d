"""The action image, built by the local Docker engine from the repository's Dockerfile, run in dry-run mode
on a recorded pull_request payload exactly as GitHub runs a container action (workspace mounted at
/github/workspace, INPUT_* variables with hyphens, file commands in a mounted folder)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from kedro_vertex_ci.testing import make_project

from .conftest import EVENTS, GITHUB_TOKEN, read_outputs

pytestmark = [pytest.mark.docker, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]


def test_action_image_dry_run_on_a_pull_request(action_image: str, docker_env: dict[str, str], tmp_path: Path) -> None:
    workspace, files, workflow = tmp_path / "workspace", tmp_path / "file_commands", tmp_path / "workflow"
    for folder in (workspace, files, workflow):
        folder.mkdir()
    make_project(workspace, "spaceflights", shape="diamond", n=4,
                 vertexai={"project_id": "acme-ml", "region": "europe-west4",
                           "run_config": {"image": "europe-west4-docker.pkg.dev/acme-ml/kedro/sf",
                                          "root": "gs://acme-ml-runs/sf"}})
    shutil.copy2(EVENTS / "pull_request.json", workflow / "event.json")
    (files / "output").touch()
    (files / "summary").touch()
    env = {
        "GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": "pull_request", "GITHUB_EVENT_PATH": "/github/workflow/event.json",
        "GITHUB_REF": "refs/pull/17/merge", "GITHUB_SHA": "c" * 40, "GITHUB_HEAD_REF": "feature/faster-prep",
        "GITHUB_REPOSITORY": "acme/spaceflights", "GITHUB_WORKSPACE": "/github/workspace",
        "GITHUB_OUTPUT": "/github/file_commands/output", "GITHUB_STEP_SUMMARY": "/github/file_commands/summary",
        "GITHUB_API_URL": "http://127.0.0.1:9", "GITHUB_RUN_ID": "42",
        "INPUT_DRY-RUN": "true", "INPUT_WORKING-DIRECTORY": "spaceflights", "INPUT_GITHUB-TOKEN": GITHUB_TOKEN,
        "INPUT_BUILD": "true", "INPUT_MODE": "auto", "INPUT_PIPELINE": "__default__",
    }
    argv = ["docker", "run", "--rm", "--network", "none", "--workdir", "/github/workspace",
            "-v", f"{workspace}:/github/workspace", "-v", f"{files}:/github/file_commands",
            "-v", f"{workflow}:/github/workflow"]
    for name in env:
        argv += ["-e", name]
    result = subprocess.run([*argv, action_image], env={**docker_env, **env}, capture_output=True, text=True,
                            timeout=300, check=False)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]
    assert f"::add-mask::{GITHUB_TOKEN}" in result.stdout.splitlines()[0]
    assert GITHUB_TOKEN not in "\n".join(result.stdout.splitlines()[1:]) + result.stderr
    assert "Dry run for pipeline '__default__'" in log
    assert "would build: europe-west4-docker.pkg.dev/acme-ml/kedro/sf" in log
    assert "would submit: one run" in log and "would comment" in log
    outputs = read_outputs(files / "output")
    assert outputs["spec-path"] == "spaceflights/.kedro-vertex-ci/__default__.json"
    assert (workspace / outputs["spec-path"]).is_file()
    assert "```mermaid" in (files / "summary").read_text()
