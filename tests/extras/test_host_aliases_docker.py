"""Host aliases in a real container: Docker bind-mounts /etc/hosts (no rename possible), the step runs as root,
rewrites the file in place, a retried step keeps one block, and the name resolves through libc."""

from __future__ import annotations

import shlex

import pytest

from tests.docker.conftest import Built, docker, docker_env, example_image, example_project  # noqa: F401

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def test_step_writes_host_aliases_into_the_containers_etc_hosts(docker_env, example_image: Built):  # noqa: F811
    step = shlex.join([
        "kedro-vertex-ci", "step", "--pipeline", "__default__", "--node", "generate_companies",
        "--run-id", "hosts-1", "--root", "/tmp/root",
        "--host-alias", "10.9.8.7=mlflow.internal,tracking.internal", "--host-alias", "fd00::7=db.internal",
    ])
    script = f"{step} >/tmp/1.log 2>&1 && {step} >/tmp/2.log 2>&1 && cat /etc/hosts && echo --- && " \
             "getent hosts tracking.internal || cat /tmp/1.log /tmp/2.log"
    proc = docker(docker_env, "run", "--rm", "--network", "none", example_image.tag, "sh", "-c", script)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    hosts, resolved = proc.stdout.split("---\n")
    block = [
        "# BEGIN kedro-vertex-ci host aliases",
        "10.9.8.7\tmlflow.internal tracking.internal",
        "fd00::7\tdb.internal",
        "# END kedro-vertex-ci host aliases",
    ]
    lines = hosts.splitlines()
    assert lines[0].startswith("127.0.0.1") and "localhost" in lines[0]  # Docker's own entries kept
    assert lines[-len(block):] == block and hosts.count(block[0]) == 1
    assert resolved.split() == ["10.9.8.7", "mlflow.internal", "tracking.internal"]
