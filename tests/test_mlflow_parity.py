"""With MLflow, our spec equals kfp.compiler's for the same pipeline written with ``kfp.dsl``, field by field.

The reference pipeline is what a kfp user writes by hand: an exit task (``mlflow-end-run`` with a
``dsl.PipelineTaskFinalStatus`` input, or the user's on-exit step) around ``dsl.ExitHandler``; inside it a
``mlflow-start-run`` container component with a ``dsl.OutputPath(str)`` output, and every step a container
component taking ``mlflow_run_id: str``, called with ``start.outputs["run_id"]``. kfp then adds the
``taskOutputParameter`` wiring and the dependency on the start task itself. The placeholders in the args
come from the kfp objects (the output path, the inputs), the flags are written here independently.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from kedro_vertex_ci import argv, spec
from kedro_vertex_ci.model import PipelineParam, Plan, Resources, Step
from tests.kfp_reference import ANNOTATIONS, _as_custom_job, _configure, _define, _kfp_args, _python_name
from tests.test_spec_parity import ALL_TYPES, FAN, _chain, _differences, _plan

PROVIDER_ENV = {"KEDRO_VERTEX_CI_MLFLOW_AUTH": '{"client_id": "123.apps.googleusercontent.com"}'}

CASES: dict[str, Plan] = {
    "chain-with-params": _plan(
        (
            Step("ingest", ("ingest",), parameters=("epochs",)),
            Step("train", ("train",), depends_on=("ingest",), parameters=("learning_rate", "model_options")),
            Step("report", ("report",), depends_on=("train",)),
        ),
        params=ALL_TYPES,
        mlflow=True,
    ),
    "fan-out-with-on-exit": _plan(
        FAN,
        on_exit=Step("notify", ("send_notification",), parameters=("model_name",)),
        params=ALL_TYPES[:2],
        description="User on-exit step ends the MLflow run.",
        mlflow=True,
    ),
    "customjob-step": _plan(
        _chain("prepare", "train"),
        resources={"train": Resources(machine_type="n1-highmem-8", spot=True, service_account="sa@p.iam.gserviceaccount.com")},
        extra_env=PROVIDER_ENV,
        mlflow=True,
    ),
    "env-resources-no-cache": _plan(
        _chain("first", "second"),
        resources={"second": Resources(cpu="2", memory="4G", retries=1, timeout_seconds=600)},
        extra_env=PROVIDER_ENV,
        caching=False,
        mlflow=True,
    ),
}


def _component(plan: Plan, step: Step, params: list[PipelineParam], extra: str, make_args: Any) -> Any:
    from kfp import dsl

    namespace: dict[str, Any] = {"make_args": make_args, "dsl": dsl}
    signature = [f"{p.name}: {ANNOTATIONS[p.type]}" for p in params] + ([extra] if extra else [])
    names = [p.name for p in params] + ([extra.partition(":")[0]] if extra else [])
    call = ", ".join(f"{n}={n}" for n in names)
    func = _python_name(step.name)
    source = (
        f"def {func}({', '.join(signature)}):\n"
        f"    return dsl.ContainerSpec(image=IMAGE, command=COMMAND, args=make_args({call}))\n"
    )
    namespace.update({"IMAGE": plan.image, "COMMAND": list(argv.STEP_COMMAND)})
    _define(source, namespace)
    return dsl.container_component(namespace[func])


def _no_node_args(plan: Plan, name: str) -> list[str]:
    return argv.build_step_args(plan, Step(name, ()))


def _pipeline_func(plan: Plan) -> Any:
    from kfp import dsl

    by_key = {p.key: p for p in plan.params}

    def step_component(step: Step) -> Any:
        params = [by_key[k] for k in step.parameters]
        resources = plan.resources.get(step.name)
        custom_job = resources is not None and resources.custom_job
        template = argv.build_step_args(plan, step, resources)

        def make_args(**inputs: Any) -> list[str]:
            run_id = inputs.pop("mlflow_run_id")
            if custom_job:  # named: the CustomJob step reads it from its ExecutorInput
                return [*_kfp_args(template, params, inputs, custom_job=True), "--mlflow-run-id-input",
                        "mlflow_run_id"]
            return [*_kfp_args(template, params, inputs), "--mlflow-run-id", run_id]

        component = _component(plan, step, params, "mlflow_run_id: str", make_args)
        return _as_custom_job(plan, component, resources) if resources and custom_job else component

    start = _component(
        plan,
        Step("mlflow-start-run", ()),
        [],
        "run_id: dsl.OutputPath(str)",
        lambda run_id: [*_no_node_args(plan, "mlflow-start-run"), "--mlflow-start", "--mlflow-run-id-output",
                        run_id],
    )
    if plan.on_exit is None:
        exit_step = Step("mlflow-end-run", ())
        exit_params: list[PipelineParam] = []
        template = _no_node_args(plan, "mlflow-end-run")

        def exit_args(status: Any) -> list[str]:
            return [*template, "--mlflow-end", "--status", f"{status}"]
    else:
        exit_step = plan.on_exit
        exit_params = [by_key[k] for k in exit_step.parameters]
        template = argv.build_step_args(plan, exit_step, plan.resources.get(exit_step.name))

        def exit_args(status: Any, **inputs: Any) -> list[str]:
            return [*_kfp_args(template, exit_params, inputs), "--on-exit", "--status", f"{status}",
                    "--mlflow-end"]

    exit_component = _component(plan, exit_step, exit_params, "status: dsl.PipelineTaskFinalStatus", exit_args)
    components = {s.name: step_component(s) for s in plan.steps}

    def body(**pipeline_inputs: Any) -> None:
        exit_task = exit_component(**{p.name: pipeline_inputs[p.name] for p in exit_params})
        if plan.on_exit is None:
            _untouched_but_env(exit_task, plan)
        else:
            _configure(exit_task, plan, exit_step)
        with dsl.ExitHandler(exit_task):
            start_task = start()
            _untouched_but_env(start_task, plan)
            tasks: dict[str, Any] = {}
            for step in plan.steps:
                inputs = {by_key[k].name: pipeline_inputs[by_key[k].name] for k in step.parameters}
                task = components[step.name](**inputs, mlflow_run_id=start_task.outputs["run_id"])
                if step.depends_on:
                    task.after(*(tasks[name] for name in step.depends_on))
                _configure(task, plan, step)
                tasks[step.name] = task

    namespace: dict[str, Any] = {"body": body, "defaults": {p.name: p.default for p in plan.params}}
    signature = ", ".join(f"{p.name}: {ANNOTATIONS[p.type]} = defaults[{p.name!r}]" for p in plan.params)
    call = ", ".join(f"{p.name}={p.name}" for p in plan.params)
    _define(f"def pipeline_func({signature}):\n    body({call})\n", namespace)
    return dsl.pipeline(name=plan.pipeline_name, description=plan.description or None)(namespace["pipeline_func"])


def _untouched_but_env(task: Any, plan: Plan) -> None:
    """The MLflow tasks: never cached, the plan's env like every step, no resources."""
    task.set_caching_options(False)
    for name in sorted(plan.extra_env):
        task.set_env_variable(name, plan.extra_env[name])


