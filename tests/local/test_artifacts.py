"""``run_config.artifacts: true`` (kedro-vertexai #172): each step declares the catalog datasets it writes as
``system.Dataset`` output artifacts and reports their catalog URIs in its ExecutorOutput, a step on a
``machine_type`` (a CustomJob) too (spec parity with kfp.compiler is in tests/test_spec_parity.py, case
``artifacts``, and tests/test_customjob_parity.py, case ``artifacts-on-machines``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from kedro_vertex_ci import customjob
from kedro_vertex_ci.cli import cli
from kedro_vertex_ci.runtime.artifacts import dataset_uri, executor_output
from tests.conftest import minimal_vertexai

REGISTRY = """\
from kedro.pipeline import Pipeline, node


def make():
    return {"rows": 3}


def keep(x):
    return x, x


def register_pipelines():
    return {"__default__": Pipeline([node(make, None, "table", name="make"),
                                     node(keep, "table", ["copy", "scratch"], name="keep")])}
"""


@pytest.fixture
def project(kedro_new_project: Path, fresh_demo_modules: None) -> Path:
    (kedro_new_project / "src" / "demo" / "pipeline_registry.py").write_text(REGISTRY)
    (kedro_new_project / "conf" / "base" / "catalog.yml").write_text(
        "table:\n  type: json.JSONDataset\n  filepath: data/02_intermediate/table.json\n"
        "copy:\n  type: json.JSONDataset\n  filepath: data/03_primary/copy.json\n")
    (kedro_new_project / "conf" / "base" / "vertexai.yml").write_text(minimal_vertexai(
        artifacts="true", resources="{keep: {machine_type: n1-standard-4}}"))
    settings = kedro_new_project / "src" / "demo" / "settings.py"
    settings.write_text(settings.read_text() + '\nDISABLE_HOOKS_FOR_PLUGINS = ("kedro_mlflow",)\n')
    return kedro_new_project


def test_uris_of_local_and_remote_catalog_paths(tmp_path: Path):
    assert dataset_uri({"filepath": "bucket/x/t.csv", "protocol": "gs"}, tmp_path) == "gs://bucket/x/t.csv"
    assert dataset_uri({"filepath": "data/t.json", "protocol": "file"}, tmp_path) == str(tmp_path / "data/t.json")
    assert dataset_uri({"filepath": "s3://b/k"}, tmp_path) == "s3://b/k"
    assert dataset_uri({"data": "<in memory>"}, tmp_path) is None
    assert executor_output({"t": "gs://b/t"}, {"t": "t", "gone": "gone"}) == {"artifacts": {"t": {"artifacts": [
        {"name": "t", "uri": "gs://b/t", "metadata": {"kedro_dataset": "t"}}]}}}


@pytest.mark.slow
def test_a_step_reports_where_the_catalog_wrote_its_datasets(project: Path, tmp_path: Path):
    """``make`` is a container step, ``keep`` a CustomJob: run-local honours both declarations."""
    out = project / "p.json"
    assert CliRunner().invoke(cli, ["--project", str(project), "compile", "-o", str(out)]).exit_code == 0
    spec = json.loads(out.read_text())
    assert set(spec["components"]["comp-make"]["outputDefinitions"]["artifacts"]) == {"table"}
    # "scratch" is no catalog dataset; "copy" is declared although the step runs as a CustomJob
    assert set(spec["components"]["comp-keep"]["outputDefinitions"]["artifacts"]) == {"copy"}
    assert spec["deploymentSpec"]["executors"]["exec-keep"]["container"]["image"] == customjob.LAUNCHER_IMAGE

    result = CliRunner().invoke(cli, ["--project", str(project), "run-local", "--no-preload", "--run-id", "r1",
                                      "--root", str(tmp_path / "runs")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    written = json.loads((tmp_path / "runs" / "r1" / "outputs" / "make" / "executor_output.json").read_text())
    table = project / "data" / "02_intermediate" / "table.json"
    assert written == {"artifacts": {"table": {"artifacts": [
        {"name": "table", "uri": str(table.resolve()), "metadata": {"kedro_dataset": "table"}}]}}}
    assert json.loads(table.read_text()) == {"rows": 3}
    copy = project / "data" / "03_primary" / "copy.json"
    assert json.loads((tmp_path / "runs" / "r1" / "outputs" / "keep" / "executor_output.json").read_text()) == {
        "artifacts": {"copy": {"artifacts": [
            {"name": "copy", "uri": str(copy.resolve()), "metadata": {"kedro_dataset": "copy"}}]}}}
    assert json.loads(copy.read_text()) == {"rows": 3}


def test_the_0x_key_carries_over_with_a_warning():
    from kedro_vertex_ci.config import parse_config

    parsed = parse_config({"project_id": "my-project", "region": "europe-west1", "run_config": {
        "image": "i:1", "store_kedro_outputs_as_kfp_artifacts": True}})
    assert parsed.config.run_config.artifacts is True
    assert any("run_config.artifacts" in w for w in parsed.warnings)
