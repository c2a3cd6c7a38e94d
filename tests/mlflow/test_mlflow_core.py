"""The pure parts of the MLflow integration, the compiler's decision, and run-local's task output parameters."""

# No postponed annotations here: kfp reads the component signatures (dsl.OutputPath) at decoration time.


import json
import sys
from pathlib import Path

import pytest

from kedro_vertex_ci import mlflow_run
from kedro_vertex_ci.errors import ConfigError
from kedro_vertex_ci.local.run import RunOptions, run_spec
from kedro_vertex_ci.local.runners import SubprocessRunner
from kedro_vertex_ci.local.specgraph import FromTask, build_graph
from kedro_vertex_ci.mlflow_auth import PARAMS_ENV
from kedro_vertex_ci.testing.projectgen import make_project
from tests.mlflow.conftest import CLIENT_ID, mlflow_project


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ('{"state": "SUCCEEDED", "error": {}}', "FINISHED"),
        ('{"state": "FAILED", "error": {"code": 2}}', "FAILED"),
        ('{"state": "CANCELLED"}', "KILLED"),
        ("SUCCEEDED", "FINISHED"),
        ("", "FAILED"),
        (None, "FAILED"),
    ],
)
def test_pipeline_status_maps_to_the_mlflow_run_status(status, expected):
    assert mlflow_run.final_status(status) == expected


def test_tag_filter_names_the_job_and_refuses_quotes():
    assert mlflow_run.tag_filter("abc-123") == "tags.vertexai_run_id = 'abc-123'"
    with pytest.raises(mlflow_run.MlflowTaskError):
        mlflow_run.tag_filter("x' OR '1")


def test_output_file_is_written_atomically_into_a_new_folder(tmp_path):
    target = tmp_path / "outputs" / "task" / "run_id"
    mlflow_run.write_output(str(target), "abc")
    assert target.read_text() == "abc" and [p.name for p in target.parent.iterdir()] == ["run_id"]


def test_compile_adds_the_mlflow_tasks_and_the_provider_params_only_for_kedro_mlflow_projects(tmp_path):
    from kedro_vertex_ci.compiler import compile_pipeline

    header = {"client_id": CLIENT_ID}
    with_mlflow = mlflow_project(tmp_path, "uses_mlflow", "http://127.0.0.1:9", "x", header_params=header)
    compiled = compile_pipeline(with_mlflow)
    assert compiled.plan.mlflow
    executors = compiled.spec["deploymentSpec"]["executors"]
    assert {"exec-mlflow-start-run", "exec-mlflow-end-run"} <= set(executors)
    for executor in executors.values():
        assert executor["container"]["env"] == [{"name": PARAMS_ENV, "value": json.dumps(header, separators=(",", ":"))}]

    plain = make_project(tmp_path, "plain_project", "chain", 2, vertexai={
        "project_id": "demo-project", "region": "europe-west4",
        "run_config": {"image": "i:1", "mlflow": {"request_header_provider_params": header}},
    })
    compiled = compile_pipeline(plain)
    assert not compiled.plan.mlflow and "mlflow" not in json.dumps(compiled.spec)


def test_compile_names_the_key_of_bad_provider_params(tmp_path):
    from kedro_vertex_ci.compiler import compile_pipeline

    project = mlflow_project(tmp_path, "bad_params", "http://127.0.0.1:9", "x", header_params={"service_account": "a@b.c"})
    with pytest.raises(ConfigError) as err:
        compile_pipeline(project)
    (problem,) = err.value.problems
    assert problem.key == "run_config.mlflow.request_header_provider_params" and "client_id" in problem.message


def _kfp_spec_with_an_output_parameter(tmp_path: Path) -> dict:
    """kfp's own compilation: a producer writing an output parameter, two consumers of it in an exit handler."""
    from kfp import compiler, dsl

    write = "import sys, pathlib; p = pathlib.Path(sys.argv[1]); p.parent.mkdir(parents=True, exist_ok=True); p.write_text('v-42')"
    show = "import sys, pathlib; pathlib.Path(sys.argv[2]).write_text(sys.argv[1])"

    @dsl.container_component
    def produce(value: dsl.OutputPath(str)):
        return dsl.ContainerSpec(image="python", command=[sys.executable, "-c", write], args=[value])

    @dsl.container_component
    def consume(seen: str, into: str):
        return dsl.ContainerSpec(image="python", command=[sys.executable, "-c", show], args=[seen, into])

    @dsl.container_component
    def finish(status: dsl.PipelineTaskFinalStatus):
        return dsl.ContainerSpec(image="python", command=[sys.executable, "-c", "pass"], args=[f"{status}"])

    @dsl.pipeline(name="outputs")
    def pipeline():
        with dsl.ExitHandler(finish()):
            first = produce()
            consume(seen=first.output, into=str(tmp_path / "a.txt"))
            consume(seen=first.outputs["value"], into=str(tmp_path / "b.txt"))

    package = tmp_path / "outputs.json"
    compiler.Compiler().compile(pipeline, str(package))
    import yaml

    return yaml.safe_load(package.read_text())


def test_run_local_hands_an_output_parameter_to_its_consumers(tmp_path):
    spec = _kfp_spec_with_an_output_parameter(tmp_path)
    graph = build_graph(spec)
    consumer = graph.task("consume")
    assert consumer.inputs["seen"] == FromTask("produce", "value") and graph.task("produce").outputs == ("value",)
    result = run_spec(spec, SubprocessRunner(tmp_path), RunOptions(root=tmp_path / "root", run_id="out-1"))
    assert result.succeeded, result.to_json()
    assert (tmp_path / "a.txt").read_text() == "v-42" and (tmp_path / "b.txt").read_text() == "v-42"
    assert (tmp_path / "root" / "out-1" / "outputs" / "produce" / "value").read_text() == "v-42"


def test_a_producer_that_wrote_nothing_fails_its_consumers_with_the_reason(tmp_path):
    spec = _kfp_spec_with_an_output_parameter(tmp_path)
    producer = spec["deploymentSpec"]["executors"]["exec-produce"]["container"]
    producer["command"] = [sys.executable, "-c", "pass"]
    result = run_spec(spec, SubprocessRunner(tmp_path), RunOptions(root=tmp_path / "root", run_id="out-2"))
    reasons = {s.name: s.reason for s in result.steps}
    assert "wrote no output 'value'" in reasons["consume"]
    assert result.to_json()["steps"][-1]["state"] == "done"  # the exit task still ran


def test_a_spec_reading_an_undeclared_output_is_refused(tmp_path):
    spec = _kfp_spec_with_an_output_parameter(tmp_path)
    spec["components"]["comp-produce"].pop("outputDefinitions")
    with pytest.raises(ConfigError, match="no such output parameter"):
        build_graph(spec)
