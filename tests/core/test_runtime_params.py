"""``${runtime_params:…}`` keys (kedro-vertexai #174): accepted by ``--param``, typed pipeline inputs, resolved by
Kedro inside each step; a key with no default and no value is one clear error, not an OmegaConf traceback."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from kedro_vertex_ci.cli import cli
from kedro_vertex_ci.params import NO_DEFAULT, runtime_param_refs
from tests.conftest import minimal_vertexai

REGISTRY = """\
import json
import os

from kedro.pipeline import Pipeline, node


def record(run_date, limit, x):
    with open(os.environ["KVC_TEST_OUT"], "w") as out:
        json.dump({"run_date": run_date, "limit": limit, "x": x}, out)
    return x


def register_pipelines():
    return {"__default__": Pipeline([node(record, ["params:run_date", "params:limit", "params:x"], "y",
                                          name="record")])}
"""

PARAMETERS = """\
x: 1
run_date: ${runtime_params:date_param}
limit: ${runtime_params:limit, 10}
"""


@pytest.fixture
def project(kedro_new_project: Path, fresh_demo_modules: None) -> Path:
    (kedro_new_project / "src" / "demo" / "pipeline_registry.py").write_text(REGISTRY)
    (kedro_new_project / "conf" / "base" / "parameters.yml").write_text(PARAMETERS)
    (kedro_new_project / "conf" / "base" / "vertexai.yml").write_text(minimal_vertexai())
    settings = kedro_new_project / "src" / "demo" / "settings.py"
    # kedro-mlflow is installed in the dev venv; its hooks would need an MLflow store this project lacks.
    settings.write_text(settings.read_text() + '\nDISABLE_HOOKS_FOR_PLUGINS = ("kedro_mlflow",)\n')
    return kedro_new_project


def _compile(project: Path, *params: str):
    out = project / "pipeline.json"
    args = ["--project", str(project), "compile", "-o", str(out)]
    for item in params:
        args += ["--param", item]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    return result, (json.loads(out.read_text()) if result.exit_code == 0 else None)


def test_refs_are_found_with_their_defaults_and_lines():
    text = "a: ${runtime_params:day}\nb:\n  c: ${runtime_params: n, 3}\nd: ${runtime_params:s, 'x y'}\n"
    refs = runtime_param_refs(text, "p.yml")
    assert [(r.key, r.default, r.line) for r in refs] == [("day", NO_DEFAULT, 1), ("n", 3, 3), ("s", "x y", 4)]


def test_no_default_and_no_value_is_one_clear_error(project: Path):
    result, _ = _compile(project)
    assert result.exit_code == 2
    assert "parameters.yml:2" in result.output and "--param date_param=VALUE" in result.output
    assert "Traceback" not in result.output and "InterpolationResolutionError" not in result.output


def test_runtime_keys_become_typed_inputs_and_reach_every_step(project: Path):
    result, spec = _compile(project, "date_param=2024-05-01", "limit=25")
    assert result.exit_code == 0, result.output
    inputs = spec["root"]["inputDefinitions"]["parameters"]
    assert inputs["date_param"] == {"defaultValue": "2024-05-01", "isOptional": True, "parameterType": "STRING"}
    assert inputs["limit"]["parameterType"] == "NUMBER_INTEGER" and inputs["limit"]["defaultValue"] == 25.0
    assert "run_date" not in inputs  # built from a runtime key: Kedro rebuilds it in the step
    args = spec["deploymentSpec"]["executors"]["exec-record"]["container"]["args"]
    assert "date_param={{$.inputs.parameters['date_param']}}" in args
    assert "limit={{$.inputs.parameters['limit']}}" in args
    assert not any(a.startswith("run_date=") for a in args)


def test_an_unknown_param_is_still_refused(project: Path):
    result, _ = _compile(project, "date_param=2024-05-01", "dat_param=1")
    assert result.exit_code == 2 and "no such parameter" in result.output


@pytest.mark.slow
def test_the_step_resolves_the_runtime_value_it_receives(project: Path, tmp_path: Path, monkeypatch):
    out = tmp_path / "seen.json"
    monkeypatch.setenv("KVC_TEST_OUT", str(out))
    result = CliRunner().invoke(cli, ["--project", str(project), "run-local", "--no-preload",
                                      "--param", "date_param=2024-06-01", "--root", str(tmp_path / "runs")],
                                env={**os.environ, "KVC_TEST_OUT": str(out)}, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text()) == {"run_date": "2024-06-01", "limit": 10, "x": 1}
