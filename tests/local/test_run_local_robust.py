"""run-local survives interrupts, concurrent runs and partial selections (issue 10, defects 3, 5, 6).

Steps are small Python programs in a kfp-shaped spec, run by the real console script or CLI. Signals go to
a run-local whose SIGINT disposition is reset in the child (a test started from a background shell
inherits SIGINT ignored, and would then wait forever).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from kedro_vertex_ci.cli import cli

SCRIPT = Path(sys.executable).parent / "kedro-vertex-ci"

# argv: name, work folder, folder of this run's intermediate files. Appends its name to runs.txt; "long"
# (until work/fast exists) starts a grandchild, leaves a half-written intermediate and sleeps; "gate" waits
# for work/gate; a step fails while work/fail-<name> exists.
STEP = r"""
import os, pathlib, subprocess, sys, time
name, work, data = sys.argv[1], pathlib.Path(sys.argv[2]), pathlib.Path(sys.argv[3])
with open(work / "runs.txt", "a") as out:
    out.write(name + "\n")
if (work / f"fail-{name}").exists():
    sys.exit(4)
if name == "long" and not (work / "fast").exists():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    (work / "grandchild.pid").write_text(str(child.pid))
    data.mkdir(parents=True, exist_ok=True)
    (data / ".x.bin.half.tmp").write_bytes(b"half written")
    (work / "long.pid").write_text(str(os.getpid()))
    time.sleep(60)
if name == "gate":
    (work / "gate.pid").write_text(str(os.getpid()))
    deadline = time.time() + 60
    while not (work / "gate").exists() and time.time() < deadline:
        time.sleep(0.05)
"""


def _spec(work: Path, root: Path, run_id: str, chain: list[str]) -> Path:
    """A chain of steps named ``chain``, each running node ``<name>`` (so --from/--to-nodes apply)."""
    data = root / "kedro-vertex-ci" / run_id
    spec = {
        "pipelineInfo": {"name": "robust"},
        "components": {f"comp-{n}": {"executorLabel": f"exec-{n}"} for n in chain},
        "deploymentSpec": {
            "executors": {
                f"exec-{n}": {
                    "container": {
                        "image": "img",
                        "command": ["python", "-c", STEP, n, str(work), str(data), "--node", n],
                    }
                }
                for n in chain
            }
        },
        "root": {
            "dag": {
                "tasks": {
                    n: {
                        "componentRef": {"name": f"comp-{n}"},
                        "taskInfo": {"name": n},
                        "dependentTasks": chain[i - 1 : i] if i else [],
                    }
                    for i, n in enumerate(chain)
                }
            }
        },
    }
    path = work / f"spec-{run_id}.json"
    path.write_text(json.dumps(spec))
    return path


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start(work: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(SCRIPT), "run-local", *args],
        cwd=work,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_default_sigint,  # noqa: PLW1509 - single-threaded test process
    )


def _wait_for(check: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    """Running (a zombie nobody reaped yet counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def _pid(path: Path) -> int:
    _wait_for(lambda: path.exists() and path.read_text().strip() != "", str(path))
    return int(path.read_text())


def _record(root: Path, run_id: str) -> dict:
    return json.loads((root / run_id / "result.json").read_text())


def _runs(work: Path) -> list[str]:
    return (work / "runs.txt").read_text().split()


def _cli(work: Path, *args: str):
    return CliRunner().invoke(cli, ["--project", str(work), "run-local", *args])


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_an_interrupt_records_finished_steps_stops_every_process_and_removes_temp_files(
    tmp_path, signum, code
):
    """Before: no result.json (so no --resume), the step and its children kept running, .tmp files stayed."""
    root = tmp_path / "r"
    spec = _spec(tmp_path, root, "int", ["first", "long", "after"])
    proc = _start(tmp_path, "--spec", str(spec), "--root", str(root), "--run-id", "int")
    step_pid, grandchild = _pid(tmp_path / "long.pid"), _pid(tmp_path / "grandchild.pid")
    half = root / "kedro-vertex-ci" / "int" / ".x.bin.half.tmp"
    assert half.exists() and _record(root, "int")["state"] == "running"  # the record is kept as it goes
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == code, err
    assert "run-local robust: interrupted" in out
    assert "Traceback" not in err
    _wait_for(lambda: not _alive(step_pid) and not _alive(grandchild), "the step and its child to end", 10)
    assert not half.exists()
    record = _record(root, "int")
    assert record["state"] == "interrupted" and record["exit_code"] == code
    states = {s["name"]: (s["state"], s["reason"]) for s in record["steps"]}
    name = signal.Signals(signum).name
    assert states["first"] == ("done", "")
    assert states["long"][0] == "failed" and f"stopped by {name}" in states["long"][1]
    assert states["after"] == ("skipped", f"not started: run-local stopped by {name}")
    if signum == signal.SIGTERM:
        return
    assert "--resume" in err  # the way to continue is printed

    (tmp_path / "fast").touch()
    other = root / "kedro-vertex-ci" / "other-run"
    other.mkdir()
    stale = other / ".y.bin.0123.tmp"  # left by a killed run long ago; no run-local holds other-run
    stale.write_bytes(b"x")
    os.utime(stale, (time.time() - 3600, time.time() - 3600))
    fresh = other / ".z.bin.4567.tmp"  # could still be being written: kept
    fresh.write_bytes(b"x")
    again = _cli(tmp_path, "--spec", str(spec), "--root", str(root), "--run-id", "int", "--resume", "--json")
    assert again.exit_code == 0, again.output
    assert _runs(tmp_path) == ["first", "long", "long", "after"]  # resumed from where it stopped
    assert not stale.exists() and fresh.exists()


def test_a_successful_rerun_sweeps_temp_files_an_earlier_killed_step_left(tmp_path):
    root = tmp_path / "r"
    (tmp_path / "fast").touch()
    spec = _spec(tmp_path, root, "sweep", ["first", "after"])
    leftover = root / "kedro-vertex-ci" / "sweep" / ".big.bin.abcd.tmp"  # a SIGKILLed writer's temp file
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"\0" * 1000)
    result = _cli(tmp_path, "--spec", str(spec), "--root", str(root), "--run-id", "sweep", "--json")
    assert result.exit_code == 0, result.output
    assert not leftover.exists()


