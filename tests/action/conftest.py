"""Fixtures for the action's tests: the environment a GitHub runner gives a container action."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

# The Google fakes, storage emulator and `kedro new` project of the Google Cloud tier, shared as fixtures.
from tests.gcp.conftest import bucket, cloud_project, fake, storage_emulator  # noqa: F401

EVENTS = Path(__file__).parent / "events"
ROOT = Path(__file__).resolve().parents[2]
ACTION_IMAGE = "kvc-action:test"
GITHUB_TOKEN = "ghs_fakeTokenForTests0123456789abcdefXYZ"
OIDC_TOKEN = "oidc-request-token-never-printed-7f3a"

# (payload file, GITHUB_EVENT_NAME, GITHUB_REF, GITHUB_SHA, GITHUB_HEAD_REF)
EVENT_CASES = {
    "push_branch": ("push_branch.json", "push", "refs/heads/feature/faster-prep", None, ""),
    "push_main": ("push_main.json", "push", "refs/heads/main", None, ""),
    "pull_request": ("pull_request.json", "pull_request", "refs/pull/17/merge", "c" * 40, "feature/faster-prep"),
    "pull_request_fork": ("pull_request_fork.json", "pull_request", "refs/pull/18/merge", "d" * 40, "feature/faster-prep"),
    "workflow_dispatch": ("workflow_dispatch.json", "workflow_dispatch", "refs/heads/main", "e" * 40, ""),
}


def runner_env(case: str, workspace: Path, *, oidc: bool = True, api_url: str = "http://127.0.0.1:9", **inputs: str) -> dict[str, str]:
    """The variables GitHub sets for a container action step, for one of the recorded event payloads."""
    payload_file, name, ref, sha, head_ref = EVENT_CASES[case]
    payload = json.loads((EVENTS / payload_file).read_text())
    env = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_EVENT_NAME": name,
        "GITHUB_EVENT_PATH": str(EVENTS / payload_file),
        "GITHUB_REF": ref,
        "GITHUB_SHA": sha or payload.get("after", "f" * 40),
        "GITHUB_HEAD_REF": head_ref,
        "GITHUB_REF_NAME": ref.removeprefix("refs/heads/").removeprefix("refs/pull/"),
        "GITHUB_REPOSITORY": "acme/spaceflights",
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_API_URL": api_url,
        "GITHUB_RUN_ID": "9876543210",
        "GITHUB_RUN_ATTEMPT": "1",
        "GITHUB_WORKSPACE": str(workspace),
        "GITHUB_OUTPUT": str(workspace.parent / "github_output"),
        "GITHUB_STEP_SUMMARY": str(workspace.parent / "step_summary.md"),
        "KEDRO_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "1",
        "INPUT_GITHUB-TOKEN": GITHUB_TOKEN,
    }
    if oidc:
        env["ACTIONS_ID_TOKEN_REQUEST_URL"] = "http://127.0.0.1:9/token?api-version=2.0"
        env["ACTIONS_ID_TOKEN_REQUEST_TOKEN"] = OIDC_TOKEN
    for key, value in inputs.items():
        env[f"INPUT_{key.upper().replace('_', '-')}"] = value
    return env


def read_outputs(path: Path) -> dict[str, str]:
    """Parse a $GITHUB_OUTPUT file the way the runner does (name=value and name<<DELIM blocks)."""
    outputs: dict[str, str] = {}
    lines = path.read_text().splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            end = lines.index(delimiter, index + 1)
            outputs[name] = "\n".join(lines[index + 1 : end])
            index = end + 1
            continue
        name, _, value = line.partition("=")
        outputs[name] = value
        index += 1
    return outputs


@pytest.fixture
def make_env(tmp_path: Path) -> Callable[..., dict[str, str]]:
    workspace = tmp_path / "workspace"
    workspace.mkdir(exist_ok=True)

    def make(case: str, **kwargs: str) -> dict[str, str]:
        return runner_env(case, workspace, **kwargs)

    return make


@pytest.fixture(scope="session")
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


@pytest.fixture(scope="session")
def action_image(docker_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> str:
    """Build the action image FROM the offline base with a host-built wheelhouse (no index, no network)."""
    wheels = subprocess.run(["bash", str(ROOT / "scripts" / "action-wheelhouse.sh")], capture_output=True, text=True,
                            timeout=900, check=False)
    assert wheels.returncode == 0, wheels.stderr[-3000:]
    context = tmp_path_factory.mktemp("action-context")
    for name in ("Dockerfile", ".dockerignore", "pyproject.toml", "README.md", "action.yml"):
        shutil.copy2(ROOT / name, context / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for package in ("kedro_vertex_ci", "action"):
        shutil.copytree(ROOT / package, context / package, ignore=ignore)
    shutil.copytree(wheels.stdout.strip(), context / "wheels", ignore=shutil.ignore_patterns(".complete"))
    build = subprocess.run(
        ["docker", "build", "--network", "none", "--build-arg", "BASE_IMAGE=kvc-base:bookworm", "-t", ACTION_IMAGE,
         str(context)],
        env=docker_env, capture_output=True, text=True, timeout=900, check=False,
    )
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    return ACTION_IMAGE
