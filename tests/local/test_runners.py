"""Runner command lines: what ``docker run`` gets, and the environment a local step process sees."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from kedro_vertex_ci.local.runners import DockerRunner, Invocation, SubprocessRunner, venv_bin

STEP = Invocation(
    task="train",
    image="europe-docker.pkg.dev/p/r/app:abc",
    command=("kedro-vertex-ci", "step"),
    args=("--node", "train_model", "--root", "/runs", "--param", "label=it's 'quoted'"),
    env={"STEP_ENV": "x"},
    cpu=4.0,
    memory=8 * 10**9,
)


def test_docker_command_line_mirrors_a_vertex_worker():
    runner = DockerRunner(mounts=[("/runs", "/runs")], workdir="/app", host_cpus=2, base_env={})
    assert runner.argv(STEP) == [
        "docker",
        "run",
        "--rm",
        "--network",
        "host",
        "-v",
        "/runs:/runs",
        "-w",
        "/app",
        "--cpus",
        "2",  # capped at the host's cores: docker refuses more
        "--memory",
        str(8 * 10**9),
        "-e",
        "DO_NOT_TRACK=1",
        "-e",
        "KEDRO_DISABLE_TELEMETRY=true",
        "-e",
        "PYTHONUNBUFFERED=1",
        "-e",
        "STEP_ENV=x",
        "--entrypoint",
        "kedro-vertex-ci",
        "europe-docker.pkg.dev/p/r/app:abc",
        "step",
        "--node",
        "train_model",
        "--root",
        "/runs",
        "--param",
        "label=it's 'quoted'",  # one argv item, no shell quoting
    ]


@pytest.mark.parametrize(
    ("cpu", "memory", "expected"),
    [
        (0.5, None, ["--cpus", "0.5"]),
        (None, 512 * 2**20, ["--memory", str(512 * 2**20)]),
        (None, 1000, ["--memory", str(6 * 2**20)]),  # docker's minimum
        (None, None, []),
    ],
)
def test_docker_resource_flags(cpu, memory, expected):
    inv = Invocation("t", "img", ("run",), (), cpu=cpu, memory=memory)
    argv = DockerRunner(host_cpus=8, base_env={}).argv(inv)
    flags = [
        a for i, a in enumerate(argv) if a in ("--cpus", "--memory") or argv[i - 1] in ("--cpus", "--memory")
    ]
    assert flags == expected


def test_docker_image_override_and_no_command_keeps_the_image_entrypoint():
    inv = Invocation("t", "spec-image", (), ("only", "args"))
    argv = DockerRunner(image="local/app:dev", base_env={}).argv(inv)
    assert "--entrypoint" not in argv and "-w" not in argv
    assert argv[-3:] == ["local/app:dev", "only", "args"]


def test_docker_passes_config_and_emulator_env_by_name_only():
    env = {
        "KEDRO_CONFIG_COMMIT_ID": "abc123",
        "STORAGE_EMULATOR_HOST": "http://127.0.0.1:9023",
        "SECRET": "s",
    }
    argv = DockerRunner(base_env=env).argv(Invocation("t", "img", ("run",), ()))
    assert ["-e", "KEDRO_CONFIG_COMMIT_ID"] == argv[
        argv.index("KEDRO_CONFIG_COMMIT_ID") - 1 : argv.index("KEDRO_CONFIG_COMMIT_ID") + 1
    ]
    assert "-e" in argv and "STORAGE_EMULATOR_HOST" in argv
    assert not any("abc123" in a or "SECRET" in a for a in argv)


def test_subprocess_step_sees_spec_env_quiet_flags_and_the_venv_first_on_path(tmp_path: Path):
    runner = SubprocessRunner(tmp_path, base_env={"PATH": "/usr/bin", "KEEP": "1", "STEP_ENV": "old"})
    env = runner.environment(STEP)
    assert env["PATH"].split(os.pathsep)[0] == str(venv_bin())
    assert env["KEEP"] == "1" and env["STEP_ENV"] == "x" and env["KEDRO_DISABLE_TELEMETRY"] == "true"
    assert runner.argv(STEP) == [*STEP.command, *STEP.args]


def test_subprocess_runner_runs_from_the_project_root_and_logs_both_streams(tmp_path: Path):
    code = "import os, sys; print('cwd', os.getcwd()); print('oops', file=sys.stderr); sys.exit(4)"
    inv = Invocation("t", "img", ("python", "-c", code), ())
    log = tmp_path / "logs" / "t.log"
    assert SubprocessRunner(tmp_path).run(inv, log) == 4
    text = log.read_text()
    assert f"cwd {tmp_path}" in text and "oops" in text


def test_venv_bin_holds_this_interpreter():
    assert (venv_bin() / Path(sys.executable).name).exists()


@pytest.mark.parametrize(
    ("pipeline_root", "data", "workdir", "expected"),
    [
        (None, Path("/p/data"), "/project", [("/runs", "/runs"), ("/p/data", "/project/data")]),
        ("gs://b/root", Path("/p/data"), "/project/", [("/p/data", "/project/data")]),
        (None, None, "/project", [("/runs", "/runs")]),
        (None, Path("/p/data"), None, [("/runs", "/runs")]),
    ],
)
def test_docker_mounts_share_the_root_at_the_same_path_and_the_data_folder(
    pipeline_root, data, workdir, expected
):
    from kedro_vertex_ci.local.runners import plan_mounts

    assert plan_mounts(Path("/runs"), pipeline_root, data, workdir, [("/x", "/y")]) == [
        *expected,
        ("/x", "/y"),
    ]


@pytest.mark.parametrize(
    ("docker", "env", "message"),
    [
        ("/nonexistent/docker", None, "cannot run '/nonexistent/docker'"),
        (
            "docker",
            {"DOCKER_HOST": "unix:///nonexistent/docker.sock", "PATH": os.environ["PATH"]},
            "not available",
        ),
    ],
)
def test_a_missing_docker_or_image_is_a_config_error_before_anything_runs(docker, env, message):
    from kedro_vertex_ci.errors import ConfigError
    from kedro_vertex_ci.local.runners import image_workdir

    if docker == "docker" and not shutil.which("docker"):
        pytest.fail("the docker CLI is part of the test environment (make test installs docker.io)")
    with pytest.raises(ConfigError, match=message):
        image_workdir("example/app:missing", docker=docker, env=env)