def test_same_run_id_twice_at_once_is_refused_and_another_active_run_is_warned_about(tmp_path):
    root = tmp_path / "r"
    spec = _spec(tmp_path, root, "busy", ["gate"])
    first = _start(tmp_path, "--spec", str(spec), "--root", str(root), "--run-id", "busy", "--json")
    try:
        gate_pid = _pid(tmp_path / "gate.pid")
        same = _cli(tmp_path, "--spec", str(spec), "--root", str(root), "--run-id", "busy")
        assert same.exit_code == 2
        assert "--run-id busy: another run-local is running it right now" in same.output
        assert "Traceback" not in same.output

        (tmp_path / "fast").touch()
        other_spec = _spec(tmp_path, root, "other", ["first"])
        other = _cli(tmp_path, "--spec", str(other_spec), "--root", str(root), "--run-id", "other")
        assert other.exit_code == 0, other.output
        assert "Warning: another run-local is active in this project: run busy" in other.output
        assert "catalog files" in other.output
    finally:
        first.kill()  # a crash: the kernel releases its lock
        first.communicate(timeout=30)
    os.kill(gate_pid, signal.SIGKILL)  # what the crashed run-local could not stop
    (tmp_path / "gate").touch()
    rerun = _cli(tmp_path, "--spec", str(spec), "--root", str(root), "--run-id", "busy")
    assert rerun.exit_code == 0, rerun.output
    assert "another run-local is active" not in rerun.output