def _compile_with_kfp(plan: Plan, workdir: Path) -> dict[str, Any]:
    from kfp import compiler

    package = workdir / "pipeline.yaml"
    compiler.Compiler().compile(_pipeline_func(plan), str(package))
    loaded: dict[str, Any] = yaml.safe_load(package.read_text())
    return loaded


@pytest.mark.parametrize("case", sorted(CASES))
def test_mlflow_spec_equals_kfp_compiler_output(case: str, tmp_path: Path) -> None:
    plan = CASES[case]
    ours = json.loads(spec.to_json_bytes(spec.emit(plan)))
    theirs = _compile_with_kfp(plan, tmp_path)
    assert _differences(ours, theirs) == []
    assert ours == theirs


def test_run_id_travels_as_a_task_output_parameter() -> None:
    """Guards the table: start task first inside the handler, every step wired to its output, end on exit."""
    emitted = json.loads(spec.to_json_bytes(spec.emit(CASES["chain-with-params"])))
    handler = emitted["components"]["comp-exit-handler-1"]["dag"]["tasks"]
    assert set(handler) == {"mlflow-start-run", "ingest", "train", "report"}
    assert emitted["components"]["comp-mlflow-start-run"]["outputDefinitions"]["parameters"] == {
        "run_id": {"parameterType": "STRING"}
    }
    for name in ("ingest", "train", "report"):
        wiring = handler[name]["inputs"]["parameters"]["mlflow_run_id"]
        assert wiring == {"taskOutputParameter": {"producerTask": "mlflow-start-run", "outputParameterKey": "run_id"}}
        assert "mlflow-start-run" in handler[name]["dependentTasks"]
    assert handler["mlflow-start-run"]["cachingOptions"] == {}
    executors = emitted["deploymentSpec"]["executors"]
    assert executors["exec-mlflow-start-run"]["container"]["args"][-3:] == [
        "--mlflow-start", "--mlflow-run-id-output", "{{$.outputs.parameters['run_id'].output_file}}"
    ]
    assert executors["exec-train"]["container"]["args"][-2:] == [
        "--mlflow-run-id", "{{$.inputs.parameters['mlflow_run_id']}}"
    ]
    end = emitted["root"]["dag"]["tasks"]["mlflow-end-run"]
    assert end["triggerPolicy"] == {"strategy": "ALL_UPSTREAM_TASKS_COMPLETED"}
    assert end["inputs"]["parameters"]["status"] == {"taskFinalStatus": {"producerTask": "exit-handler-1"}}
    with_exit = json.loads(spec.to_json_bytes(spec.emit(CASES["fan-out-with-on-exit"])))
    assert "mlflow-end-run" not in with_exit["root"]["dag"]["tasks"]
    assert with_exit["deploymentSpec"]["executors"]["exec-notify"]["container"]["args"][-1] == "--mlflow-end"


