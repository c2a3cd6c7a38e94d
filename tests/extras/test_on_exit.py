"""on_exit_pipeline end to end with run-local: the exit step runs after the main DAG whatever happened,
and sees the final status as one word, as on Vertex (PipelineTaskFinalStatus → ``${vertex:pipeline_status}``)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from kedro_vertex_ci.runtime.resolvers import final_error, final_state

from .conftest import CLI, compiled_step_args, extras_project

NODES = """
def make_value(should_fail):
    if should_fail:
        raise RuntimeError("main pipeline failed on purpose")
    return 1


def add_one(x):
    return x + 1


def notify(final):
    return final
"""


@pytest.fixture
def exit_project(tmp_path: Path) -> Path:
    return extras_project(
        tmp_path,
        "exitproj",
        nodes=NODES,
        pipeline='node(make_value, "params:should_fail", "value", name="make_value"), '
        'node(add_one, "value", "result", name="add_one")',
        pipelines='"notify": Pipeline([node(notify, "params:final", "notified", name="notify")]),',
        params={
            "should_fail": False,
            "final": {
                "state": "${vertex:pipeline_status}",
                "error": "${vertex:pipeline_error}",
                "run_id": "${vertex:run_id}",
            },
        },
        catalog={
            "result": {"filepath": "data/result.json"},
            "notified": {"filepath": "data/notified-${vertex:run_id}.json"},
        },
        vertexai={
            "project_id": "demo-project",
            "region": "europe-west4",
            "run_config": {"image": "example/image:1", "on_exit_pipeline": "notify"},
        },
    )


def _run_local(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1"}
    return subprocess.run([CLI, "run-local", "--json", *args], cwd=project, env=env, capture_output=True,
                          text=True, timeout=300)


def _notified(project: Path, run_id: str) -> dict:
    return json.loads((project / "data" / f"notified-{run_id}.json").read_text())["data"]


def test_exit_step_runs_after_success_and_sees_succeeded(exit_project):
    proc = _run_local(exit_project, "--run-id", "ok-1")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    states = {s["name"]: s["state"] for s in result["steps"]}
    assert states == {"make-value": "done", "add-one": "done", "on-exit-notify": "done"}
    assert json.loads((exit_project / "data" / "result.json").read_text())["data"] == 2
    assert _notified(exit_project, "ok-1") == {"state": "SUCCEEDED", "error": "", "run_id": "ok-1"}


def test_exit_step_runs_after_a_failure_and_sees_failed(exit_project):
    proc = _run_local(exit_project, "--run-id", "bad-1", "--param", "should_fail=true")
    assert proc.returncode != 0
    result = json.loads(proc.stdout)
    states = {s["name"]: s["state"] for s in result["steps"]}
    assert states == {"make-value": "failed", "add-one": "skipped", "on-exit-notify": "done"}
    assert not (exit_project / "data" / "result.json").exists()
    assert _notified(exit_project, "bad-1") == {
        "state": "FAILED",
        "error": "a task in the exit handler failed",  # what run-local reports, as Vertex reports its error
        "run_id": "bad-1",
    }


def test_exit_step_args_carry_the_final_status_input(exit_project):
    args = compiled_step_args(exit_project)["on-exit-notify"]
    assert args[args.index("--pipeline") + 1] == "notify"
    assert args[args.index("--status") + 1] == "{{$.inputs.parameters['status']}}"
    assert "--on-exit" in args


@pytest.mark.parametrize(
    ("received", "state"),
    [
        ('{"error":{},"pipelineJobResourceName":"projects/1/locations/l/pipelineJobs/j",'
         '"pipelineTaskName":"exit-handler-1","state":"SUCCEEDED"}', "SUCCEEDED"),
        ('{"error":{"code":2,"message":"a task failed"},"state":"FAILED"}', "FAILED"),
        ('{"state":"PIPELINE_STATE_CANCELLED"}', "CANCELLED"),
        ("FAILED", "FAILED"),
        ("", ""),
        ('{"no_state": 1}', '{"no_state": 1}'),
    ],
)
def test_final_status_struct_becomes_one_word(received, state):
    assert final_state(received) == state


def test_final_error_is_the_message_or_nothing():
    assert final_error('{"error":{"code":2,"message":"task  train\\nfailed"},"state":"FAILED"}') == "task train failed"
    assert final_error('{"error":{},"state":"SUCCEEDED"}') == ""
    assert final_error("FAILED") == ""


def test_parameters_holding_run_values_are_left_to_each_step(exit_project):
    """Frozen into the spec, ``${vertex:pipeline_status}`` would carry its compile-time value into every run."""
    from kedro_vertex_ci.compiler import compile_pipeline
    from kedro_vertex_ci.errors import ConfigError

    compiled = compile_pipeline(exit_project)
    assert [p.key for p in compiled.plan.params] == ["should_fail"]
    assert compiled.plan.on_exit is not None and compiled.plan.on_exit.parameters == ()
    assert "unknown" not in compiled.spec_bytes.decode() and "<<vertex:" not in compiled.spec_bytes.decode()
    with pytest.raises(ConfigError) as caught:
        compile_pipeline(exit_project, params={"final.state": "X"})
    assert caught.value.problems[0].key == "final.state"