def test_a_partial_run_records_the_whole_pipeline_so_resume_continues_it(tmp_path):
    """Before: result.json after --from-nodes/--to-nodes listed only the selected steps, so --resume reran all."""
    root = tmp_path / "r"
    (tmp_path / "fast").touch()
    spec = _spec(tmp_path, root, "sel", ["a", "b", "c"])
    base = ["--spec", str(spec), "--root", str(root), "--run-id", "sel", "--json"]
    upto = _cli(tmp_path, *base, "--to-nodes", "b")
    assert upto.exit_code == 0, upto.output
    steps = {s["name"]: s for s in _record(root, "sel")["steps"]}
    assert [*steps] == ["a", "b", "c"]
    assert steps["c"]["state"] == "skipped" and steps["c"]["selected"] is False
    assert steps["c"]["reason"] == "not selected (--from-nodes/--to-nodes)"

    (tmp_path / "fail-c").touch()
    tail = _cli(tmp_path, *base, "--from-nodes", "c")
    assert tail.exit_code == 1
    steps = {s["name"]: s for s in _record(root, "sel")["steps"]}
    assert {n: s["state"] for n, s in steps.items()} == {"a": "done", "b": "done", "c": "failed"}
    assert steps["a"]["selected"] is False and steps["c"]["selected"] is True

    (tmp_path / "fail-c").unlink()
    resumed = _cli(tmp_path, *base, "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert _runs(tmp_path) == ["a", "b", "c", "c"]  # only c ran again
    assert _record(root, "sel")["state"] == "succeeded"


_NODES = '''

import os as _os
import time as _time
from pathlib import Path as _Path


def begin(start):
    return [start]


def hold(xs):
    """Write this process's pid, then sleep."""
    (_Path(_os.environ["KVC_PID_DIR"]) / "hold.pid").write_text(str(_os.getpid()))
    _time.sleep(60)
    return xs + [2]


def end(xs):
    return xs + [3]
'''

_PIPELINE = """from kedro.pipeline import Pipeline, node

from .nodes import begin, end, hold


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(begin, "params:start", "a", name="begin"),
            node(hold, "a", "b", name="hold"),
            node(end, "b", "c", name="end"),
        ]
    )
"""


@pytest.mark.slow
def test_sigterm_stops_a_step_forked_by_the_preload_server(tmp_path):
    """The default runner forks steps from a warm server: they stop with run-local too (exit 143)."""
    from kedro_vertex_ci.testing.projectgen import make_project, package_name_for

    vertexai = {"project_id": "demo-project", "region": "europe-west4", "run_config": {"image": "img:1"}}
    project = make_project(
        tmp_path,
        "robust_demo",
        "chain",
        1,
        vertexai=vertexai,
        catalog={"c": {"type": "json.JSONDataset", "filepath": "data/c.json"}},
    )
    src = project / "src" / package_name_for("robust_demo")
    (src / "nodes.py").write_text((src / "nodes.py").read_text() + _NODES)
    (src / "pipeline.py").write_text(_PIPELINE)
    pids = tmp_path / "pids"
    pids.mkdir()
    env = dict(os.environ, KVC_PID_DIR=str(pids))
    env["PATH"] = os.pathsep.join((str(SCRIPT.parent), env.get("PATH", "")))
    argv = [str(SCRIPT), "run-local", "--json", "--run-id", "pre"]
    proc = subprocess.Popen(
        argv,
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_default_sigint,  # noqa: PLW1509 - single-threaded test process
    )
    step_pid = _pid(pids / "hold.pid")
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    _wait_for(lambda: not _alive(step_pid), "the forked step to end", 10)
    states = {s["name"]: s["state"] for s in json.loads(out)["steps"]}
    assert states == {"begin": "done", "hold": "failed", "end": "skipped"}


@pytest.mark.docker
@pytest.mark.slow
def test_sigterm_removes_the_step_containers_of_the_docker_runner(tmp_path):
    """Killing the ``docker run`` client alone leaves its container running: run-local removes it."""
    image = "kvc-base:bookworm"  # scripts/docker-engine.sh's base image (has python3)
    env = dict(os.environ)
    env.setdefault("DOCKER_HOST", "unix:///var/tmp/kvc-docker/docker.sock")
    if subprocess.run(["docker", "image", "inspect", image], env=env, capture_output=True).returncode:
        pytest.fail(f"no Docker engine with {image} at {env['DOCKER_HOST']}: run `make docker-up` first")
    # PID 1 of a container ignores SIGTERM without a handler: only the removal can stop this step.
    code = (
        "import pathlib, socket, sys, time; pathlib.Path(sys.argv[1]).write_text(socket.gethostname()); "
        "time.sleep(120)"
    )
    marker = tmp_path / "r" / "up.txt"
    spec = {
        "pipelineInfo": {"name": "boxed"},
        "components": {"comp-sleeper": {"executorLabel": "exec-sleeper"}},
        "deploymentSpec": {
            "executors": {
                "exec-sleeper": {
                    "container": {"image": image, "command": ["python3", "-c", code, str(marker)]}
                }
            }
        },
        "root": {
            "dag": {
                "tasks": {
                    "sleeper": {"componentRef": {"name": "comp-sleeper"}, "taskInfo": {"name": "sleeper"}}
                }
            }
        },
    }
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps(spec))
    (tmp_path / "r").mkdir()
    args = ["--spec", str(spec_path), "--root", str(tmp_path / "r"), "--runner", "docker", "--no-mount-data"]
    proc = subprocess.Popen(
        [str(SCRIPT), "run-local", *args, "--run-id", "boxed"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_default_sigint,  # noqa: PLW1509 - single-threaded test process
    )
    _wait_for(lambda: marker.exists() and marker.read_text() != "", "the container to start", 120)
    container = marker.read_text()  # a container's hostname is its short id
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    listed = subprocess.run(["docker", "ps", "-aq"], env=env, capture_output=True, text=True, check=True)
    assert container not in listed.stdout.split(), "a step container outlived run-local"
    assert _record(tmp_path / "r", "boxed")["steps"][0]["state"] == "failed"
