"""A CustomJob step's ExecutorInput survives the launcher's JSON payload and the step reports its artifacts.

On Vertex the step's ``{{$}}`` rides in the launcher's ``--payload`` (a JSON document) as
``{{$.json_escape[1]}}``. The pipeline service substitutes that with the ExecutorInput escaped once, and
GCPC's launcher ``json.loads`` the payload before it creates the CustomJob. We stand in for the service
(substituting placeholders with run-local's renderer: the launcher's inputs first, then what they carried)
and run GCPC's own launcher code on the payload, with only the CustomJob client replaced (it would leave
this machine). The container args it sends are parsed by the step's own parser, and the artifact hook
writes the ExecutorOutput to the ``outputFile`` of the ExecutorInput Vertex built.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from kedro_vertex_ci import argv, customjob, spec
from kedro_vertex_ci.local.placeholders import render_value
from kedro_vertex_ci.model import ParamType, PipelineParam, Plan, Resources, Step
from kedro_vertex_ci.runtime.artifacts import RecordArtifacts

_PLACEHOLDER = re.compile(r"\{\{\$(?:\.[^{}]*)?\}\}")
_INPUT = re.compile(r"\{\{\$\.inputs\.parameters\['([^']+)'\]\}\}")


def _plan() -> Plan:
    return Plan(
        pipeline_name="p",
        kedro_pipeline="__default__",
        image="europe-docker.pkg.dev/proj/repo/app:1",
        env="base",
        steps=(Step("train", ("train",), parameters=("epochs",), writes=("model",)),),
        resources={"train": Resources(machine_type="n1-highmem-8", spot=True)},
        params=(PipelineParam("epochs", "epochs", ParamType.NUMBER_INTEGER, 10),),
        artifacts={"train": ("model@json",)},
    )


def _executor_input(gcs: Path) -> dict[str, Any]:
    """What Vertex hands the task: typed inputs, the output artifact under the root, files on the /gcs mount."""
    task_dir = gcs / "bucket" / "root" / "123" / "train"
    return {
        "inputs": {"parameterValues": {"epochs": 10, "note": 'say "hi" \\ ok'}},
        "outputs": {
            "artifacts": {"model_json": {"artifacts": [{
                "name": "projects/1/locations/europe-west1/metadataStores/default/artifacts/42",
                "type": {"schemaTitle": "system.Dataset", "schemaVersion": "0.0.1"},
                "uri": "gs://bucket/root/123/train/model_json", "metadata": {}}]}},
            "parameters": {"gcp_resources": {"outputFile": str(task_dir / "gcp_resources")}},
            "outputFile": str(task_dir / "executor_output.json"),
        },
    }  # fmt: skip


def _vertex_renders(text: str, values: dict[str, str]) -> str:
    def one(match: re.Match[str]) -> str:
        wanted = _INPUT.fullmatch(match.group(0))
        return values[wanted.group(1) if wanted else match.group(0)]

    return _PLACEHOLDER.sub(one, text)


def _payload_as_launched(emitted: dict[str, Any], executor_input: dict[str, Any]) -> dict[str, Any]:
    """The CustomJob GCPC's launcher creates for the ``train`` task of ``emitted``.

    The step's own inputs take their values from ``executor_input`` (what Vertex resolved for the task),
    rendered as Vertex renders a value into a command line: raw text.
    """
    from google_cloud_pipeline_components.container.v1.custom_job import remote_runner

    component = emitted["components"]["comp-train"]["inputDefinitions"]["parameters"]
    values = executor_input.get("inputs", {}).get("parameterValues", {})
    launcher_inputs = {name: render_value(p.get("defaultValue"), p["parameterType"])
                       for name, p in component.items() if name in customjob.RESERVED_INPUTS}  # fmt: skip
    args = emitted["deploymentSpec"]["executors"]["exec-train"]["container"]["args"]
    template = args[args.index("--payload") + 1]
    payload = _vertex_renders(template, launcher_inputs)
    payload = _vertex_renders(payload, {
        **{name: render_value(values[name], component[name]["parameterType"]) for name in component
           if name not in customjob.RESERVED_INPUTS},
        "{{$.json_escape[1]}}": json.dumps(json.dumps(executor_input))[1:-1],  # the JSON, escaped once
        "{{$.pipeline_job_uuid}}": "123", "{{$.pipeline_job_name}}": "p-123", "{{$.pipeline_root}}": "gs://bucket/root",
        "{{$.pipeline_google_cloud_project_id}}": "proj", "{{$.pipeline_google_cloud_location}}": "europe-west1",
        "{{$.pipeline_persistent_resource_id}}": "",
        "{{$.pipeline_job_schedule_time_utc}}": "2026-11-30T06:00:00Z",
        "{{$.pipeline_job_create_time_utc}}": "2026-11-30T06:00:01.123456Z",
        "{{$.pipeline_job_resource_name}}": "projects/1/locations/europe-west1/pipelineJobs/p-123",
    })  # fmt: skip

    created: list[dict[str, Any]] = []

    class JobClient:  # the CustomJob API call is the one part that would leave this machine
        def create_custom_job(self, parent: str, custom_job: dict[str, Any]) -> None:
            created.append(custom_job)

    job = json.loads(remote_runner.insert_system_labels_into_payload(payload))
    remote_runner.create_custom_job_with_client(JobClient(), "projects/proj/locations/europe-west1", job)
    return created[0]


def test_the_step_in_a_customjob_gets_vertexs_executor_input_and_reports_its_artifact(tmp_path: Path) -> None:
    from kedro.io import DataCatalog
    from kedro_datasets.json import JSONDataset

    emitted = spec.spec_to_dict(spec.emit(_plan()))
    executor_input = _executor_input(tmp_path / "gcs")
    job = _payload_as_launched(emitted, executor_input)
    pool = job["job_spec"]["worker_pool_specs"][0]
    assert pool["machine_spec"] == {"machine_type": "n1-highmem-8"}
    assert job["job_spec"]["scheduling"]["strategy"] == "SPOT"
    container = pool["container_spec"]
    assert container["command"] == list(argv.STEP_COMMAND)
    assert argv.version_mismatch(container["args"]) is None
    inv = argv.parse_step_args(container["args"])  # what the step entry point does with its argv
    assert inv.executor_input is not None and json.loads(inv.executor_input) == executor_input
    assert inv.artifacts == {"model@json": "model_json"} and inv.params == {"epochs": 10}

    written = tmp_path / "data" / "model.json"
    JSONDataset(filepath=str(written)).save({"weights": [1, 2]})
    catalog = DataCatalog({"model@json": JSONDataset(filepath="data/model.json")})
    RecordArtifacts(inv.executor_input, inv.artifacts, tmp_path).after_pipeline_run(
        run_params={}, run_result=None, pipeline=None, catalog=catalog)  # fmt: skip
    output = Path(executor_input["outputs"]["outputFile"])
    assert json.loads(output.read_text()) == {"artifacts": {"model_json": {"artifacts": [
        {"name": "model_json", "uri": str(written.resolve()), "metadata": {"kedro_dataset": "model@json"}}]}}}


def test_the_placeholder_is_gcpcs_and_run_local_reads_it_back_as_the_executor_input() -> None:
    """Without the escaped form the payload would not be JSON once Vertex put the ExecutorInput in."""
    from google_cloud_pipeline_components.v1.custom_job import utils

    assert utils._replace_executor_placeholder(["{{$}}", "x{{$}}"]) == [customjob.EXECUTOR_INPUT_IN_PAYLOAD, "x{{$}}"]
    emitted = spec.spec_to_dict(spec.emit(_plan()))
    pools = emitted["components"]["comp-train"]["inputDefinitions"]["parameters"]["worker_pool_specs"]
    inner = customjob.inner_container("train", {}, {"worker_pool_specs": pools["defaultValue"]})
    assert inner["args"][inner["args"].index("--executor-input") + 1] == argv.EXECUTOR_INPUT_PLACEHOLDER


TEXT = 'say "hi" \\ C:\\new\\table\n\tsecond line, ünïcødé ✓ \U0001f680 \\"quoted\\" \\u0041'
TEXT_PARAMS = (
    PipelineParam("note", "note", ParamType.STRING, "default"),
    PipelineParam("epochs", "epochs", ParamType.NUMBER_INTEGER, 10),
    PipelineParam("rate", "rate", ParamType.NUMBER_DOUBLE, 0.25),
    PipelineParam("options", "options", ParamType.STRUCT, {"depth": 4, "label": "x"}),
)


def _text_plan(resources: dict[str, Resources]) -> Plan:
    """A step whose STRING parameter, node name and env hold quotes, backslashes and newlines."""
    return Plan(
        pipeline_name="p",
        kedro_pipeline="__default__",
        image="europe-docker.pkg.dev/proj/repo/app:1",
        env="base",
        steps=(Step("train", ('train "big" \\ model',), parameters=tuple(p.key for p in TEXT_PARAMS)),),
        resources=resources,
        params=TEXT_PARAMS,
        extra_env={"KEDRO_VERTEX_CI_MLFLOW_AUTH": '{"client_id": "a\\"b"}'},
        mlflow=True,
        run_times=True,
        experiment="nightly",
        experiment_description='static text: "quoted" \\ too',
    )


def test_a_string_parameter_with_quotes_reaches_the_customjob_step_exactly_and_typed(tmp_path: Path) -> None:
    """Vertex writes an input's value raw into the launcher's JSON payload: the step must not put one there."""
    run_values = {"note": TEXT, "epochs": 7.0, "rate": 3.0, "options": {"depth": 2.0, "label": TEXT},
                  "mlflow_run_id": "0123abcd"}  # typed as Vertex sends them: every number a double
    on_machine = _text_plan({"train": Resources(machine_type="n1-highmem-8", spot=True)})
    emitted = spec.spec_to_dict(spec.emit(on_machine))
    executor_input = {**_executor_input(tmp_path / "gcs"), "inputs": {"parameterValues": run_values}}
    job = _payload_as_launched(emitted, executor_input)  # json.loads of the payload, as the launcher does

    container = job["job_spec"]["worker_pool_specs"][0]["container_spec"]
    inv = argv.parse_step_args(container["args"])
    assert inv.params == {"note": TEXT, "epochs": 7, "rate": 3, "options": {"depth": 2, "label": TEXT}}
    assert type(inv.params["epochs"]) is int and inv.params["note"] == TEXT
    assert inv.mlflow_run_id == "0123abcd" and inv.nodes == ('train "big" \\ model',)
    assert inv.scheduled_time == "2026-11-30T06:00:00Z"
    assert (inv.experiment, inv.experiment_description) == ("nightly", 'static text: "quoted" \\ too')
    assert container["env"] == [{"name": "KEDRO_VERTEX_CI_MLFLOW_AUTH", "value": '{"client_id": "a\\"b"}'}]

    # a container step gets the same values from its raw placeholders: both kinds of step see one parameter alike
    as_container = spec.spec_to_dict(spec.emit(_text_plan({})))
    args = as_container["deploymentSpec"]["executors"]["exec-train"]["container"]["args"]
    rendered = {name: render_value(value) for name, value in run_values.items()}
    rendered.update({"{{$.pipeline_job_uuid}}": "123", "{{$.pipeline_job_name}}": "p-123",
                     "{{$.pipeline_root}}": "gs://bucket/root", "{{$.pipeline_job_schedule_time_utc}}": "",
                     "{{$.pipeline_job_create_time_utc}}": "", "{{$.pipeline_job_resource_name}}": "x"})
    container_inv = argv.parse_step_args([_vertex_renders(arg, rendered) for arg in args])
    assert container_inv.params == inv.params and container_inv.mlflow_run_id == inv.mlflow_run_id


def test_a_customjob_step_places_no_raw_input_value_in_the_payload() -> None:
    """Only placeholders whose values hold no quote, backslash or control character are left in the payload."""
    for resources in (Resources(machine_type="n1-standard-4"), Resources(machine_type="n1-standard-4", spot=True)):
        emitted = spec.spec_to_dict(spec.emit(_text_plan({"train": resources})))
        pools = emitted["components"]["comp-train"]["inputDefinitions"]["parameters"]["worker_pool_specs"]
        found = set(_PLACEHOLDER.findall(json.dumps(pools["defaultValue"])))
        assert found <= customjob.PAYLOAD_PLACEHOLDERS and customjob.EXECUTOR_INPUT_IN_PAYLOAD in found


def test_a_node_name_holding_a_placeholder_is_refused_on_a_machine() -> None:
    import dataclasses

    import pytest

    from kedro_vertex_ci.errors import ConfigError

    plan = _text_plan({"train": Resources(machine_type="n1-standard-4")})
    plan = dataclasses.replace(plan, steps=(dataclasses.replace(plan.steps[0], nodes=("x{{$.pipeline_task_name}}",)),))
    with pytest.raises(ConfigError, match=r"'train' runs as a CustomJob .* holds \['\{\{\$\.pipeline_task_name\}\}'\]"):
        spec.emit(plan)


def test_parameter_inputs_need_the_executor_input_that_carries_them() -> None:
    import pytest

    base = ["--run-id", "r", "--root", "/r", "--param-input", "note=note"]
    with pytest.raises(ValueError, match="need --executor-input"):
        argv.parse_step_args(base)
    with pytest.raises(ValueError, match="has no input parameter 'note'"):
        argv.parse_step_args([*base, "--executor-input", '{"inputs": {"parameterValues": {}}}'])
    with pytest.raises(ValueError, match="--executor-input: not valid JSON"):
        argv.parse_step_args([*base, "--executor-input", "{{$}}"])
    with pytest.raises(ValueError, match="inputs.parameterValues is not a JSON object"):
        argv.parse_step_args([*base, "--executor-input", '{"inputs": []}'])
