"""``spec``: determinism, scale, strict parsing, the exit step's argv, and the plans it refuses."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from typing import Any

import pytest
import yaml

from kedro_vertex_ci import argv, spec
from kedro_vertex_ci.errors import ConfigError
from kedro_vertex_ci.model import ParamType, PipelineParam, Plan, Resources, Step

PARAMS = (
    PipelineParam("alpha", "alpha", ParamType.NUMBER_DOUBLE, 0.5),
    PipelineParam("name", "name", ParamType.STRING, "x"),
    PipelineParam("opts", "model.opts", ParamType.STRUCT, {"depth": None, "layers": [1, None]}),
)


def _plan(steps: tuple[Step, ...], **overrides: Any) -> Plan:
    values: dict[str, Any] = dict(
        pipeline_name="p", kedro_pipeline="__default__", image="img:1", env="base", steps=steps, resources={}
    )
    values.setdefault("params", ())
    values.update(overrides)
    return Plan(**values)


def _chain(count: int, **step_fields: Any) -> tuple[Step, ...]:
    return tuple(
        Step(f"step-{i}", (f"node_{i}",), depends_on=(f"step-{i - 1}",) if i else (), **step_fields)
        for i in range(count)
    )


def _as_dict(plan: Plan) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(spec.to_json_bytes(spec.emit(plan)))
    return loaded


def test_same_plan_gives_identical_bytes_and_mapping_order_does_not_matter() -> None:
    resources = {"step-0": Resources(cpu="1"), "step-2": Resources(retries=2, caching=False)}
    env = {"B": "2", "A": "1"}
    plan = _plan(_chain(3, parameters=("alpha", "name")), params=PARAMS, resources=resources, extra_env=env)
    reordered = replace(
        plan, resources=dict(reversed(resources.items())), extra_env=dict(reversed(env.items()))
    )
    first = spec.to_json_bytes(spec.emit(plan))
    assert first == spec.to_json_bytes(spec.emit(plan))
    assert first == spec.to_json_bytes(spec.emit(reordered))
    assert first.endswith(b"}\n") and first.startswith(b'{\n  "components": {')
    env_names = [
        e["name"] for e in json.loads(first)["deploymentSpec"]["executors"]["exec-step-0"]["container"]["env"]
    ]
    assert env_names == ["A", "B"]


def test_json_yaml_and_dict_forms_agree() -> None:
    message = spec.emit(_plan(_chain(2, parameters=("model.opts",)), params=PARAMS, description="ünïcode ✓"))
    as_dict = spec.spec_to_dict(message)
    assert json.loads(spec.to_json_bytes(message)) == as_dict
    assert yaml.safe_load(spec.to_yaml_bytes(message)) == as_dict
    assert spec.to_json_bytes(as_dict) == spec.to_json_bytes(message)
    assert "ünïcode ✓" in spec.to_yaml_bytes(message).decode("utf-8")


def test_a_1000_step_chain_emits_every_step_and_parses_strictly() -> None:
    plan = _plan(_chain(1000, parameters=("alpha",)), params=PARAMS, on_exit=Step("on-exit", ("notify",)))
    emitted = spec.emit(plan)
    parsed = spec.parse_spec(spec.to_json_bytes(emitted))
    handler = parsed.components["comp-exit-handler-1"].dag.tasks
    assert len(handler) == 1000
    assert list(handler["step-999"].dependent_tasks) == ["step-998"]
    assert len(parsed.components) == 1002  # 1000 steps, the exit step, the exit-handler sub-DAG
    executors = spec.spec_to_dict(parsed)["deploymentSpec"]["executors"]
    assert len(executors) == 1001


def test_null_inside_a_default_is_kept_even_though_kfp_dsl_refuses_it() -> None:
    """Kedro parameters often hold ``null`` values; the proto (and Vertex) accept them, kfp.dsl does not."""
    emitted = _as_dict(_plan(_chain(1, parameters=("model.opts",)), params=PARAMS))
    default = emitted["root"]["inputDefinitions"]["parameters"]["opts"]["defaultValue"]
    assert default == {"depth": None, "layers": [1.0, None]}
    spec.parse_spec(emitted)


def test_parameter_without_a_default_is_optional_with_no_default_value() -> None:
    params = (PipelineParam("maybe", "maybe", ParamType.STRING, None),)
    emitted = _as_dict(_plan(_chain(1, parameters=("maybe",)), params=params))
    assert emitted["root"]["inputDefinitions"]["parameters"]["maybe"] == {
        "isOptional": True,
        "parameterType": "STRING",
    }


def test_exit_step_args_round_trip_through_the_runtime_parser() -> None:
    exit_step = Step("on-exit-notify", ("notify",), parameters=("name",))
    resources = {"on-exit-notify": Resources(timeout_seconds=30)}
    plan = _plan(_chain(1), params=PARAMS, on_exit=exit_step, resources=resources)
    args = spec.exit_step_args(plan, exit_step, resources["on-exit-notify"])
    invocation = argv.parse_step_args(args)
    assert invocation.on_exit is True
    assert invocation.status == "{{$.inputs.parameters['status']}}"
    assert invocation.nodes == ("notify",)
    assert invocation.params == {"name": "{{$.inputs.parameters['name']}}"}
    assert invocation.timeout == 30
    container = _as_dict(plan)["deploymentSpec"]["executors"]["exec-on-exit-notify"]["container"]
    assert container["args"] == args


def test_main_steps_never_get_the_exit_flags() -> None:
    plan = _plan(_chain(2), on_exit=Step("on-exit-notify", ("notify",)))
    executors = _as_dict(plan)["deploymentSpec"]["executors"]
    assert "--on-exit" not in executors["exec-step-1"]["container"]["args"]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b'{"pipelineInfo": {"name": "p"}, "unknownField": 1}', 'no field named "unknownField"'),
        (b'{"pipelineInfo": {"name": 5}}', "Failed to parse name field"),
        (b'{"root": {"dag": {"tasks": {"t": {"taskInfo": {"nam": "t"}}}}}}', '"nam"'),
        (b"[1, 2]", "expected a mapping at the top level, got list"),
        (b"{not json: [", "neither JSON nor YAML"),
    ],
)
def test_parse_spec_is_strict(data: bytes, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        spec.parse_spec(data, source="pipeline.json")
    assert str(caught.value).startswith("pipeline.json: ")
    assert expected in str(caught.value)
    assert caught.value.exit_code == 2


def test_parse_spec_reads_yaml_and_dicts() -> None:
    message = spec.emit(_plan(_chain(2)))
    assert spec.parse_spec(spec.to_yaml_bytes(message)) == message
    assert spec.parse_spec(spec.spec_to_dict(message)) == message


BAD_PLANS: list[tuple[str, Plan, str]] = [
    ("no steps", _plan(()), "the pipeline has no steps"),
    ("duplicate", _plan((Step("a", ("x",)), Step("a", ("y",)))), "two steps are named 'a'"),
    ("bad name", _plan((Step("Train_Model", ("x",)),)), "step name 'Train_Model' is not lowercase"),
    (
        "unknown dep",
        _plan((Step("a", ("x",), depends_on=("zz",)),)),
        "depends on 'zz', which is not an earlier",
    ),
    (
        "unknown param",
        _plan((Step("a", ("x",), parameters=("nope",)),)),
        "uses parameter 'nope', which is not",
    ),
    (
        "duplicate param",
        _plan(_chain(1), params=(PARAMS[0], replace(PARAMS[1], name="alpha"))),
        "two pipeline parameters are named 'alpha'",
    ),
    ("exit clash", _plan(_chain(1), on_exit=Step("step-0", ("n",))), "has the name of a pipeline step"),
    ("reserved", _plan(_chain(1), on_exit=Step("exit-handler-1", ("n",))), "reserved for the exit handler"),
    (
        "status param",
        _plan(
            _chain(1),
            params=(PipelineParam("status", "status", ParamType.STRING, "x"),),
            on_exit=Step("on-exit", ("n",), parameters=("status",)),
        ),
        "cannot use a parameter named 'status'",
    ),
    ("cpu", _plan(_chain(1), resources={"step-0": Resources(cpu="2 cores")}), "step-0.cpu: '2 cores' is not"),
    (
        "memory",
        _plan(_chain(1), resources={"step-0": Resources(memory="8GB")}),
        "step-0.memory: '8GB' is not",
    ),
    (
        "count only",
        _plan(_chain(1), resources={"step-0": Resources(accelerator_count=2)}),
        "step-0.accelerator_count: needs an accelerator type",
    ),
    (
        "backoff",
        _plan(_chain(1), resources={"step-0": Resources(retries=1, retry_backoff="soon")}),
        "step-0.retry_backoff: 'soon' is not valid",
    ),
    (
        "default",
        _plan(_chain(1), params=(PipelineParam("d", "d", ParamType.STRUCT, {1: "int key"}),)),
        "parameters: d: default cannot be written to the spec",
    ),
]


@pytest.mark.parametrize(
    ("plan", "expected"), [case[1:] for case in BAD_PLANS], ids=[c[0] for c in BAD_PLANS]
)
def test_plans_kfp_cannot_express_are_config_errors(plan: Plan, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        spec.emit(plan)
    assert expected in str(caught.value)


@pytest.mark.parametrize(
    ("backoff", "seconds"),
    [(None, "0s"), ("60s", "60s"), ("5m", "300s"), ("1 hour", "3600s"), ("2d", "172800s")],
)
def test_retry_backoff_is_written_in_seconds(backoff: str | None, seconds: str) -> None:
    plan = _plan(_chain(1), resources={"step-0": Resources(retries=4, retry_backoff=backoff)})
    policy = _as_dict(plan)["root"]["dag"]["tasks"]["step-0"]["retryPolicy"]
    assert policy == {
        "backoffDuration": seconds,
        "backoffFactor": 2.0,
        "backoffMaxDuration": "3600s",
        "maxRetryCount": 4,
    }


def test_compiling_imports_only_the_protobuf_part_of_kfp_and_the_dsl_still_works_after() -> None:
    """``emit`` keeps kfp's DSL and API client out of the process (≈0.6 s); later kfp use is unaffected."""
    code = (
        "import sys\n"
        "from kedro_vertex_ci import spec\n"
        "from kedro_vertex_ci.model import Plan, Step\n"
        "plan = Plan('p', '__default__', 'img', 'base', (Step('a', ('n',)),), {}, ())\n"
        "spec.emit(plan)\n"
        "print(sorted(m for m in ('kfp.dsl', 'kfp.client', 'kfp.compiler') if m in sys.modules))\n"
        "import os; print(os.environ.get('_KFP_RUNTIME'))\n"
        "from kfp import compiler, dsl\n"
        "print(dsl.PIPELINE_JOB_ID_PLACEHOLDER)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.splitlines() == ["[]", "None", "{{$.pipeline_job_uuid}}"]