def test_step_args_round_trip_through_the_parser() -> None:
    plan = CASES["chain-with-params"]
    start = argv.parse_step_args(argv.build_mlflow_start_args(plan))
    assert start.mlflow_start and start.mlflow_run_id_output == "{{$.outputs.parameters['run_id'].output_file}}"
    assert start.nodes == ()
    step = argv.parse_step_args([*argv.build_step_args(plan, plan.steps[2]), *argv.mlflow_step_args()])
    assert step.mlflow_run_id == "{{$.inputs.parameters['mlflow_run_id']}}" and not step.mlflow_start
    end = argv.parse_step_args(argv.build_mlflow_end_args(plan, "{}"))
    assert end.mlflow_end and end.status == "{}" and end.nodes == ()


@pytest.mark.parametrize(
    ("plan", "message"),
    [
        (_plan(_chain("mlflow-start-run"), mlflow=True), "reserved for the MLflow run tasks"),
        (_plan(_chain("a"), on_exit=Step("mlflow-end-run", ("n",)), mlflow=True), "reserved for the MLflow"),
        (
            _plan(
                (Step("a", ("a",), parameters=("mlflow_run_id",)),),
                params=(PipelineParam("mlflow_run_id", "mlflow_run_id", ALL_TYPES[0].type, "x"),),
                mlflow=True,
            ),
            "cannot be named 'mlflow_run_id'",
        ),
    ],
)
def test_reserved_names_are_refused(plan: Plan, message: str) -> None:
    from kedro_vertex_ci.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        spec.emit(plan)


def test_without_mlflow_nothing_changes() -> None:
    plan = _plan(_chain("a", "b"))
    emitted = json.loads(spec.to_json_bytes(spec.emit(plan)))
    assert set(emitted["root"]["dag"]["tasks"]) == {"a", "b"}
    assert "mlflow" not in json.dumps(emitted)



def test_run_local_substitutes_the_run_id_in_every_step_including_customjob_ones() -> None:
    from kedro_vertex_ci.local.placeholders import RunContext, render_command
    from kedro_vertex_ci.local.specgraph import FromTask, build_graph

    graph = build_graph(json.loads(spec.to_json_bytes(spec.emit(CASES["customjob-step"]))))
    ctx = RunContext(job_name="job", run_id="uuid-1", root="/r", outputs_dir="/r/uuid-1/outputs")
    produced = {("mlflow-start-run", "run_id"): "mlflow-run-7"}
    for name in ("prepare", "train"):
        task = graph.task(name)
        assert task.inputs["mlflow_run_id"] == FromTask("mlflow-start-run", "run_id")
        _, args = render_command(task, ctx, produced=produced)
        assert argv.parse_step_args(args).mlflow_run_id == "mlflow-run-7"  # the CustomJob one via its ExecutorInput
    assert "--mlflow-run-id-input" in graph.task("train").container.args
    _, start_args = render_command(graph.task("mlflow-start-run"), ctx)
    assert start_args[-1] == "/r/uuid-1/outputs/mlflow-start-run/run_id"


def test_run_local_subsets_keep_the_start_task_that_hands_out_the_run_id() -> None:
    from kedro_vertex_ci.local.specgraph import build_graph, select_tasks

    graph = build_graph(json.loads(spec.to_json_bytes(spec.emit(CASES["chain-with-params"]))))
    subset = select_tasks(graph, from_nodes=["report"])
    assert [t.name for t in subset.tasks] == ["mlflow-start-run", "report", "mlflow-end-run"]
    assert subset.task("report").depends_on == ("mlflow-start-run",)
