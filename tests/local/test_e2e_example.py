"""The bundled example end to end: compile + run-local (subprocess runner) gives what plain ``kedro run`` gives.

Each test works on a fresh copy of ``examples/spaceflights_lite`` so the repository stays clean and the
outputs seen are the ones this run wrote.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "spaceflights_lite"
BIN = Path(sys.executable).parent
OUTPUTS = (
    "data/01_raw/companies.csv",
    "data/02_intermediate/preprocessed_shuttles.parquet",
    "data/03_primary/model_input_table.parquet",
    "data/06_models/regressor.pickle",
    "data/08_reporting/metrics.json",
    "data/08_reporting/fleet_report.csv",
    "data/08_reporting/capacity_prices.csv",
)
# Not in the catalog: the step runtime must carry these between steps as files.
INTERMEDIATES = ("X_test", "y_test", "fleet_summary")

pytestmark = pytest.mark.slow


def _env() -> dict[str, str]:
    env = dict(os.environ, KEDRO_DISABLE_TELEMETRY="true", DO_NOT_TRACK="1")
    env["PATH"] = os.pathsep.join((str(BIN), env.get("PATH", "")))
    env["GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT"] = "false"
    return env


def _copy_example(dest: Path, grouping: str | None = "identity") -> Path:
    """A copy of the example with one step per node: these tests follow data across many steps (the
    example's own `auto` fuses it into a few; auto is checked by tests/test_grouping.py and the Kedro oracle)."""
    ignore = shutil.ignore_patterns("data", ".kedro-vertex-ci", "*.egg-info", "__pycache__", "pipeline.json")
    shutil.copytree(EXAMPLE, dest, ignore=ignore)
    if grouping is not None:
        config = dest / "conf" / "base" / "vertexai.yml"
        config.write_text(config.read_text().replace("    cls: auto\n", f"    cls: {grouping}\n", 1))
    return dest


def _run(argv: list[str], cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def plain_run(tmp_path_factory) -> Path:
    """The example after a plain ``kedro run``: the reference outputs."""
    project = _copy_example(tmp_path_factory.mktemp("plain") / "spaceflights_lite")
    proc = _run([str(BIN / "kedro"), "run"], project)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return project


@pytest.fixture(scope="module")
def local_run(tmp_path_factory) -> tuple[Path, dict]:
    """The example after ``kedro-vertex-ci run-local --json``: (project, result)."""
    project = _copy_example(tmp_path_factory.mktemp("local") / "spaceflights_lite")
    proc = _run([str(BIN / "kedro-vertex-ci"), "run-local", "--json", "--run-id", "e2e"], project)
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-3000:]
    return project, json.loads(proc.stdout)


def test_run_local_runs_every_step_of_the_compiled_example(local_run):
    project, result = local_run
    assert result["state"] == "succeeded" and result["exit_code"] == 0
    steps = {s["name"]: s for s in result["steps"]}
    assert len(steps) >= 8 and all(s["state"] == "done" for s in steps.values())
    for step in steps.values():
        assert Path(step["log"]).is_file()
    runs = project / ".kedro-vertex-ci" / "runs"
    assert result["pipeline_root"] == str(runs.resolve())
    assert (runs / "e2e" / "result.json").is_file()
    # independent branches overlapped: the two generators started together
    starts = sorted(s["started_seconds"] for s in result["steps"] if s["name"].startswith("generate-c"))
    shuttles = steps["generate-shuttles"]["started_seconds"]
    assert abs(starts[0] - shuttles) < 0.5


def test_outputs_exist_and_intermediates_crossed_steps_as_files(local_run):
    project, _ = local_run
    for output in OUTPUTS:
        assert (project / output).is_file(), output
    data_dir = project / ".kedro-vertex-ci" / "runs" / "kedro-vertex-ci" / "e2e"
    written = {p.stem for p in data_dir.iterdir()}
    assert set(INTERMEDIATES) <= written, written


def test_run_local_gives_the_same_results_as_plain_kedro_run(local_run, plain_run):
    project, _ = local_run
    for table in ("data/08_reporting/fleet_report.csv", "data/08_reporting/capacity_prices.csv"):
        pd.testing.assert_frame_equal(pd.read_csv(project / table), pd.read_csv(plain_run / table))
    local_metrics = json.loads((project / "data/08_reporting/metrics.json").read_text())
    plain_metrics = json.loads((plain_run / "data/08_reporting/metrics.json").read_text())
    assert local_metrics == pytest.approx(plain_metrics)
    assert local_metrics["r2"] > 0.8  # the model learned the generated price


def test_rerun_from_a_node_with_a_nested_param_override_changes_only_the_model(local_run):
    project, _ = local_run
    before = json.loads((project / "data/08_reporting/metrics.json").read_text())
    report = (project / "data/08_reporting/fleet_report.csv").stat().st_mtime_ns
    proc = _run(
        [
            str(BIN / "kedro-vertex-ci"),
            "run-local",
            "--json",
            "--run-id",
            "e2e",
            "--from-nodes",
            "train_model",
            "--param",
            "model_options.regressor.max_depth=1",
        ],
        project,
    )
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    ran = [s["name"] for s in result["steps"] if s["selected"]]
    assert "generate-companies" not in ran and any("evaluate" in name for name in ran)
    kept = {s["name"]: s["state"] for s in result["steps"] if not s["selected"]}
    assert kept["generate-companies"] == "done"  # the record still covers the whole pipeline
    assert result["params"]["model_options"]["regressor"]["max_depth"] == 1
    after = json.loads((project / "data/08_reporting/metrics.json").read_text())
    assert after["r2"] < before["r2"]  # a depth-1 forest is a worse model: the override reached the node
    assert (project / "data/08_reporting/fleet_report.csv").stat().st_mtime_ns == report


def test_make_demo_installs_and_dry_runs_the_example():
    """What a newcomer runs first: ``make demo`` from the repository root, with this interpreter's venv."""
    venv = os.path.relpath(sys.prefix, REPO)
    installed = f"{venv}/.installed"  # -o: this venv runs the tests, so it is installed; do not reinstall
    proc = subprocess.run(
        ["make", "-s", "-o", installed, "demo", f"VENV={venv}"],
        cwd=REPO,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-3000:]
    assert "run-local spaceflights-lite-pipeline: succeeded" in proc.stdout
    assert (EXAMPLE / "data/08_reporting/metrics.json").is_file()


def test_a_gs_pipeline_root_carries_intermediates_through_the_gcs_emulator(local_run, gcs_emulator):
    """``--pipeline-root gs://…``: steps see the bucket path, ``fleet_summary`` travels through the emulator."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    from tests.local.conftest import BUCKET

    project, _ = local_run
    env = {"STORAGE_EMULATOR_HOST": gcs_emulator, "NO_GCE_CHECK": "true"}
    argv = [str(BIN / "kedro-vertex-ci"), "run-local", "--json", "--run-id", "gs-run"]
    argv += ["--pipeline-root", f"gs://{BUCKET}/local-root", "--from-nodes", "summarise_fleet"]
    proc = subprocess.run(
        argv, cwd=project, env={**_env(), **env}, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    assert result["pipeline_root"] == f"gs://{BUCKET}/local-root"
    assert {s["name"] for s in result["steps"] if s["selected"]} == {
        "summarise-fleet",
        "format-fleet-report",
        "price-by-capacity",
    }
    client = storage.Client(
        project="test", credentials=AnonymousCredentials(), client_options={"api_endpoint": gcs_emulator}
    )
    names = [b.name for b in client.list_blobs(BUCKET, prefix="local-root/kedro-vertex-ci/gs-run/")]
    assert names == ["local-root/kedro-vertex-ci/gs-run/fleet_summary.bin"]
    logs = project / ".kedro-vertex-ci" / "runs" / "gs-run" / "logs"
    assert (logs / "format-fleet-report.log").is_file()  # logs stay local whatever the root
