"""``run-local --runner docker`` on a real Docker engine (``make docker-up``): what a step sees in its container.

Uses the engine's base image (``kvc-base:bookworm``, which has python3) and a hand-built spec, so it checks
the runner itself: placeholders, the root mounted at the same path, the data folder shared, env, CPU and
memory limits applied, host networking, and a failing container failing its step. The example project in a
built image is the Docker tests' job (tests/docker).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from kedro_vertex_ci.cli import cli

pytestmark = [pytest.mark.docker, pytest.mark.slow]

IMAGE = "kvc-base:bookworm"
DEFAULT_SOCKET = "unix:///var/tmp/kvc-docker/docker.sock"  # scripts/docker-engine.sh's default
PROBE = r"""
import json, os, pathlib, socket, sys
root, run, job, label = sys.argv[1:5]
def first(*paths):
    for p in paths:
        if os.path.exists(p):
            return open(p).read().strip()
    return None
pathlib.Path("data").mkdir(exist_ok=True)
pathlib.Path("data/from-container.txt").write_text("written in " + os.getcwd())
out = pathlib.Path(root, run, "out.json")
out.write_text(json.dumps({
    "root": root, "run": run, "job": job, "label": label,
    "env": os.environ.get("STEP_ENV"), "telemetry": os.environ.get("KEDRO_DISABLE_TELEMETRY"),
    "cpu": first("/sys/fs/cgroup/cpu.max", "/sys/fs/cgroup/cpu/cpu.cfs_quota_us"),
    "memory": first("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"),
    "hostname": socket.gethostname(),
}))
print("probed", run)
"""


@pytest.fixture(scope="module")
def docker_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("DOCKER_HOST", DEFAULT_SOCKET)
    proc = subprocess.run(["docker", "image", "inspect", IMAGE], env=env, capture_output=True, timeout=30)
    if proc.returncode != 0:
        pytest.fail(f"no Docker engine with {IMAGE} at {env['DOCKER_HOST']}: run `make docker-up` first")
    return env


def _spec(tmp_path: Path) -> Path:
    executors = {
        "exec-probe": {
            "container": {
                "image": "registry.invalid/not-pulled:1",
                "command": ["python3", "-c", PROBE],
                "args": [
                    "{{$.pipeline_root}}",
                    "{{$.pipeline_job_uuid}}",
                    "{{$.pipeline_job_name}}",
                    "{{$.inputs.parameters['label']}}",
                ],
                "env": [{"name": "STEP_ENV", "value": "from-spec"}],
                "resources": {"resourceCpuLimit": "500m", "resourceMemoryLimit": "256Mi"},
            }
        },
        "exec-fail": {
            "container": {
                "image": "registry.invalid/not-pulled:1",
                "command": [
                    "python3",
                    "-c",
                    "import sys; print('container says no', file=sys.stderr); sys.exit(7)",
                ],
            }
        },
    }
    spec = {
        "pipelineInfo": {"name": "docker-probe"},
        "components": {
            "comp-probe": {
                "executorLabel": "exec-probe",
                "inputDefinitions": {"parameters": {"label": {"parameterType": "STRING"}}},
            },
            "comp-fail": {"executorLabel": "exec-fail"},
        },
        "deploymentSpec": {"executors": executors},
        "root": {
            "dag": {
                "tasks": {
                    "probe": {
                        "componentRef": {"name": "comp-probe"},
                        "inputs": {"parameters": {"label": {"componentInputParameter": "label"}}},
                        "taskInfo": {"name": "probe"},
                    },
                    "fail": {
                        "componentRef": {"name": "comp-fail"},
                        "dependentTasks": ["probe"],
                        "taskInfo": {"name": "fail"},
                    },
                }
            },
            "inputDefinitions": {
                "parameters": {"label": {"parameterType": "STRING", "defaultValue": "a label with 'quotes'"}}
            },
        },
    }
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    return path


def test_steps_run_in_containers_like_on_a_vertex_worker(tmp_path, docker_env, monkeypatch):
    for key, value in docker_env.items():
        monkeypatch.setenv(key, value)
    root = tmp_path / "runs"
    args = ["--project", str(tmp_path), "run-local", "--spec", str(_spec(tmp_path)), "--root", str(root)]
    args += ["--runner", "docker", "--image", IMAGE, "--run-id", "dock-1", "--json"]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 1, result.output  # the second step fails on purpose
    data = json.loads(result.output)
    assert {s["name"]: s["state"] for s in data["steps"]} == {"probe": "done", "fail": "failed"}
    assert "container says no" in Path(data["steps"][1]["log"]).read_text()
    assert data["steps"][1]["exit_code"] == 7

    seen = json.loads((root / "dock-1" / "out.json").read_text())  # written inside, visible outside
    assert seen["root"] == str(root.resolve()) and seen["run"] == "dock-1"
    assert seen["job"] == data["job_name"] and seen["label"] == "a label with 'quotes'"
    assert seen["env"] == "from-spec" and seen["telemetry"] == "true"
    assert seen["cpu"] in ("50000", "50000 100000")  # 0.5 CPU: cgroup v1 quota or v2 cpu.max
    assert int(seen["memory"]) <= 256 * 2**20
    assert seen["hostname"] == socket.gethostname()  # --network host
    assert "written in /" in (tmp_path / "data" / "from-container.txt").read_text()  # data/ is shared
