"""docs/placement.md is true: its snippets run on a real Kedro project and print what the page says, and
each rule it states about machine types, Spot VMs and accelerators holds when a real project is compiled."""

from __future__ import annotations

import itertools
import json
import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from kedro_vertex_ci import customjob
from kedro_vertex_ci.compiler import compile_pipeline
from kedro_vertex_ci.errors import ConfigError
from kedro_vertex_ci.testing.projectgen import make_project
from tests.conftest import CLI, REPO, VENV_BIN

DOC = REPO / "docs" / "placement.md"
NODES = ["preprocess", "train_model", "evaluate"]
_SERIAL = itertools.count()


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)


def _project(tmp_path: Path, vertexai: str, **kwargs: Any) -> Path:
    """The page's pipeline under a package name of its own: Kedro caches an imported pipeline registry by
    package name for the rest of the process, so a shared name would compile another test's pipeline."""
    name = f"placement_{next(_SERIAL)}"
    return make_project(tmp_path, name, "chain", 3, node_names=NODES, vertexai=vertexai, **kwargs)


@pytest.fixture
def doc_project(tmp_path: Path) -> Path:
    """The page's pipeline (preprocess → train_model → evaluate) with the page's vertexai.yml."""
    return _project(tmp_path, _blocks("yaml")[0], catalog=["ds_1", "ds_2"])


def _run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def test_the_pages_snippets_print_what_the_page_says(doc_project: Path) -> None:
    (command,) = [line for line in _blocks("bash")[0].splitlines() if line.strip()]
    argv = shlex.split(command)
    assert argv[0] == "kedro-vertex-ci"
    compiled = _run([CLI, *argv[1:]], doc_project)
    assert compiled.returncode == 0, compiled.stderr
    shown = _run([str(VENV_BIN / "python"), "-c", _blocks("python")[0]], doc_project)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout == _blocks("text")[0]


