"""``kedro-vertex-ci run-local --spec`` end to end with the subprocess runner on kfp-compiled specs."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from kedro_vertex_ci.cli import cli
from tests.local import specs


@pytest.fixture(autouse=True)
def _quiet(monkeypatch):
    monkeypatch.setenv("KEDRO_DISABLE_TELEMETRY", "true")
    monkeypatch.setenv("DO_NOT_TRACK", "1")


def _spec_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "spec.json"
    path.write_text(text)
    return path


def _run(tmp_path: Path, spec_text: str, *extra: str):
    spec = _spec_file(tmp_path, spec_text)
    args = [
        "--project",
        str(tmp_path),
        "run-local",
        "--spec",
        str(spec),
        "--root",
        str(tmp_path / "runs"),
        *extra,
    ]
    return CliRunner().invoke(cli, args, catch_exceptions=False)


def test_two_independent_steps_run_at_the_same_time_and_the_join_waits_for_both(tmp_path):
    """Parallelism from the steps' own recorded intervals (they overlap), not from wall-clock thresholds."""
    result = _run(tmp_path, specs.parallel_sleep_spec(), "--max-parallel", "2", "--json")
    assert result.exit_code == 0, result.output
    steps = {s["name"]: s for s in json.loads(result.output)["steps"]}
    sleepers = [steps["sleeper"], steps["sleeper-2"]]
    assert all(s["duration_seconds"] >= 1.0 for s in sleepers)  # they really slept
    starts = [s["started_seconds"] for s in sleepers]
    ends = [s["started_seconds"] + s["duration_seconds"] for s in sleepers]
    assert max(starts) < min(ends)  # the second started before the first ended: they ran at once
    assert steps["join"]["started_seconds"] >= max(ends) - 0.05  # and the join waited for both


def test_a_failed_step_stops_its_dependants_lets_running_ones_finish_and_shows_its_log(tmp_path):
    result = _run(tmp_path, specs.failing_spec(), "--max-parallel", "2", "--run-id", "fail-1")
    assert result.exit_code == 1
    out = result.output
    assert "Step bad failed" in out and "exit code 3" in out
    assert "line one" in out and "about to fail" in out  # the tail of the failed log, both streams
    assert "Error: run fail-1 failed: step(s) bad" in out
    record = json.loads((tmp_path / "runs" / "fail-1" / "result.json").read_text())
    states = {s["name"]: s["state"] for s in record["steps"]}
    assert states == {"bad": "failed", "slow": "done", "after-bad": "skipped", "later": "done"}  # fail slow
    logs = tmp_path / "runs" / "fail-1" / "logs"
    assert "slept 1.5" in (logs / "slow.log").read_text()  # the running step was not killed
    assert not (logs / "after-bad.log").exists()


def test_placeholders_are_substituted_as_vertex_would(tmp_path):
    result = _run(
        tmp_path,
        specs.placeholder_spec(),
        "--run-id",
        "ph-1",
        "--param",
        "count=5",
        "--param",
        "options.depth=9",
    )
    assert result.exit_code == 0, result.output
    root = (tmp_path / "runs").resolve()
    job_name = json.loads((root / "ph-1" / "run.json").read_text())["job_name"]
    assert job_name.startswith("placeholders-")
    recorded = json.loads((root / "ph-1" / "out" / "record.json").read_text())
    argv = recorded["argv"]
    value = {argv[i]: argv[i + 1] for i in range(0, len(argv), 2)}
    assert value["--job-name"] == job_name
    assert value["--run-id"] == "ph-1"
    assert value["--root"] == str(root)
    assert value["--text"] == 'it\'s a "quoted" value'
    assert value["--count"] == "5"
    assert value["--ratio"] == "0.25"
    assert value["--flag"] == "true"
    assert value["--items"] == '[1,2,"x"]'
    assert json.loads(value["--options"]) == {"depth": 9, "nested": {"on": False}, "rate": 0.5}
    assert recorded["env"] == "from-spec"
    status = json.loads(json.loads((root / "ph-1" / "out" / "on-exit.json").read_text())["argv"][0])
    assert status["state"] == "SUCCEEDED" and status["pipelineJobResourceName"].endswith(job_name)


def test_json_output_is_machine_readable(tmp_path):
    result = _run(tmp_path, specs.parallel_sleep_spec(), "--json", "--param", "seconds=0", "--run-id", "j-1")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["run_id"] == "j-1" and data["state"] == "succeeded" and data["exit_code"] == 0
    assert data["runner"] == "subprocess" and data["params"] == {"seconds": 0.0}
    assert [s["name"] for s in data["steps"]] == ["sleeper", "sleeper-2", "join"]
    for step in data["steps"]:
        assert step["state"] == "done" and step["exit_code"] == 0 and Path(step["log"]).is_file()
    assert json.loads((tmp_path / "runs" / "j-1" / "result.json").read_text()) == data


def test_json_output_of_a_failed_run_has_a_non_zero_exit_code(tmp_path):
    result = _run(tmp_path, specs.failing_spec(), "--json", "--fail-fast")
    assert result.exit_code == 1
    data = json.loads(result.output)
    assert data["state"] == "failed" and data["exit_code"] == 1
    later = {s["name"]: s for s in data["steps"]}["later"]
    assert later["state"] == "skipped" and later["reason"] == "stopped after bad failed"  # --fail-fast


