"""The action image, built by the local Docker engine from the repository's Dockerfile, run in dry-run mode
on a recorded pull_request payload exactly as GitHub runs a container action (workspace mounted at
/github/workspace, INPUT_* variables with hyphens, file commands in a mounted folder)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from kedro_vertex_ci.testing import make_project

from .conftest import EVENTS, GITHUB_TOKEN, read_outputs

pytestmark = [pytest.mark.docker, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
IMAGE = "kvc-action:test"


@pytest.fixture(scope="module")
def docker_env() -> dict[str, str]:
    """Reuse the project's private offline Docker engine (`make test` starts it), else start it."""
    script = str(ROOT / "scripts" / "docker-engine.sh")
    status = subprocess.run(["bash", script, "status"], capture_output=True, text=True, timeout=60, check=False)
    match = re.search(r"DOCKER_HOST=(\S+)", status.stdout)
    if status.returncode != 0 or "base image: kvc-base:bookworm present" not in status.stdout:
        up = subprocess.run(["bash", script, "up"], capture_output=True, text=True, timeout=900, check=False)
        assert up.returncode == 0, up.stderr[-3000:]
        match = re.search(r"export DOCKER_HOST=(\S+)", up.stdout)
    assert match, status.stdout
    return {**os.environ, "DOCKER_HOST": match.group(1)}


@pytest.fixture(scope="module")
def action_image(docker_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> str:
    """Build the action image FROM the offline base with a host-built wheelhouse (no index, no network)."""
    wheels = subprocess.run(["bash", str(ROOT / "scripts" / "action-wheelhouse.sh")], capture_output=True, text=True,
                            timeout=900, check=False)
    assert wheels.returncode == 0, wheels.stderr[-3000:]
    context = tmp_path_factory.mktemp("action-context")
    for name in ("Dockerfile", ".dockerignore", "pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, context / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for package in ("kedro_vertex_ci", "action"):
        shutil.copytree(ROOT / package, context / package, ignore=ignore)
    shutil.copytree(wheels.stdout.strip(), context / "wheels", ignore=shutil.ignore_patterns(".complete"))
    build = subprocess.run(
        ["docker", "build", "--network", "none", "--build-arg", "BASE_IMAGE=kvc-base:bookworm", "-t", IMAGE,
         str(context)],
        env=docker_env, capture_output=True, text=True, timeout=900, check=False,
    )
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    return IMAGE


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
