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
    """The CustomJob GCPC's launcher creates for the ``train`` task of ``emitted``."""
    from google_cloud_pipeline_components.container.v1.custom_job import remote_runner

    component = emitted["components"]["comp-train"]["inputDefinitions"]["parameters"]
    launcher_inputs = {name: render_value(p.get("defaultValue"), p["parameterType"])
                       for name, p in component.items() if name != "epochs"}  # fmt: skip
    args = emitted["deploymentSpec"]["executors"]["exec-train"]["container"]["args"]
    template = args[args.index("--payload") + 1]
    payload = _vertex_renders(template, launcher_inputs)
    payload = _vertex_renders(payload, {
        "epochs": "10",
        "{{$.json_escape[1]}}": json.dumps(json.dumps(executor_input))[1:-1],  # the JSON, escaped once
        "{{$.pipeline_job_uuid}}": "123", "{{$.pipeline_job_name}}": "p-123", "{{$.pipeline_root}}": "gs://bucket/root",
        "{{$.pipeline_google_cloud_project_id}}": "proj", "{{$.pipeline_google_cloud_location}}": "europe-west1",
        "{{$.pipeline_persistent_resource_id}}": "",
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
