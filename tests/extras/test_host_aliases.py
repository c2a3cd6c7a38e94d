"""network.host_aliases: compiled into every step's args, written into the hosts file before Kedro starts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kedro_vertex_ci.errors import ConfigError
from kedro_vertex_ci.model import HostAlias
from kedro_vertex_ci.runtime.hosts import BEGIN_MARKER, END_MARKER, with_host_aliases

from .conftest import compiled_step_args, extras_project, ok, run_step, step_commands

NODES = """
import os


def read_hosts():
    \"\"\"What a node sees in the hosts file: the aliases are there before any node (or hook) runs.\"\"\"
    with open(os.environ["KEDRO_VERTEX_CI_HOSTS_FILE"]) as hosts:
        return hosts.read()


def notify(status):
    return status
"""
ALIASES = [
    {"ip": "10.1.2.3", "hostnames": ["mlflow.internal", "tracking.internal"]},
    {"ip": "fd00::5", "hostnames": ["db.internal"]},
]
ORIGINAL = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost\n"
EXPECTED = (
    ORIGINAL
    + "\n"
    + f"{BEGIN_MARKER}\n10.1.2.3\tmlflow.internal tracking.internal\nfd00::5\tdb.internal\n{END_MARKER}\n"
)


def _project(tmp_path: Path, aliases: list[dict], on_exit: bool = False) -> Path:
    run_config: dict = {"image": "example/image:1", "network": {"host_aliases": aliases}}
    if on_exit:
        run_config["on_exit_pipeline"] = "notify"
    return extras_project(
        tmp_path,
        "hostsproj",
        nodes=NODES,
        pipeline='node(read_hosts, None, "hosts", name="read_hosts")',
        pipelines='"notify": Pipeline([node(notify, "params:exit_state", "notified", name="notify")]),',
        params={"exit_state": "${vertex:pipeline_status}"},
        catalog={"hosts": {"filepath": "data/hosts.json"}},
        vertexai={"project_id": "demo-project", "region": "europe-west4", "run_config": run_config},
    )


def test_compiled_spec_carries_the_aliases_in_every_step_including_the_exit_step(tmp_path):
    project = _project(tmp_path, ALIASES, on_exit=True)
    args_by_task = compiled_step_args(project)
    assert len(args_by_task) == 2  # the main step and the on-exit step
    for args in args_by_task.values():
        values = [args[i + 1] for i, a in enumerate(args) if a == "--host-alias"]
        assert values == ["10.1.2.3=mlflow.internal,tracking.internal", "fd00::5=db.internal"]


def test_no_aliases_no_argument(tmp_path):
    project = _project(tmp_path, [])
    (args,) = compiled_step_args(project).values()
    assert "--host-alias" not in args


def test_step_writes_the_aliases_before_kedro_starts_and_a_rerun_does_not_duplicate_them(tmp_path):
    project = _project(tmp_path, ALIASES)
    hosts = tmp_path / "hosts"
    hosts.write_text(ORIGINAL)
    (args,) = step_commands(project, "run-h", tmp_path / "root")
    env = {"KEDRO_VERTEX_CI_HOSTS_FILE": str(hosts)}
    ok(run_step(project, args, env=env))
    assert hosts.read_text() == EXPECTED
    seen = json.loads((project / "data" / "hosts.json").read_text())["data"]
    assert seen == EXPECTED
    ok(run_step(project, args, env=env))  # a retried step
    assert hosts.read_text() == EXPECTED


def test_an_unwritable_hosts_file_fails_the_step_in_one_line(tmp_path):
    project = _project(tmp_path, ALIASES)
    (args,) = step_commands(project, "run-x", tmp_path / "root")
    target = tmp_path / "a-directory"
    target.mkdir()
    result = run_step(project, args, env={"KEDRO_VERTEX_CI_HOSTS_FILE": str(target)})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"kedro-vertex-ci step: error: cannot write network.host_aliases to {target}: Is a directory "
        "(the step must run as root to change /etc/hosts; KEDRO_VERTEX_CI_HOSTS_FILE names another file)"
    ]
    assert not (project / "data" / "hosts.json").exists()


def test_a_hostname_that_cannot_be_a_hosts_entry_is_a_config_error(tmp_path):
    from kedro_vertex_ci.compiler import compile_pipeline

    project = _project(tmp_path, [{"ip": "10.0.0.1", "hostnames": ["ok.internal", "bad name"]}])
    with pytest.raises(ConfigError) as caught:
        compile_pipeline(project)
    (problem,) = caught.value.problems
    assert problem.key == "run_config.network.host_aliases.0.hostnames"
    assert "'bad name' is not a hostname" in problem.message
    assert problem.file.endswith("vertexai.yml")


ONE = (HostAlias("10.0.0.1", ("a.internal",)),)
BLOCK_ONE = f"{BEGIN_MARKER}\n10.0.0.1\ta.internal\n{END_MARKER}\n"


@pytest.mark.parametrize(
    ("before", "aliases", "after"),
    [
        ("", ONE, BLOCK_ONE),
        ("127.0.0.1 localhost\n", ONE, "127.0.0.1 localhost\n\n" + BLOCK_ONE),
        ("127.0.0.1 localhost\n\n" + BLOCK_ONE, ONE, "127.0.0.1 localhost\n\n" + BLOCK_ONE),
        (  # an older block is replaced, lines after it are kept
            f"127.0.0.1 localhost\n{BEGIN_MARKER}\n10.9.9.9\told\n{END_MARKER}\n10.0.0.7 added-later\n",
            ONE,
            "127.0.0.1 localhost\n10.0.0.7 added-later\n\n" + BLOCK_ONE,
        ),
        ("127.0.0.1 localhost\n\n" + BLOCK_ONE, (), "127.0.0.1 localhost\n"),  # aliases removed
        ("127.0.0.1 localhost", (), "127.0.0.1 localhost\n"),
    ],
)
def test_hosts_block_is_replaced_never_appended_twice(before, aliases, after):
    assert with_host_aliases(before, aliases) == after
    assert with_host_aliases(after, aliases) == after


def test_run_local_writes_the_aliases_into_a_hosts_file_of_the_project_not_etc_hosts(tmp_path):
    import os
    import subprocess

    from .conftest import CLI

    project = _project(tmp_path, ALIASES)
    env = {k: v for k, v in os.environ.items() if k != "KEDRO_VERTEX_CI_HOSTS_FILE"}
    before = Path("/etc/hosts").read_text() if Path("/etc/hosts").exists() else None
    proc = subprocess.run([CLI, "run-local", "--json", "--run-id", "h-1"], cwd=project, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    hosts = project / ".kedro-vertex-ci" / "hosts"
    assert hosts.read_text() == EXPECTED.removeprefix(ORIGINAL + "\n")
    assert json.loads((project / "data" / "hosts.json").read_text())["data"] == hosts.read_text()
    if before is not None:
        assert Path("/etc/hosts").read_text() == before
