"""A loopback Kubeflow Pipelines (tests/fakes/kfp_server.py) and a Kedro project targeting it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kedro_vertex_ci.testing import make_project
from tests.fakes.kfp_server import FakeKfp

# The Google fakes (STS, IAM Credentials) serve the IAP ID-token path.
from tests.gcp.conftest import PROJECT, fake, github_env, storage_emulator  # noqa: F401

CLI = str(Path(sys.executable).parent / "kedro-vertex-ci")


@pytest.fixture
def kfp_server() -> Iterator[FakeKfp]:
    server = FakeKfp().start()
    yield server
    server.stop()


def kfp_project(root: Path, host: str, auth: dict[str, Any] | None = None, **run_config: Any) -> Path:
    """A diamond-shaped Kedro project whose vertexai.yml targets the given KFP host."""
    return make_project(root, "kfp_demo", shape="diamond", n=4, params={"start": 3, "rate": 0.5}, vertexai={
        "project_id": PROJECT, "region": "europe-west1",
        "run_config": {"image": "registry.example.com/kfp-demo:1", "target": "kfp", "root": "s3://runs/kfp-demo",
                       "experiment_name": "kfp-demo", **run_config},
        "kfp": {"host": host, "auth": auth or {"mode": "none"}}})


def run_cli(project: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "ACTIONS_"))}
    return subprocess.run([CLI, *args], cwd=project, env={**base, "KEDRO_VERTEX_CI_POLL_SECONDS": "0", **(env or {})},
                          capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture
def project_for(tmp_path: Path) -> Callable[..., Path]:
    def make(host: str, auth: dict[str, Any] | None = None, **run_config: Any) -> Path:
        return kfp_project(tmp_path, host, auth, **run_config)

    return make
