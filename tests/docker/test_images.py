"""The offline images: the debootstrap base, and a project image built from host wheels with no network."""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import (
    BASE_IMAGE,
    ENGINE,
    SECRET,
    Built,
    build_image,
    build_log,
    context_dir,
    docker,
    tail,
)

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def test_the_base_image_is_debians_python_with_venv_and_certificates(docker_env):
    proc = docker(
        docker_env, "run", "--rm", "--network", "none", BASE_IMAGE,
        "python3", "-c", "import ensurepip, ssl, sys, venv; print(sys.version_info[:2]); print(ssl.get_default_verify_paths().cafile)",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == "(3, 11)"
    certs = docker(
        docker_env,
        "run",
        "--rm",
        "--network",
        "none",
        BASE_IMAGE,
        "test",
        "-s",
        "/etc/ssl/certs/ca-certificates.crt",
    )
    assert certs.returncode == 0
    labels = docker(docker_env, "image", "inspect", "-f", "{{json .Config.Labels}}", BASE_IMAGE)
    assert "org.kvc.base-recipe" in json.loads(labels.stdout)


def test_the_engine_makes_no_bridge_network(docker_env):
    """Only the host and none networks exist: the daemon runs with --bridge=none (no docker0, no iptables)."""
    proc = docker(docker_env, "network", "ls", "--format", "{{.Name}}")
    assert proc.returncode == 0, proc.stderr
    assert sorted(proc.stdout.split()) == ["host", "none"]


def test_the_image_runs_kedro_vertex_ci_offline(docker_env, example_image: Built):
    proc = docker(
        docker_env, "run", "--rm", "--network", "none", example_image.tag, "kedro-vertex-ci", "--version"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith(importlib.metadata.version("kedro-vertex-ci"))


def test_kedro_run_of_the_example_in_its_image_without_network(docker_env, example_image: Built):
    """The image alone (no mounts, no network) holds everything the example needs, data generation included."""
    run_and_show = "kedro run >/dev/null 2>&1 && cat data/08_reporting/metrics.json"
    proc = docker(docker_env, "run", "--rm", "--network", "none", example_image.tag, "sh", "-c", run_and_show)
    assert proc.returncode == 0, tail(proc.stdout + proc.stderr)
    assert json.loads(proc.stdout)["r2"] > 0.8


def test_a_kedro_new_project_runs_in_the_image_without_network(
    docker_env, example_image: Built, tiny_project
):
    """A plain `kedro new` project (kedro only) runs in the image, with its parameter and an override."""
    mount = ["-v", f"{tiny_project}:/tiny:ro", "-w", "/tiny"]
    base = ["run", "--rm", "--network", "none", *mount, example_image.tag, "kedro", "run"]
    proc = docker(docker_env, *base)
    assert proc.returncode == 0, tail(proc.stdout + proc.stderr)
    assert "answer=42" in proc.stdout
    override = docker(docker_env, *base, "--params", "factor=2")
    assert override.returncode == 0, tail(override.stdout + override.stderr)
    assert "answer=12" in override.stdout


def test_the_image_is_quiet_lean_and_holds_no_local_secrets_or_data(docker_env, example_image: Built):
    config = json.loads(
        docker(docker_env, "image", "inspect", "-f", "{{json .Config}}", example_image.tag).stdout
    )
    assert {"KEDRO_DISABLE_TELEMETRY=true", "DO_NOT_TRACK=1"} <= set(config["Env"])
    assert config["WorkingDir"] == "/project"
    script = (
        "import importlib.util, pathlib;"
        "p = pathlib.Path('/project');"
        "print(sorted(str(x.relative_to(p)) for x in p.rglob('*') if x.is_file() and x.parts[2] in ('conf', 'data')));"
        "print(sorted(str(x.relative_to(p)) for x in (p / 'data').iterdir()));"
        "print([m for m in ('mlflow', 'kedro_mlflow', 'pytest') if importlib.util.find_spec(m)]);"
        "print([len(list(pathlib.Path(d).rglob('*'))) for d in ('/wheels', '/kvc') if pathlib.Path(d).exists()])"
    )
    proc = docker(docker_env, "run", "--rm", "--network", "none", example_image.tag, "python", "-c", script)
    assert proc.returncode == 0, proc.stderr
    files, data_tree, extras, wheel_dirs = proc.stdout.splitlines()
    assert "conf/base/vertexai.yml" in files and "conf/local/credentials.yml" not in files
    assert "data/" not in files and "data/01_raw" in data_tree  # the data folder tree, no data files
    assert SECRET not in proc.stdout
    assert extras == "[]"  # kedro-vertex-ci without extras: no mlflow, no test tools
    assert wheel_dirs in ("[]", "[0, 0]")  # wheels were bind-mounted (empty mount points), never in a layer
    grep = docker(
        docker_env, "run", "--rm", "--network", "none", example_image.tag, "grep", "-rl", SECRET, "/project"
    )
    assert grep.returncode == 1  # grep found nothing


def test_a_rebuild_reuses_the_wheel_cache_and_the_dependency_layer(
    docker_env, example_image: Built, example_project: Path
):
    """Warm path: same requirements → no pip wheel, the venv layer comes from the build cache, seconds."""
    again = build_image(docker_env, example_project, example_image.tag)
    assert "building dependency wheels" not in again.log
    output = build_log(example_image.tag)
    install_step = [
        line for line in output.splitlines() if "pip install --no-index --no-deps --no-compile" in line
    ]
    assert install_step, tail(output)
    step_id = install_step[0].split()[0]  # "#6"
    assert f"{step_id} CACHED" in output, tail(output)


def test_resource_limits_are_enforced_by_this_engine(docker_env):
    """run-local passes --cpus/--memory from the spec; this proves the engine turns them into cgroup limits."""
    read_limits = (
        "for f in /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/memory.max "
        "/sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu.max; do [ -f $f ] && cat $f; done; true"
    )
    proc = docker(
        docker_env, "run", "--rm", "--network", "none", "--cpus", "0.5", "--memory", "64m", BASE_IMAGE,
        "sh", "-c", read_limits,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    values = proc.stdout.split()
    assert str(64 * 2**20) in values
    assert "50000" in values  # 0.5 CPU = 50 ms per 100 ms period


def test_the_engine_script_is_idempotent_and_fast_when_up(docker_env):
    started = time.monotonic()
    proc = subprocess.run(
        ["bash", str(ENGINE), "up"], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"export DOCKER_HOST={docker_env['DOCKER_HOST']}"
    assert "already answers" in proc.stderr and "present" in proc.stderr
    assert time.monotonic() - started < 10
    status = subprocess.run(
        ["bash", str(ENGINE), "status"], capture_output=True, text=True, timeout=60, check=False
    )
    assert status.returncode == 0 and status.stdout.startswith("running:"), status.stdout + status.stderr


def test_the_generated_dockerfile_is_hadolint_clean_and_pulls_nothing(example_image: Built):
    dockerfile = context_dir(example_image.tag) / "Dockerfile"
    text = dockerfile.read_text()
    assert "# syntax" not in text  # a syntax line would fetch a frontend image from Docker Hub
    assert [line.split()[1] for line in text.splitlines() if line.startswith("FROM")] == [BASE_IMAGE]
    hadolint = Path(sys.executable).parent / "hadolint"
    proc = subprocess.run(
        [str(hadolint), str(dockerfile)], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
