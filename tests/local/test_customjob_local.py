"""run-local runs a CustomJob step's own container (from its worker pool spec), not GCPC's launcher.

On Vertex the launcher task starts a CustomJob whose worker runs the step; there is no CustomJob service on
this machine, so the dry run takes the step container out of ``worker_pool_specs`` and runs it like any
container step: same placeholders, same parameter inputs, the worker pool's env, the machine's size as limits.
"""

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from kedro_vertex_ci import customjob, spec
from kedro_vertex_ci.cli import cli
from kedro_vertex_ci.errors import ConfigError
from kedro_vertex_ci.local.specgraph import build_graph
from kedro_vertex_ci.model import ParamType, PipelineParam, Plan, Resources, Step
from tests.local.specs import RECORD


@pytest.fixture(autouse=True)
def _quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEDRO_DISABLE_TELEMETRY", "true")
    monkeypatch.setenv("DO_NOT_TRACK", "1")


def _gcpc_spec(tmp_path: Path) -> dict[str, Any]:
    """A container step wrapped by GCPC itself (spot, GPU machine), after a plain container step."""
    from google_cloud_pipeline_components.v1.custom_job import create_custom_training_job_from_component
    from kfp import compiler, dsl

    @dsl.container_component
    def record(name: str, epochs: int, options: dict):
        return dsl.ContainerSpec(
            image="python:3.11",
            command=["python", "-c", RECORD],
            args=[
                dsl.PIPELINE_ROOT_PLACEHOLDER,
                dsl.PIPELINE_JOB_ID_PLACEHOLDER,
                name,
                "--job-name",
                dsl.PIPELINE_JOB_NAME_PLACEHOLDER,
                "--epochs",
                epochs,
                "--options",
                options,
            ],
        )

    on_machine = create_custom_training_job_from_component(
        record,
        machine_type="n1-highmem-2",
        accelerator_type="NVIDIA_TESLA_T4",
        strategy="SPOT",
        env=[{"name": "STEP_ENV", "value": "from-worker-pool"}],
    )

    @dsl.pipeline(name="customjob-local")
    def pipe(epochs: int = 3, options: dict = {"depth": 4}):  # noqa: B006 - kfp reads the default
        first = record(name="first", epochs=epochs, options=options).set_caching_options(False)
        on_machine(name="second", epochs=epochs, options=options).after(first)

    path = tmp_path / "gcpc.json"
    compiler.Compiler().compile(pipe, str(path))
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def test_run_local_runs_the_step_inside_a_gcpc_customjob(tmp_path: Path) -> None:
    compiled = _gcpc_spec(tmp_path)
    launcher = compiled["deploymentSpec"]["executors"]["exec-record-2"]["container"]
    assert launcher["image"].startswith(
        "gcr.io/ml-pipeline/google-cloud-pipeline-components:"
    )  # really GCPC's
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps(compiled))
    result = CliRunner().invoke(
        cli,
        ["--project", str(tmp_path), "run-local", "--spec", str(spec_path), "--root", str(tmp_path / "runs"),
         "--run-id", "cj-1", "--param", "epochs=7", "--json"],
        catch_exceptions=False,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert [s["state"] for s in json.loads(result.output)["steps"]] == ["done", "done"]
    root = (tmp_path / "runs").resolve()
    second = json.loads((root / "cj-1" / "out" / "second.json").read_text())
    argv = dict(zip(second["argv"][::2], second["argv"][1::2], strict=True))
    assert argv["--epochs"] == "7"  # the task's parameter input, overridden on the command line
    assert json.loads(argv["--options"]) == {"depth": 4}
    assert argv["--job-name"] == json.loads((root / "cj-1" / "run.json").read_text())["job_name"]
    assert second["env"] == "from-worker-pool"  # the worker pool's env reached the step
    first = json.loads((root / "cj-1" / "out" / "first.json").read_text())
    assert first["env"] is None


def _plan() -> Plan:
    return Plan(
        pipeline_name="p",
        kedro_pipeline="__default__",
        image="europe-docker.pkg.dev/proj/repo/app:1",
        env="base",
        steps=(
            Step("prep", ("prep",)),
            Step("train", ("train",), depends_on=("prep",), parameters=("epochs",)),
        ),
        resources={
            "prep": Resources(cpu="1", memory="2G"),
            "train": Resources(machine_type="n1-highmem-8", spot=True, cpu="1"),
        },
        params=(PipelineParam("epochs", "epochs", ParamType.NUMBER_INTEGER, 10),),
        extra_env={"KEDRO_LOGGING_CONFIG": "conf/logging.yml"},
    )


def test_our_customjob_step_reads_back_as_the_step_command_on_the_machines_size() -> None:
    emitted = spec.spec_to_dict(spec.emit(_plan()))
    graph = build_graph(emitted)
    train, prep = graph.task("train"), graph.task("prep")
    assert (
        emitted["deploymentSpec"]["executors"]["exec-train"]["container"]["image"] == customjob.LAUNCHER_IMAGE
    )
    assert train.container.image == prep.container.image == "europe-docker.pkg.dev/proj/repo/app:1"
    assert train.container.command == ("kedro-vertex-ci", "step")
    assert train.nodes == ("train",) and train.depends_on == ("prep",)
    args = train.container.args
    assert args[args.index("--param-input") + 1] == "epochs=epochs"  # named; the value is in the ExecutorInput
    assert args[args.index("--executor-input") + 1] == "{{$}}"
    assert train.container.env == (("KEDRO_LOGGING_CONFIG", "conf/logging.yml"),)
    assert (train.container.cpu, train.container.memory) == (8.0, 52 * 10**9)  # n1-highmem-8, not cpu="1"
    assert (prep.container.cpu, prep.container.memory) == (1.0, 2 * 10**9)


def test_several_replicas_are_refused_with_a_clear_message() -> None:
    emitted = spec.spec_to_dict(spec.emit(_plan()))
    pools = emitted["components"]["comp-train"]["inputDefinitions"]["parameters"]["worker_pool_specs"]
    pools["defaultValue"].append({**pools["defaultValue"][0], "replica_count": 2})
    with pytest.raises(ConfigError, match="'train' asks for several replicas; run-local runs one"):
        build_graph(emitted)


TEXT = 'say "hi" \\ C:\\new\\table\n\tsecond line, ünïcødé ✓ \\"quoted\\"'
REGISTRY = """\
from kedro.pipeline import Pipeline, node


def seen(note, epochs):
    return {"note": note, "epochs": epochs, "epochs_type": type(epochs).__name__}


def register_pipelines():
    return {"__default__": Pipeline([node(seen, ["params:note", "params:epochs"], "seen", name="on_machine")])}
"""


@pytest.mark.slow
def test_run_local_hands_a_customjob_step_its_parameters_through_the_executor_input(
    kedro_new_project: Path, fresh_demo_modules: None, tmp_path: Path
) -> None:
    """A STRING parameter with quotes, backslashes and a newline reaches the CustomJob step's node exactly.

    run-local runs the step from its worker pool spec; the step reads its inputs from the ExecutorInput
    run-local builds as Vertex does (typed ``inputs.parameterValues``).
    """
    from tests.conftest import minimal_vertexai

    project = kedro_new_project
    (project / "src" / "demo" / "pipeline_registry.py").write_text(REGISTRY)
    (project / "conf" / "base" / "parameters.yml").write_text("note: plain\nepochs: 3\n")
    (project / "conf" / "base" / "catalog.yml").write_text(
        "seen:\n  type: json.JSONDataset\n  filepath: data/08_reporting/seen.json\n")
    (project / "conf" / "base" / "vertexai.yml").write_text(
        minimal_vertexai(resources="{on_machine: {machine_type: n1-standard-4, spot: true}}")
    )
    settings = project / "src" / "demo" / "settings.py"
    settings.write_text(settings.read_text() + '\nDISABLE_HOOKS_FOR_PLUGINS = ("kedro_mlflow",)\n')

    out = tmp_path / "p.json"
    assert CliRunner().invoke(cli, ["--project", str(project), "compile", "-o", str(out)]).exit_code == 0
    compiled = json.loads(out.read_text())
    assert compiled["deploymentSpec"]["executors"]["exec-on-machine"]["container"]["image"] == customjob.LAUNCHER_IMAGE
    pools = compiled["components"]["comp-on-machine"]["inputDefinitions"]["parameters"]["worker_pool_specs"]
    assert "--param-input" in pools["defaultValue"][0]["container_spec"]["args"]
    result = CliRunner().invoke(
        cli,
        ["--project", str(project), "run-local", "--no-preload", "--run-id", "r1", "--root", str(tmp_path / "runs"),
         "--param", f"note={TEXT}", "--param", "epochs=5"],
        catch_exceptions=False,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    seen = json.loads((project / "data" / "08_reporting" / "seen.json").read_text(encoding="utf-8"))
    assert seen == {"note": TEXT, "epochs": 5, "epochs_type": "int"}
