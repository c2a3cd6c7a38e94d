"""Steps on a named machine equal what GCPC's CustomJob wrapper + ``kfp.compiler`` emit, field by field.

The yardstick wraps each such step's container component with google-cloud-pipeline-components'
``create_custom_training_job_from_component`` (machine type, accelerator, spot, boot disk, service account,
network, env) and compiles the pipeline with kfp; ``spec.emit`` writes the same launcher task with protos
alone. Nothing is ignored, including GCPC's launcher image tag (``customjob.GCPC_VERSION``).
"""

from __future__ import annotations

import dataclasses
import json
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from kedro_vertex_ci import customjob, spec
from kedro_vertex_ci.errors import ConfigError
from kedro_vertex_ci.model import ParamType, PipelineParam, Plan, Resources, Step
from tests.kfp_reference import compile_with_kfp
from tests.test_spec_parity import ALL_TYPES, FAN, IMAGE, _differences, _plan

SA = "runner@proj.iam.gserviceaccount.com"
VPC = "projects/123456789/global/networks/peered"

CASES: dict[str, Plan] = {
    "own-image": _plan(
        (Step("train", ("train_model",)),),
        resources={"train": Resources(machine_type="n1-standard-8", image="europe-docker.pkg.dev/p/r/gpu:2")},
    ),
    "experiment-on-a-machine": _plan(  # the job's resource name placeholder inside GCPC's worker-pool payload
        (Step("train", ("train_model",)),),
        resources={"train": Resources(machine_type="n1-standard-8")},
        experiment="Nightly Forecasts",
    ),
    "machine-type-only": _plan(
        (Step("train", ("train_model",)),), resources={"train": Resources(machine_type="n1-highmem-16")}
    ),
    "spot": _plan(
        (Step("train", ("train_model",)),),
        resources={"train": Resources(machine_type="n1-standard-4", spot=True)},
    ),
    "accelerator-on-machine": _plan(
        (Step("train", ("train_model",)),),
        resources={
            "train": Resources(
                machine_type="a2-highgpu-2g",
                accelerator_type="NVIDIA_TESLA_A100",
                accelerator_count=2,
                spot=True,
                boot_disk_size_gb=500,
            )
        },
    ),
    "accelerator-default-count": _plan(
        (Step("train", ("train_model",)),),
        resources={"train": Resources(machine_type="g2-standard-8", accelerator_type="NVIDIA_L4")},
    ),
    "params-passed-through": _plan(
        (
            Step("uses-all", ("n1",), parameters=tuple(p.key for p in ALL_TYPES)),
            Step("uses-some", ("n2",), depends_on=("uses-all",), parameters=("epochs", "features")),
        ),
        params=ALL_TYPES,
        resources={
            "uses-all": Resources(machine_type="n2-standard-8", spot=True, timeout_seconds=900),
            "uses-some": Resources(cpu="2", memory="8G"),
        },
    ),
    "dependencies-mixed-with-container-steps": _plan(
        FAN,
        resources={
            "split": Resources(cpu="1", memory="4Gi"),
            "train-a": Resources(machine_type="c2-standard-30", retries=2, retry_backoff="1m", caching=False),
            "train-b": Resources(machine_type="n1-standard-8", accelerator_type="NVIDIA_TESLA_T4", spot=True),
        },
        extra_env={"KEDRO_LOGGING_CONFIG": "conf/logging.yml", "A": "x y"},
    ),
    "service-account-and-network": _plan(
        (Step("train", ("train_model",)),),
        resources={"train": Resources(machine_type="n1-standard-8", service_account=SA, network=VPC)},
        caching=False,
    ),
    "artifacts-on-machines": _plan(
        FAN,
        artifacts={"split": ("test", "train"), "train-a": ("model_a",), "train-b": ("model_b@pickle",),
                   "evaluate": ("report@pandas", "metrics")},
        params=ALL_TYPES[1:2],
        resources={
            "train-a": Resources(machine_type="n1-standard-8", spot=True),
            "train-b": Resources(machine_type="g2-standard-8", accelerator_type="NVIDIA_L4"),
            "evaluate": Resources(machine_type="n2-highmem-4"),
        },
        extra_env={"A": "x"},
    ),
    "cpu-memory-ignored-on-a-machine": _plan(
        (Step("train", ("train_model",)),),
        resources={"train": Resources(cpu="64", memory="512Gi", machine_type="n1-standard-4")},
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_customjob_step_equals_gcpc_wrapped_kfp_output(case: str, tmp_path: Path) -> None:
    plan = CASES[case]
    ours = json.loads(spec.to_json_bytes(spec.emit(plan)))
    theirs = compile_with_kfp(plan, tmp_path)
    assert _differences(ours, theirs) == []
    assert ours == theirs
    assert spec.to_json_bytes(spec.parse_spec(spec.to_json_bytes(ours))) == spec.to_json_bytes(ours)


def _emitted(plan: Plan) -> dict[str, Any]:
    return json.loads(spec.to_json_bytes(spec.emit(plan)))


def _pool(emitted: dict[str, Any], step: str) -> dict[str, Any]:
    pools = emitted["components"]["comp-" + step]["inputDefinitions"]["parameters"]["worker_pool_specs"]
    return pools["defaultValue"][0]  # type: ignore[no-any-return]


def test_cases_exercise_what_their_names_say() -> None:
    """Guards the table, so a case cannot quietly stop testing its feature."""
    spot = _emitted(CASES["spot"])["components"]["comp-train"]["inputDefinitions"]["parameters"]
    assert spot["strategy"]["defaultValue"] == "SPOT"
    gpu = _pool(_emitted(CASES["accelerator-on-machine"]), "train")
    assert gpu["machine_spec"] == {
        "machine_type": "a2-highgpu-2g",
        "accelerator_type": "NVIDIA_TESLA_A100",
        "accelerator_count": 2.0,
    }
    assert gpu["disk_spec"]["boot_disk_size_gb"] == 500.0
    assert (
        _pool(_emitted(CASES["accelerator-default-count"]), "train")["machine_spec"]["accelerator_count"] == 1
    )
    experiment = _pool(_emitted(CASES["experiment-on-a-machine"]), "train")["container_spec"]["args"]
    assert experiment[experiment.index("--pipeline-job") + 1] == "{{$.pipeline_job_resource_name}}"
    params = _emitted(CASES["params-passed-through"])
    args = _pool(params, "uses-all")["container_spec"]["args"]
    assert "epochs={{$.inputs.parameters['epochs']}}" in args and "--timeout" in args
    assert params["root"]["dag"]["tasks"]["uses-all"]["inputs"]["parameters"]["epochs"] == {
        "componentInputParameter": "epochs"
    }
    assert "resources" in params["deploymentSpec"]["executors"]["exec-uses-some"]["container"]
    mixed = _emitted(CASES["dependencies-mixed-with-container-steps"])
    executors = mixed["deploymentSpec"]["executors"]
    assert executors["exec-split"]["container"]["image"] == IMAGE
    assert executors["exec-train-a"]["container"]["image"] == customjob.LAUNCHER_IMAGE
    assert executors["exec-split"]["container"]["command"] == ["kedro-vertex-ci", "step"]
    assert mixed["root"]["dag"]["tasks"]["evaluate"]["dependentTasks"] == ["split", "train-a", "train-b"]
    assert mixed["root"]["dag"]["tasks"]["train-a"]["retryPolicy"]["maxRetryCount"] == 2
    assert _pool(mixed, "train-a")["container_spec"]["env"] == [
        {"name": "A", "value": "x y"},
        {"name": "KEDRO_LOGGING_CONFIG", "value": "conf/logging.yml"},
    ]
    assert "env" not in executors["exec-train-a"]["container"]
    sa = _emitted(CASES["service-account-and-network"])["components"]["comp-train"]["inputDefinitions"]
    assert sa["parameters"]["service_account"]["defaultValue"] == SA
    assert sa["parameters"]["network"]["defaultValue"] == VPC
    artifacts = _emitted(CASES["artifacts-on-machines"])
    train_b = artifacts["components"]["comp-train-b"]
    assert set(train_b["outputDefinitions"]["artifacts"]) == {"model_b_pickle"}
    assert "gcp_resources" in train_b["outputDefinitions"]["parameters"]
    inner = _pool(artifacts, "train-b")["container_spec"]["args"]
    assert inner[inner.index("--executor-input") + 1] == customjob.EXECUTOR_INPUT_IN_PAYLOAD
    split = artifacts["deploymentSpec"]["executors"]["exec-split"]["container"]["args"]
    assert split[split.index("--executor-input") + 1] == "{{$}}"  # a container step keeps the plain one
    ignored = _emitted(CASES["cpu-memory-ignored-on-a-machine"])["deploymentSpec"]["executors"]["exec-train"]
    assert "resources" not in ignored["container"]


def test_project_and_location_are_the_pipeline_jobs_own() -> None:
    """GCPC leaves them to Vertex's run-time placeholders: the CustomJob runs where the pipeline runs."""
    inputs = _emitted(CASES["spot"])["components"]["comp-train"]["inputDefinitions"]["parameters"]
    assert inputs["project"]["defaultValue"] == "{{$.pipeline_google_cloud_project_id}}"
    assert inputs["location"]["defaultValue"] == "{{$.pipeline_google_cloud_location}}"


def test_launcher_image_matches_the_installed_gcpc() -> None:
    """The dev extra pins GCPC; bumping it without updating ``GCPC_VERSION`` fails here, not on Vertex."""
    assert metadata.version("google-cloud-pipeline-components") == customjob.GCPC_VERSION


def test_on_exit_step_stays_a_container_step_sized_like_its_machine(tmp_path: Path) -> None:
    """Its final-status input is a JSON object; it runs as a container task with the machine's size as limits."""
    base = _plan(
        FAN,
        on_exit=Step("notify", ("send_notification",), parameters=("model_name",)),
        params=ALL_TYPES[:1],
        resources={"train-a": Resources(machine_type="n1-highmem-4", spot=True)},
    )
    with_machine = dataclasses.replace(
        base, resources={**base.resources, "notify": Resources(machine_type="n1-standard-8", spot=True)}
    )
    by_hand = dataclasses.replace(
        base, resources={**base.resources, "notify": Resources(cpu="8", memory="30G")}
    )
    ours = _emitted(with_machine)
    theirs = compile_with_kfp(by_hand, tmp_path)
    assert _differences(ours, theirs) == []
    assert (
        ours["deploymentSpec"]["executors"]["exec-train-a"]["container"]["image"] == customjob.LAUNCHER_IMAGE
    )


def test_a_parameter_named_like_a_launcher_input_is_refused() -> None:
    plan = _plan(
        (Step("train", ("train_model",), parameters=("timeout",)),),
        params=(PipelineParam("timeout", "timeout", ParamType.NUMBER_INTEGER, 5),),
        resources={"train": Resources(machine_type="n1-standard-4")},
    )
    with pytest.raises(ConfigError, match=r"uses parameter\(s\) \['timeout'\], names the CustomJob launcher"):
        spec.emit(plan)
    container_plan = dataclasses.replace(plan, resources={})
    assert "comp-train" in _emitted(container_plan)["components"]