def test_rerun_with_the_same_run_id_is_idempotent(tmp_path):
    first = _run(tmp_path, specs.placeholder_spec(), "--run-id", "again", "--json")
    second = _run(tmp_path, specs.placeholder_spec(), "--run-id", "again", "--json")
    assert first.exit_code == second.exit_code == 0
    one, two = json.loads(first.output), json.loads(second.output)
    assert one["job_name"] == two["job_name"]  # the job keeps its name
    log = Path(two["steps"][0]["log"]).read_text()
    assert log.count("recorded record") == 1  # logs are rewritten, not appended
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["again"]


def test_bad_input_fails_fast_with_exit_code_2_and_writes_nothing(tmp_path):
    result = _run(tmp_path, specs.placeholder_spec(), "--param", "count=many")
    assert result.exit_code == 2
    assert "--param count: 'many' is not a valid NUMBER_INTEGER" in result.output
    assert not (tmp_path / "runs").exists()
    bad_id = _run(tmp_path, specs.placeholder_spec(), "--run-id", "../escape")
    assert bad_id.exit_code == 2 and "--run-id '../escape'" in bad_id.output
    assert not (tmp_path / "runs").exists()
    missing = CliRunner().invoke(
        cli, ["--project", str(tmp_path), "run-local", "--spec", str(tmp_path / "no.json")]
    )
    assert missing.exit_code == 2 and "cannot read it" in missing.output


def test_the_console_script_reports_progress_and_a_summary(tmp_path):
    spec = _spec_file(tmp_path, specs.parallel_sleep_spec())
    script = Path(sys.executable).parent / "kedro-vertex-ci"
    proc = subprocess.run(
        [
            str(script),
            "run-local",
            "--spec",
            str(spec),
            "--param",
            "seconds=0.1",
            "--root",
            str(tmp_path / "r"),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "run-local parallel: succeeded" in proc.stdout
    for name in ("sleeper", "sleeper-2", "join"):
        assert name in proc.stdout


def test_ctrl_c_stops_the_running_steps(tmp_path):
    """SIGINT to run-local terminates its step processes instead of leaving them behind."""
    import os
    import signal

    pid_file = tmp_path / "step.pid"
    code = "import os, sys, time; open(sys.argv[1], 'w').write(str(os.getpid())); time.sleep(60)"
    spec = {
        "pipelineInfo": {"name": "long"},
        "components": {"comp-long": {"executorLabel": "exec-long"}},
        "deploymentSpec": {
            "executors": {
                "exec-long": {"container": {"image": "img", "command": ["python", "-c", code, str(pid_file)]}}
            }
        },
        "root": {
            "dag": {"tasks": {"long": {"componentRef": {"name": "comp-long"}, "taskInfo": {"name": "long"}}}}
        },
    }
    spec_path = _spec_file(tmp_path, json.dumps(spec))
    script = Path(sys.executable).parent / "kedro-vertex-ci"
    proc = subprocess.Popen(
        [str(script), "run-local", "--spec", str(spec_path), "--root", str(tmp_path / "r")],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # SIGINT inherited as ignored (a test run from a background shell) would stay ignored
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # noqa: PLW1509
    )
    deadline = time.monotonic() + 30
    while not (pid_file.exists() and pid_file.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    step_pid = int(pid_file.read_text())
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=20)
    assert proc.returncode == 130
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.kill(step_pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        pytest.fail("the step process outlived run-local")


def _counting_spec(tmp_path: Path) -> Path:
    """first → flaky → last; each appends its name to runs.txt; flaky fails until ``fixed`` exists."""
    count = "import sys; open(sys.argv[1], 'a').write(sys.argv[2] + '\\n')"
    flaky = count + "; import os; sys.exit(0 if os.path.exists(sys.argv[3]) else 5)"
    log, fixed = str(tmp_path / "runs.txt"), str(tmp_path / "fixed")
    commands = {
        "first": ["python", "-c", count, log, "first"],
        "flaky": ["python", "-c", flaky, log, "flaky", fixed],
        "last": ["python", "-c", count, log, "last"],
    }
    deps = {"first": [], "flaky": ["first"], "last": ["flaky"]}
    spec = {
        "pipelineInfo": {"name": "resume"},
        "components": {f"comp-{n}": {"executorLabel": f"exec-{n}"} for n in commands},
        "deploymentSpec": {
            "executors": {
                f"exec-{n}": {"container": {"image": "i", "command": c}} for n, c in commands.items()
            }
        },
        "root": {
            "dag": {
                "tasks": {
                    n: {"componentRef": {"name": f"comp-{n}"}, "taskInfo": {"name": n}, "dependentTasks": d}
                    for n, d in deps.items()
                }
            }
        },
    }
    return _spec_file(tmp_path, json.dumps(spec))


def test_resume_reruns_only_what_did_not_finish(tmp_path):
    spec = _counting_spec(tmp_path)
    base = ["--project", str(tmp_path), "run-local", "--spec", str(spec), "--root", str(tmp_path / "r")]
    first = CliRunner().invoke(cli, [*base, "--run-id", "res", "--json"])
    assert first.exit_code == 1
    assert (tmp_path / "runs.txt").read_text().split() == ["first", "flaky"]
    (tmp_path / "fixed").touch()
    again = CliRunner().invoke(cli, [*base, "--run-id", "res", "--resume", "--json"])
    assert again.exit_code == 0, again.output
    assert (tmp_path / "runs.txt").read_text().split() == ["first", "flaky", "flaky", "last"]
    steps = {s["name"]: s for s in json.loads(again.output)["steps"]}
    assert [*steps] == ["first", "flaky", "last"]
    assert steps["first"]["reason"] == "done earlier" and steps["first"]["state"] == "done"
    nothing = CliRunner().invoke(cli, [*base, "--run-id", "new", "--resume"])
    assert nothing.exit_code == 2 and "no earlier run 'new'" in nothing.output
