"""The step runtime as Vertex runs it: ``kedro-vertex-ci step …`` processes in a real Kedro project."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from kedro_vertex_ci.runtime.intermediate import IntermediateDataset

from .conftest import BUCKET, STEP, step


def _ok(result) -> None:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"


def _run_args(run_id: str, root: Path | str, job: str = "job-1") -> list[str]:
    return ["--run-id", run_id, "--job-name", job, "--root", str(root)]


def _load(root: Path | str, run_id: str, name: str):
    return IntermediateDataset.for_run(str(root), run_id, name).load()


def _last_line(text: str) -> str:
    return text.strip().splitlines()[-1]


def test_three_steps_pass_memory_datasets_through_files_with_one_kedro_start_each(rt_project, tmp_path):
    root = tmp_path / "root"
    run = _run_args("run-chain", root)
    starts = tmp_path / "starts.txt"
    env = {"RTDEMO_STARTS_FILE": str(starts)}

    first = step(rt_project, "--node", "make", *run, "--write", "a", env=env)
    _ok(first)
    assert "register_new_resolver" not in first.stderr  # Kedro's own deprecation noise is kept out of logs
    _ok(step(rt_project, "--node", "double", *run, "--read", "a", "--write", "b", env=env))
    _ok(step(rt_project, "--node", "total", *run, "--read", "a", "--read", "b", env=env))

    result = json.loads((rt_project / "data" / "run-chain" / "result.json").read_text())
    assert result == {"total": 18, "xs": [0, 1, 2, 3], "ys": [0, 2, 4, 6]}
    assert sorted(p.name for p in (root / "kedro-vertex-ci" / "run-chain").iterdir()) == ["a.bin", "b.bin"]
    assert _load(root, "run-chain", "b") == [0, 2, 4, 6]
    pids = starts.read_text().split()
    assert len(pids) == 3 and len(set(pids)) == 3  # one Kedro context per step process, not two


def test_dataset_used_inside_the_step_and_downstream_is_written_and_shared_in_memory(rt_project, tmp_path):
    root = tmp_path / "root"
    run = _run_args("run-inside", root)
    # ``a`` feeds ``a_mutate`` (which appends to its input in place) and ``double`` inside the step, and
    # ``total`` in the next step; ``b`` is consumed only downstream.
    first = step(
        rt_project,
        "--pipeline",
        "inside",
        "--node",
        "make",
        "--node",
        "a_mutate",
        "--node",
        "double",
        *run,
        "--write",
        "a",
        "--write",
        "b",
    )
    _ok(first)
    assert _load(root, "run-inside", "a") == [0, 1, 2, 3]
    assert _load(root, "run-inside", "b") == [0, 2, 4, 6]  # double saw a copy, not mutate's edit
    assert not (root / "kedro-vertex-ci" / "run-inside" / "a_sum.bin").exists()  # not asked to write

    _ok(step(rt_project, "--pipeline", "inside", "--node", "total", *run, "--read", "a", "--read", "b"))
    result = json.loads((rt_project / "data" / "run-inside" / "result.json").read_text())
    assert result["xs"] == [0, 1, 2, 3] and result["total"] == 18


def test_free_memory_inputs_are_supplied_from_the_root_without_read_flags(rt_project, tmp_path):
    root = tmp_path / "root"
    run = _run_args("run-implicit", root)
    _ok(step(rt_project, "--node", "make", *run, "--write", "a"))
    # ``kedro run --nodes double`` fails on Kedro 1.x (``a`` is an empty MemoryDataset); the runtime reads it.
    _ok(step(rt_project, "--node", "double", *run, "--write", "b"))
    assert _load(root, "run-implicit", "b") == [0, 2, 4, 6]


def test_cli_parameters_override_parameters_yml_and_run_values_resolve(rt_project, tmp_path):
    env = {
        "KEDRO_CONFIG_COMMIT_ID": "abc123",
        "KEDRO_CONFIG_BRANCH_NAME": "feature-x",
        "KEDRO_CONFIG_TEAM": "ml",
    }
    result = step(
        rt_project,
        "--pipeline",
        "misc",
        "--node",
        "report",
        *_run_args("run-p", tmp_path, job="job-p"),
        "--param",
        'label=it\'s "quoted" & spaced',
        "--param-json",
        "n=3",
        env=env,
    )
    _ok(result)
    report = json.loads((rt_project / "data" / "report-job-p-abc123.json").read_text())
    assert report == {
        "label": 'it\'s "quoted" & spaced',
        "n": 3,
        "tag": "run-p|job-p|abc123|feature-x|ml",
        "status": "unknown",
        "env_run_id": "run-p",
    }


def test_run_values_fall_back_to_defaults_and_on_exit_status_is_visible(rt_project, tmp_path):
    result = step(
        rt_project,
        "--pipeline",
        "misc",
        "--node",
        "report",
        *_run_args("run-exit", tmp_path, job="job-exit"),
        "--on-exit",
        "--status",
        "FAILED",
    )
    _ok(result)
    report = json.loads((rt_project / "data" / "report-job-exit-dirty.json").read_text())
    assert report == {
        "label": "from-yaml",
        "n": 4,
        "tag": "run-exit|job-exit|dirty|dirty|ds",
        "status": "FAILED",
        "env_run_id": "run-exit",
    }


def test_runs_are_isolated_by_run_id(rt_project, tmp_path):
    root = tmp_path / "root"
    _ok(step(rt_project, "--node", "make", *_run_args("run-1", root), "--write", "a"))
    _ok(step(rt_project, "--node", "make", *_run_args("run-2", root), "--write", "a", "--param-json", "n=2"))
    _ok(step(rt_project, "--node", "double", *_run_args("run-1", root), "--read", "a", "--write", "b"))
    _ok(step(rt_project, "--node", "double", *_run_args("run-2", root), "--read", "a", "--write", "b"))
    assert _load(root, "run-1", "b") == [0, 2, 4, 6]
    assert _load(root, "run-2", "b") == [0, 2]


def test_missing_intermediate_input_names_dataset_run_and_root(rt_project, tmp_path):
    root = tmp_path / "root"
    result = step(
        rt_project, "--node", "double", *_run_args("never-ran", root), "--read", "a", "--write", "b"
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    line = _last_line(result.stderr)
    assert "intermediate dataset 'a' not found" in line
    assert "run id 'never-ran'" in line and str(root) in line


def test_a_damaged_intermediate_file_stops_the_reader_with_one_line_naming_file_producer_and_run(
    rt_project, tmp_path
):
    root = tmp_path / "root"
    _ok(step(rt_project, "--node", "make", *_run_args("run-bits", root), "--write", "a"))
    path = Path(IntermediateDataset.for_run(str(root), "run-bits", "a").path)
    data = bytearray(path.read_bytes())
    data[-60] ^= 0x01  # one flipped bit in the payload
    path.write_bytes(bytes(data))
    result = step(
        rt_project, "--node", "double", *_run_args("run-bits", root), "--read", "a", "--write", "b"
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    line = _last_line(result.stderr)
    assert line.startswith("kedro-vertex-ci step: error: intermediate dataset 'a' of run 'run-bits'")
    assert str(path) in line and "written by node 'make'" in line
    assert not (root / "kedro-vertex-ci" / "run-bits" / "b.bin").exists()


def test_odd_dataset_names_map_to_safe_file_names(rt_project, tmp_path):
    root = tmp_path / "root"
    run = _run_args("run-odd", root)
    _ok(step(rt_project, "--pipeline", "odd", "--node", "make_odd", *run, "--write", "odd:set/x"))
    _ok(
        step(
            rt_project,
            "--pipeline",
            "odd",
            "--node",
            "double_odd",
            *run,
            "--read",
            "odd:set/x",
            "--write",
            "ns.odd/y",
        )
    )
    _ok(step(rt_project, "--pipeline", "odd", "--node", "total_odd", *run))
    names = sorted(p.name for p in (root / "kedro-vertex-ci" / "run-odd").iterdir())
    assert names == ["ns.odd%2Fy.bin", "odd%3Aset%2Fx.bin"]
    assert json.loads((rt_project / "data" / "run-odd" / "result.json").read_text())["total"] == 18


def test_user_node_error_shows_its_traceback_and_a_one_line_summary(rt_project, tmp_path):
    result = step(
        rt_project,
        "--pipeline",
        "misc",
        "--node",
        "make_s",
        "--node",
        "boom",
        *_run_args("run-boom", tmp_path),
    )
    assert result.returncode == 1
    assert "Traceback" in result.stderr and "boom from a user node" in result.stderr
    assert _last_line(result.stderr) == (
        "kedro-vertex-ci step: error: node failed: RuntimeError: boom from a user node"
    )


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--node", "nope"], "cannot start the step"),
        (["--pipeline", "missing", "--node", "make"], "missing"),
        (["--node", "make", "--write", "b"], "--write b: not an output of the step's nodes"),
        (["--node", "make", "--param-json", "n={bad"], "not valid JSON"),
    ],
)
def test_arguments_that_do_not_fit_the_project_are_one_line_errors(rt_project, tmp_path, args, expected):
    result = step(rt_project, *args, *_run_args("run-bad", tmp_path))
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert expected in _last_line(result.stderr)


def test_timeout_stops_the_step_cleanly(rt_project, tmp_path):
    started = time.monotonic()
    result = step(
        rt_project,
        "--pipeline",
        "misc",
        "--node",
        "make_s",
        "--node",
        "sleep",
        *_run_args("run-slow", tmp_path),
        "--timeout",
        "2",
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 124
    assert _last_line(result.stderr) == "kedro-vertex-ci step: error: step timed out after 2 s (--timeout 2)"
    assert elapsed < 30


def test_steps_pass_datasets_through_gcs(rt_project, tmp_path, gcs_emulator):
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    env = {"STORAGE_EMULATOR_HOST": gcs_emulator, "NO_GCE_CHECK": "true"}
    root = f"gs://{BUCKET}/pipeline-root"
    run = _run_args("run-gs", root)
    _ok(step(rt_project, "--node", "make", *run, "--write", "a", env=env))
    _ok(step(rt_project, "--node", "double", *run, "--read", "a", "--write", "b", env=env))
    _ok(step(rt_project, "--node", "total", *run, "--read", "a", "--read", "b", env=env))

    client = storage.Client(
        project="test", credentials=AnonymousCredentials(), client_options={"api_endpoint": gcs_emulator}
    )
    names = sorted(
        blob.name for blob in client.list_blobs(BUCKET, prefix="pipeline-root/kedro-vertex-ci/run-gs/")
    )
    assert names == [
        "pipeline-root/kedro-vertex-ci/run-gs/a.bin",
        "pipeline-root/kedro-vertex-ci/run-gs/b.bin",
    ]
    assert json.loads((rt_project / "data" / "run-gs" / "result.json").read_text())["total"] == 18


def test_a_folder_that_is_not_a_kedro_project_is_a_one_line_error(tmp_path):
    result = step(tmp_path, "--node", "make", *_run_args("run-x", tmp_path / "root"))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert _last_line(result.stderr).startswith("kedro-vertex-ci step: error: cannot start the step:")


def test_a_prompt_never_waits_for_a_human(rt_project, tmp_path):
    read_end, write_end = os.pipe()  # an open stdin nobody writes to: input() would wait forever
    try:
        result = step(
            rt_project,
            *("--pipeline", "misc", "--node", "make_s", "--node", "ask"),
            *_run_args("run-ask", tmp_path),
            stdin=read_end,
            timeout=60,
        )
    finally:
        os.close(read_end)
        os.close(write_end)
    assert result.returncode == 1
    assert (
        _last_line(result.stderr)
        == "kedro-vertex-ci step: error: node failed: EOFError: EOF when reading a line"
    )


def test_a_step_killed_while_writing_leaves_no_file_under_the_final_name(rt_project, tmp_path):
    folder = tmp_path / "root" / "kedro-vertex-ci" / "run-kill"
    cmd = [STEP, "step", "--pipeline", "misc", "--node", "make_s", "--node", "big"]
    cmd += [*_run_args("run-kill", tmp_path / "root"), "--write", "big_out"]
    proc = subprocess.Popen(cmd, cwd=rt_project, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not (folder.is_dir() and any(p.suffix == ".tmp" for p in folder.iterdir())):
            assert proc.poll() is None, "the step ended before it was caught writing"
            assert time.monotonic() < deadline
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)  # as a preempted node would be: no cleanup code runs
    finally:
        proc.wait(timeout=30)
    assert not (folder / "big_out.bin").exists()


def test_a_dotted_parameter_overrides_one_nested_key(rt_project, tmp_path):
    args = ("--pipeline", "misc", "--node", "show_model", "--param-json", "model.lr=0.5")
    _ok(step(rt_project, *args, *_run_args("run-nested", tmp_path)))
    assert json.loads((rt_project / "data" / "run-nested" / "model.json").read_text()) == {
        "lr": 0.5,
        "depth": 2,
    }