def test_run_local_runs_the_pages_customjob_steps(doc_project: Path, tmp_path: Path) -> None:
    """The Local dry run section: the CustomJob steps' own Kedro nodes run and save their outputs."""
    result = _run(
        [CLI, "run-local", "--root", str(tmp_path / "runs"), "--run-id", "doc-1", "--json"], doc_project
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert {s["name"]: s["state"] for s in json.loads(result.stdout)["steps"]} == {
        "preprocess": "done",
        "train-model": "done",
        "evaluate": "done",
    }
    assert (doc_project / "data" / "ds_1.json").read_text() == "2"  # train_model's output (chain arithmetic)
    assert (doc_project / "data" / "ds_2.json").read_text() == "4"  # evaluate's, read from train_model's


def _vertexai(resources: dict[str, Any], **run_config: Any) -> str:
    config = {
        "project_id": "my-project",
        "region": "europe-west1",
        "run_config": {
            "image": "img:1",
            "grouping": {"cls": "identity"},
            "resources": resources,
            **run_config,
        },
    }
    return yaml.safe_dump(config, sort_keys=False)


def _compiled(tmp_path: Path, resources: dict[str, Any], **run_config: Any) -> dict[str, Any]:
    return compile_pipeline(_project(tmp_path, _vertexai(resources, **run_config))).spec


def _inputs(spec: dict[str, Any], task: str) -> dict[str, Any]:
    return spec["components"]["comp-" + task].get("inputDefinitions", {}).get("parameters", {})


def _defaults(spec: dict[str, Any], task: str) -> dict[str, Any]:
    return {k: v.get("defaultValue") for k, v in _inputs(spec, task).items()}


def test_machine_type_makes_a_customjob_and_cpu_memory_do_not_apply_there(tmp_path: Path) -> None:
    spec = _compiled(
        tmp_path,
        {"__default__": {"cpu": 2, "memory": "8Gi"}, "train_model": {"machine_type": "n2-highmem-16"}},
    )
    executors = spec["deploymentSpec"]["executors"]
    assert executors["exec-train-model"]["container"]["image"] == customjob.LAUNCHER_IMAGE
    assert "resources" not in executors["exec-train-model"]["container"]
    pool = _defaults(spec, "train-model")["worker_pool_specs"][0]
    assert pool["machine_spec"] == {"machine_type": "n2-highmem-16"}
    assert pool["container_spec"]["image_uri"] == "img:1"
    assert pool["container_spec"]["args"][pool["container_spec"]["args"].index("--node") + 1] == "train_model"
    assert _defaults(spec, "train-model")["strategy"] == "STANDARD"
    assert executors["exec-preprocess"]["container"]["resources"]["resourceCpuLimit"] == "2"  # unchanged


def test_accelerators_attach_to_the_machine_with_a_default_count_of_one(tmp_path: Path) -> None:
    spec = _compiled(
        tmp_path,
        {
            "train_model": {"machine_type": "g2-standard-8"},
            "evaluate": {"machine_type": "n1-standard-8", "gpu": 2},
        },
        node_selectors={
            "train_model": {"cloud.google.com/gke-accelerator": "NVIDIA_L4"},
            "evaluate": {"cloud.google.com/gke-accelerator": "NVIDIA_TESLA_T4"},
        },
    )
    train = _defaults(spec, "train-model")["worker_pool_specs"][0]["machine_spec"]
    assert train == {"machine_type": "g2-standard-8", "accelerator_type": "NVIDIA_L4", "accelerator_count": 1}
    evaluate = _defaults(spec, "evaluate")["worker_pool_specs"][0]["machine_spec"]
    assert evaluate["accelerator_type"] == "NVIDIA_TESLA_T4" and evaluate["accelerator_count"] == 2


def test_spot_with_a_machine_and_the_pipelines_service_account_and_vpc(tmp_path: Path) -> None:
    spec = _compiled(
        tmp_path,
        {"__default__": {"machine_type": "n1-standard-4", "spot": True, "boot_disk_size_gb": 150}},
        service_account="runner@my-project.iam.gserviceaccount.com",
        network={"vpc": "projects/123456789012/global/networks/my-vpc"},
    )
    for task in ("preprocess", "train-model", "evaluate"):
        defaults = _defaults(spec, task)
        assert defaults["strategy"] == "SPOT"
        assert defaults["service_account"] == "runner@my-project.iam.gserviceaccount.com"
        assert defaults["network"] == "projects/123456789012/global/networks/my-vpc"
        assert defaults["worker_pool_specs"][0]["disk_spec"] == {
            "boot_disk_type": "pd-ssd",
            "boot_disk_size_gb": 150,
        }
        assert defaults["project"] == "{{$.pipeline_google_cloud_project_id}}"


def test_a_more_specific_key_can_turn_spot_off(tmp_path: Path) -> None:
    spec = _compiled(
        tmp_path,
        {"__default__": {"machine_type": "n1-standard-4", "spot": True}, "evaluate": {"spot": False}},
    )
    assert _defaults(spec, "train-model")["strategy"] == "SPOT"
    assert _defaults(spec, "evaluate")["strategy"] == "STANDARD"


def test_spot_without_a_machine_type_is_a_config_error_naming_file_and_line(tmp_path: Path) -> None:
    project = _project(tmp_path, _vertexai({"__default__": {"cpu": 1}, "train_model": {"spot": True}}))
    with pytest.raises(ConfigError) as info:
        compile_pipeline(project)
    message = str(info.value)
    assert "vertexai.yml:" in message and "run_config.resources.train_model.spot" in message
    assert "step 'train-model' asks for spot but no machine_type" in message
    assert info.value.exit_code == 2


def test_an_unknown_machine_type_is_a_config_error(tmp_path: Path) -> None:
    project = _project(tmp_path, _vertexai({"train_model": {"machine_type": "n1-standart-8"}}))
    with pytest.raises(ConfigError, match="unknown machine type 'n1-standart-8'"):
        compile_pipeline(project)


def test_the_on_exit_step_stays_a_container_sized_like_its_machine(tmp_path: Path) -> None:
    project = _project(
        tmp_path,
        _vertexai({"__default__": {"machine_type": "n1-highmem-4"}}, on_exit_pipeline="notify"),
        pipelines={"notify": ["evaluate"]},
    )
    spec = compile_pipeline(project).spec
    exit_task = next(name for name in spec["root"]["dag"]["tasks"] if name.startswith("on-exit"))
    container = spec["deploymentSpec"]["executors"]["exec-" + exit_task]["container"]
    assert container["command"] == ["kedro-vertex-ci", "step"]
    assert (container["resources"]["resourceCpuLimit"], container["resources"]["resourceMemoryLimit"]) == (
        "4",
        "26G",
    )
    inner = spec["components"]["comp-exit-handler-1"]["dag"]["tasks"]
    assert all(
        spec["deploymentSpec"]["executors"]["exec-" + t]["container"]["image"] == customjob.LAUNCHER_IMAGE
        for t in inner
    )
