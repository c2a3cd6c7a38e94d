"""Compile real Kedro projects on disk: the spec, its determinism, settings, params, and CLI behaviour."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from kedro_vertex_ci.compiler import compile_pipeline
from kedro_vertex_ci.errors import ConfigError, GroupingError
from kedro_vertex_ci.spec import parse_spec
from kedro_vertex_ci.testing.projectgen import make_project
from tests.conftest import CLI, KEDRO, minimal_vertexai

VERTEXAI = """\
project_id: my-project
region: europe-west1
run_config:
  image: eu.gcr.io/my-project/img:1
  root: my-bucket/runs
  experiment_name: My Experiment
  grouping:
    cls: identity
  resources:
    __default__:
      cpu: 1
      memory: 2Gi
    node_1:
      cpu: 4
    heavy:
      memory: 16Gi
    train_model:
      gpu: 2
  node_selectors:
    train_model:
      cloud.google.com/gke-accelerator: NVIDIA_TESLA_T4
"""


def _run(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, env={**os.environ, **env}, timeout=120)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    names = ["node_0", "node_1", "node_2", "train_model"]
    return make_project(
        tmp_path,
        "compiledemo",
        "chain",
        4,
        node_names=names,
        tags={"node_2": ["heavy"]},
        params={"model": {"alpha": 0.5, "layers": [1, 2]}, "flag": True, "label": "x"},
        vertexai=VERTEXAI,
    )


def _executor(spec: dict, task: str) -> dict:
    label = spec["components"][f"comp-{task}"]["executorLabel"]
    return spec["deploymentSpec"]["executors"][label]["container"]


def test_compile_emits_one_task_per_node_with_settings_matched_on_names_as_written(project: Path) -> None:
    compiled = compile_pipeline(project)
    spec = compiled.spec
    parse_spec(compiled.spec_bytes)  # strict
    tasks = spec["root"]["dag"]["tasks"]
    assert sorted(tasks) == ["node-0", "node-1", "node-2", "train-model"]
    assert tasks["node-1"]["dependentTasks"] == ["node-0"]
    assert spec["pipelineInfo"]["name"] == "my-experiment-pipeline"
    # __default__ < tag < node name, names exactly as written (underscores included).
    assert _executor(spec, "node-0")["resources"]["resourceCpuLimit"] == "1"
    assert _executor(spec, "node-1")["resources"]["resourceCpuLimit"] == "4"
    assert _executor(spec, "node-2")["resources"]["resourceMemoryLimit"] == "16Gi"
    train = _executor(spec, "train-model")["resources"]
    assert train["accelerator"]["resourceType"] == "NVIDIA_TESLA_T4"
    assert train["accelerator"]["resourceCount"] == "2"
    # The step command runs exactly its node, with Vertex placeholders for run id and root.
    container = _executor(spec, "node-1")
    assert container["command"] == ["kedro-vertex-ci", "step"]
    args = container["args"]
    assert args[args.index("--node") + 1] == "node_1"
    assert args[args.index("--run-id") + 1] == "{{$.pipeline_job_uuid}}"
    assert args[args.index("--root") + 1] == "{{$.pipeline_root}}"
    assert args[args.index("--read") + 1] == "ds_0"
    assert args[args.index("--write") + 1] == "ds_1"
    assert container["image"] == "eu.gcr.io/my-project/img:1"


def test_compile_is_byte_identical_across_runs_and_hash_seeds(project: Path, tmp_path: Path) -> None:
    outputs = []
    for seed in ("1", "2"):
        out = tmp_path / f"spec-{seed}.json"
        result = _run([CLI, "compile", "-o", str(out)], project, PYTHONHASHSEED=seed)
        assert result.returncode == 0, result.stderr
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]
    assert outputs[0] == compile_pipeline(project).spec_bytes


def test_runtime_parameters_are_typed_pipeline_inputs_and_overridable(project: Path) -> None:
    pipeline = make_project(
        project.parent,
        "paramdemo",
        "chain",
        2,
        params={"model": {"alpha": 0.5}, "flag": True, "label": "x", "ratio": 0.1, "n": 3, "items": [1]},
        vertexai=minimal_vertexai(),
    )
    # Make node_1 read every parameter.
    module = next(pipeline.glob("src/*/pipeline.py"))
    text = module.read_text().replace('["ds_0", "params:increment"]', '["ds_0", "parameters"]')
    assert '"parameters"' in text
    module.write_text(text)
    compiled = compile_pipeline(pipeline, params={"model.alpha": "0.9", "n": "7", "label": "true"})
    inputs = compiled.spec["root"]["inputDefinitions"]["parameters"]
    assert inputs["model"] == {"parameterType": "STRUCT", "defaultValue": {"alpha": 0.9}, "isOptional": True}
    assert inputs["n"]["parameterType"] == "NUMBER_INTEGER" and inputs["n"]["defaultValue"] == 7.0
    assert inputs["flag"]["parameterType"] == "BOOLEAN"
    assert inputs["label"] == {"parameterType": "STRING", "defaultValue": "true", "isOptional": True}
    assert inputs["ratio"]["parameterType"] == "NUMBER_DOUBLE"
    assert inputs["items"]["parameterType"] == "LIST"


def test_bad_param_override_is_a_config_error(project: Path) -> None:
    with pytest.raises(ConfigError, match="--param: n: no such parameter in the project"):
        compile_pipeline(project, params={"n": "1"})
    with pytest.raises(ConfigError, match="expected boolean like the project's value"):
        compile_pipeline(project, params={"flag": "maybe"})


def test_environment_overrides_base_through_kedros_loader(project: Path) -> None:
    (project / "conf" / "staging").mkdir()
    (project / "conf" / "staging" / "vertexai.yml").write_text("run_config:\n  image: eu.gcr.io/my-project/img:staging\n")
    assert compile_pipeline(project, env="staging").plan.image == "eu.gcr.io/my-project/img:staging"
    assert compile_pipeline(project).plan.image == "eu.gcr.io/my-project/img:1"
    args = _executor(compile_pipeline(project, env="staging").spec, "node-0")["args"]
    assert args[args.index("--env") + 1] == "staging"


def test_image_option_pins_a_digest(project: Path) -> None:
    digest = "eu.gcr.io/my-project/img@sha256:" + "a" * 64
    compiled = compile_pipeline(project, image=digest)
    assert _executor(compiled.spec, "node-0")["image"] == digest


def test_auto_grouping_fuses_a_chain_into_one_step(tmp_path: Path) -> None:
    project = make_project(tmp_path, "autodemo", "chain", 30, vertexai=minimal_vertexai(grouping="{cls: auto}"))
    compiled = compile_pipeline(project)
    assert compiled.step_count == 1
    args = _executor(compiled.spec, compiled.plan.steps[0].name)["args"]
    assert args.count("--node") == 30


def test_tag_grouping_cycle_names_the_nodes(tmp_path: Path) -> None:
    # a -> b -> c with a and c in one group and b outside: the group would depend on itself through b.
    project = make_project(
        tmp_path,
        "cycledemo",
        "chain",
        3,
        tags={"node_0": ["group.g"], "node_2": ["group.g"]},
        vertexai=minimal_vertexai(grouping="{cls: tag}"),
    )
    with pytest.raises(GroupingError) as info:
        compile_pipeline(project)
    assert "node_0" in str(info.value) and "node_1" in str(info.value)


def test_yaml_output_by_extension(project: Path, tmp_path: Path) -> None:
    out = tmp_path / "spec.yaml"
    result = _run([CLI, "compile", "-o", str(out)], project)
    assert result.returncode == 0, result.stderr
    assert yaml.safe_load(out.read_text()) == compile_pipeline(project).spec


BAD_CLI_INPUTS = {
    "missing pipeline": (["-p", "trainnig"], "Error: --pipeline: trainnig: no such pipeline; available: __default__"),
    "missing image": (None, "run_config.image: required key is missing"),
    "no vertexai.yml": ("delete", "no vertexai.yml found; create one with `kedro-vertex-ci init PROJECT_ID REGION`"),
    "bad param": (["--param", "nope=1"], "Error: --param: nope: no such parameter in the project"),
}


@pytest.mark.parametrize("case", sorted(BAD_CLI_INPUTS))
def test_bad_input_exits_2_with_one_clear_line_and_no_traceback(project: Path, case: str) -> None:
    extra, expected = BAD_CLI_INPUTS[case]
    config = project / "conf" / "base" / "vertexai.yml"
    if extra is None:
        config.write_text("project_id: p\nregion: r\nrun_config:\n  root: b/x\n")
        extra = []
    elif extra == "delete":
        config.unlink()
        extra = []
    result = _run([CLI, "compile", "-o", "out.json", *extra], project)
    assert result.returncode == 2
    assert expected in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert not (project / "out.json").exists()


def test_not_a_kedro_project(tmp_path: Path) -> None:
    result = _run([CLI, "--project", str(tmp_path), "compile"], tmp_path)
    assert result.returncode == 2
    assert "is not a Kedro project (no pyproject.toml with [tool.kedro])" in result.stderr


def test_help_imports_no_heavy_library() -> None:
    code = (
        "import sys; from kedro_vertex_ci.cli import cli; "
        "from click.testing import CliRunner; r = CliRunner().invoke(cli, ['--help']); assert r.exit_code == 0, r.output; "
        "heavy = [m for m in ('google.cloud.aiplatform', 'google.cloud.storage', 'google.cloud.devtools', "
        "'google.auth', 'kfp', 'kedro.framework.project', 'mlflow', 'pandas') if m in sys.modules]; print(heavy)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_kedro_project_command_is_registered(project: Path, tmp_path: Path) -> None:
    out = tmp_path / "via-kedro.json"
    result = _run([KEDRO, "vertex-ci", "compile", "-o", str(out)], project)
    assert result.returncode == 0, result.stderr
    assert json.loads(out.read_text())["pipelineInfo"]["name"] == "my-experiment-pipeline"
    bad = _run([KEDRO, "vertex-ci", "compile", "-p", "nope"], project)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


def test_init_writes_a_valid_template_and_refuses_to_overwrite(kedro_new_project: Path) -> None:
    result = _run([CLI, "init", "my-project", "europe-west1"], kedro_new_project)
    assert result.returncode == 0, result.stderr
    written = kedro_new_project / "conf" / "base" / "vertexai.yml"
    assert "project_id: my-project" in written.read_text()
    again = _run([CLI, "init", "other-project", "us-central1"], kedro_new_project)
    assert again.returncode == 2 and "already exists; pass --force to overwrite it" in again.stderr
    assert "project_id: my-project" in written.read_text()
    forced = _run([CLI, "init", "other-project", "us-central1", "--force"], kedro_new_project)
    assert forced.returncode == 0 and "project_id: other-project" in written.read_text()
    # The real `kedro new` project compiles with the written config (its pipeline is empty).
    (kedro_new_project / "src" / "demo" / "pipeline_registry.py").write_text(
        "from kedro.pipeline import Pipeline, node\n\n"
        "def register_pipelines():\n"
        "    return {'__default__': Pipeline([node(lambda x: x, 'params:x', 'y', name='only')])}\n"
    )
    (kedro_new_project / "conf" / "base" / "parameters.yml").write_text("x: 1\n")
    compiled = _run([CLI, "compile", "-o", "spec.json"], kedro_new_project)
    assert compiled.returncode == 0, compiled.stderr


def test_grouping_errors_point_at_the_config_file_and_line(tmp_path: Path) -> None:
    project = make_project(tmp_path, "badgroup", "chain", 2, vertexai=minimal_vertexai(grouping="{cls: magic}"))
    with pytest.raises(ConfigError) as info:
        compile_pipeline(project)
    config = project / "conf" / "base" / "vertexai.yml"
    assert str(info.value).startswith(f"{config}:5: run_config.grouping.cls:")


def test_compiling_in_process_leaves_the_environment_of_child_processes_alone(project: Path) -> None:
    code = (
        "import os, sys; from pathlib import Path; from kedro_vertex_ci.compiler import compile_pipeline; "
        "compile_pipeline(Path(sys.argv[1])); print(os.environ.get('KEDRO_LOGGING_CONFIG'))"
    )
    env = {k: v for k, v in os.environ.items() if k != "KEDRO_LOGGING_CONFIG"}
    result = subprocess.run([sys.executable, "-c", code, str(project)], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "None"  # run-local's steps must log with the project's own config
    assert "INFO" not in result.stderr  # while the compile itself stays quiet


def test_grouping_cycle_through_the_cli_exits_2_with_the_exact_message(tmp_path: Path) -> None:
    project = make_project(
        tmp_path,
        "cyclecli",
        "chain",
        3,
        tags={"node_0": ["group.g"], "node_2": ["group.g"]},
        vertexai=minimal_vertexai(grouping="{cls: tag}"),
    )
    result = _run([CLI, "compile", "-o", "x.json"], project)
    config = project / "conf" / "base" / "vertexai.yml"
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"Error: {config}:5: run_config.grouping.cls: groups form a cycle: node 'node_1' -> group 'g' -> "
        "node 'node_1' (node 'node_1' writes 'ds_1' read by node 'node_2'; node 'node_0' writes 'ds_0' read by "
        "node 'node_1'); nodes on the cycle: node_0, node_1, node_2. Put them in one group, or split the group "
        "so no data leaves it and comes back"
    )
    assert not (project / "x.json").exists()


def test_an_empty_pipeline_says_what_to_do(kedro_new_project: Path) -> None:
    """A fresh `kedro new` project has no nodes yet: the message names the pipeline and the fix, exit 2."""
    from tests.conftest import minimal_vertexai

    (kedro_new_project / "conf" / "base" / "vertexai.yml").write_text(minimal_vertexai())
    with pytest.raises(ConfigError, match="__default__: this Kedro pipeline has no nodes.*pipeline_registry.py"):
        compile_pipeline(kedro_new_project, None, "__default__")
