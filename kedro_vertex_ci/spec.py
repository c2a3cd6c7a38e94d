"""Emit a Vertex AI (KFP v2) ``PipelineSpec`` from a :class:`~kedro_vertex_ci.model.Plan`.

The spec is built directly with kfp's own protobuf messages: ``kfp.dsl`` re-scans every task when one is
added (≈5 s at 1000 tasks), while filling the messages once per step is linear. The output is field-for-field
what ``kfp.compiler`` produces for the same pipeline written with ``@dsl.container_component`` steps (the
parity tests compile both and compare), so Vertex reads it exactly as it reads a kfp-compiled pipeline.

Per step: component ``comp-<step>``, executor ``exec-<step>``, task ``<step>``. Each Kedro parameter a step
uses is a typed component input wired to the pipeline input of the same name. With an on-exit step the main
tasks move into the sub-DAG ``exit-handler-1`` (what ``dsl.ExitHandler`` emits) and the exit task receives
the sub-DAG's final status as the ``status`` input (``dsl.PipelineTaskFinalStatus``).

With MLflow (``Plan.mlflow``) there is always an exit handler: its first task ``mlflow-start-run`` returns the
MLflow run id as an output parameter (``dsl.OutputPath(str)``), each step takes it as the ``mlflow_run_id``
input (``taskOutputParameter``), and the exit task (the on-exit step, else ``mlflow-end-run``) ends the run
with the pipeline's final status — it finds the run by tag, since kfp lets no exit task take inputs from
other tasks.

A step whose resources name a machine type (or spot) is emitted as GCPC's CustomJob launcher task instead of
a container task (``customjob``: what ``create_custom_training_job_from_component`` + ``kfp.compiler``
produce); the on-exit step always stays a container task.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from types import ModuleType
from typing import TYPE_CHECKING, Any

from . import argv, customjob
from .errors import ConfigError, Problem
from .model import ParamType, PipelineParam, Plan, Resources, Step

if TYPE_CHECKING:
    from kfp.pipeline_spec.pipeline_spec_pb2 import PipelineSpec

SCHEMA_VERSION = "2.1.0"
DATASET_SCHEMA, DATASET_SCHEMA_VERSION = "system.Dataset", "0.0.1"  # what kfp writes for dsl.Output[dsl.Dataset]
EXIT_HANDLER = "exit-handler-1"
STATUS_INPUT = "status"
# With MLflow (``Plan.mlflow``): the first task inside the exit handler starts the job's run and hands its
# id to every step (a task output parameter); the exit task ends it. Never cached: a cached start would
# hand out an earlier job's run.
MLFLOW_START_STEP = Step(name="mlflow-start-run", nodes=())
MLFLOW_END_STEP = Step(name="mlflow-end-run", nodes=())
_NOT_CACHED = Resources(caching=False)
_CHANNEL_PREFIX = "pipelinechannel--"  # kfp's name for a pipeline input passed into a sub-DAG
_RETRY_BACKOFF_FACTOR = 2.0  # kfp's RetryPolicy defaults, written out as kfp does
_RETRY_BACKOFF_DEFAULT = "0s"
_RETRY_MAX_DURATION_SECONDS = 3600
_TASK_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,127}$")  # what names.sanitize_name produces
_CPU_RE = re.compile(r"([0-9]*[.])?[0-9]+m?$")
_MEMORY_RE = re.compile(r"^[0-9]+(E|Ei|P|Pi|T|Ti|G|Gi|M|Mi|K|Ki)?$")
_MEMORY_UNITS = {  # bytes per unit; kfp writes the deprecated float field in units of 10**9 bytes
    "E": 10**18, "Ei": 1 << 60, "P": 10**15, "Pi": 1 << 50, "T": 10**12, "Ti": 1 << 40,
    "G": 10**9, "Gi": 1 << 30, "M": 10**6, "Mi": 1 << 20, "K": 10**3, "Ki": 1 << 10,
}  # fmt: skip
_SECONDS_PER_UNIT = {"s": 1, "m": 60, "h": 3_600, "d": 86_400, "w": 604_800}


def pb2() -> ModuleType:
    """kfp's ``pipeline_spec_pb2`` module, imported without importing ``kfp.dsl`` and ``kfp.Client``.

    ``import kfp`` eagerly imports the DSL and the API client (≈0.6 s) unless ``_KFP_RUNTIME`` is set — the
    switch kfp itself uses inside step containers. Compile needs only the protobuf messages, so the switch is
    set for the first import of ``kfp`` and then restored; ``from kfp import dsl`` keeps working afterwards.
    """
    if "kfp" not in sys.modules:
        previous = os.environ.get("_KFP_RUNTIME")
        os.environ["_KFP_RUNTIME"] = "true"
        try:
            import kfp  # noqa: F401
        finally:
            if previous is None:
                del os.environ["_KFP_RUNTIME"]
            else:
                os.environ["_KFP_RUNTIME"] = previous
    from kfp.pipeline_spec import pipeline_spec_pb2

    module: ModuleType = pipeline_spec_pb2
    return module


@cache
def sdk_version() -> str:
    """The ``sdkVersion`` kfp writes: ``kfp-<installed version>``."""
    return "kfp-" + metadata.version("kfp")


def emit(plan: Plan) -> PipelineSpec:
    """The ``PipelineSpec`` message for ``plan``; a pure function of the plan. Raises :class:`ConfigError`."""
    from google.protobuf import json_format

    _check_plan(plan)
    pb = pb2()
    spec = pb.PipelineSpec()
    spec.pipeline_info.name = plan.pipeline_name
    if plan.description:
        spec.pipeline_info.description = plan.description
    spec.schema_version = SCHEMA_VERSION
    spec.sdk_version = sdk_version()
    _add_pipeline_inputs(spec.root, plan.params)
    emitter = _Emitter(plan, spec, pb.PipelineDeploymentConfig(), {p.key: p for p in plan.params})
    if plan.on_exit is None and not plan.mlflow:
        emitter.add_steps(spec.root, prefix="")
    else:
        handler = spec.components["comp-" + EXIT_HANDLER]
        if plan.mlflow:
            emitter.add_mlflow_start(handler)
        used = emitter.add_steps(handler, prefix=_CHANNEL_PREFIX)
        _add_exit_handler_task(spec.root.dag.tasks[EXIT_HANDLER], used)
        emitter.add_exit_step(plan.on_exit or MLFLOW_END_STEP)
    # ``deploymentSpec`` is a Struct in PipelineSpec; kfp fills it from a PipelineDeploymentConfig the same way.
    spec.deployment_spec.update(json_format.MessageToDict(emitter.deployment))
    return spec


def exit_step_args(plan: Plan, step: Step, resources: Resources | None = None) -> list[str]:
    """The on-exit step's args: a normal step plus ``--on-exit`` and the final status of the main DAG.

    With MLflow the exit task also ends the job's run: the on-exit step does it after its nodes
    (``--mlflow-end``), or the ``mlflow-end-run`` task alone when the plan has no on-exit step.
    """
    status = argv.input_placeholder(STATUS_INPUT)
    if step == MLFLOW_END_STEP:
        return argv.build_mlflow_end_args(plan, status)
    exit_plan = dataclasses.replace(plan, kedro_pipeline=plan.on_exit_pipeline or plan.kedro_pipeline)
    args = [*argv.build_step_args(exit_plan, step, resources), "--on-exit", "--status", status]
    return [*args, "--mlflow-end"] if plan.mlflow else args


def spec_to_dict(spec: PipelineSpec | Mapping[str, Any]) -> dict[str, Any]:
    """The spec as the JSON-shaped dict kfp writes (camelCase field names); a dict is passed through."""
    if isinstance(spec, Mapping):
        return dict(spec)
    from google.protobuf import json_format

    converted: dict[str, Any] = json_format.MessageToDict(spec)
    return converted


def to_json_bytes(spec: PipelineSpec | Mapping[str, Any]) -> bytes:
    """Deterministic JSON: sorted keys, two-space indent, trailing newline (kfp's own JSON layout).

    Accepts the message or the dict from :func:`spec_to_dict` (converting a large spec once is cheaper).
    UTF-8, not ``\\u`` escapes: kfp and aiplatform load spec files with a YAML parser, which turns the
    escaped surrogate pair of an emoji into two lone surrogates that protobuf then refuses.
    """
    return (json.dumps(spec_to_dict(spec), indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def to_yaml_bytes(spec: PipelineSpec | Mapping[str, Any]) -> bytes:
    """Deterministic YAML with sorted keys, as ``kfp.compiler`` writes ``pipeline.yaml`` (minus its comments)."""
    import yaml

    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    text: str = yaml.dump(spec_to_dict(spec), Dumper=dumper, sort_keys=True, allow_unicode=True)
    return text.encode("utf-8")


def parse_spec(data: bytes | str | Mapping[str, Any], source: str = "pipeline spec") -> PipelineSpec:
    """Parse JSON/YAML bytes or a dict into ``PipelineSpec``, rejecting unknown fields and wrong types."""
    from google.protobuf import json_format

    if isinstance(data, (bytes, str)):
        data = _load_document(data, source)
    if not isinstance(data, Mapping):
        raise ConfigError(
            [Problem(source, "", f"expected a mapping at the top level, got {type(data).__name__}")]
        )
    try:
        parsed: PipelineSpec = json_format.ParseDict(
            dict(data), pb2().PipelineSpec(), ignore_unknown_fields=False
        )
        return parsed
    except json_format.ParseError as err:
        raise ConfigError([Problem(source, "", f"not a valid PipelineSpec: {err}")]) from err


def _load_document(data: bytes | str, source: str) -> Any:
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError([Problem(source, "", f"neither JSON nor YAML: {err}")]) from err
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError, OverflowError) as err:  # !!bool maybe, 5000 digits
        raise ConfigError([Problem(source, "", f"YAML cannot read it: {type(err).__name__} {err}"[:300])]) from err


def _check_plan(plan: Plan) -> None:
    """Reject plans kfp could not express: bad, duplicate or reserved names, unknown dependencies."""
    problems: list[str] = []
    if not plan.steps:
        problems.append("the pipeline has no steps")
    param_names: set[str] = set()
    for param in plan.params:
        if param.name in param_names:
            problems.append(f"two pipeline parameters are named {param.name!r}")
        param_names.add(param.name)
    names: set[str] = set()
    for step in (*plan.steps, plan.on_exit) if plan.on_exit else plan.steps:
        if not _TASK_NAME_RE.match(step.name):
            problems.append(f"step name {step.name!r} is not lowercase letters, digits and dashes")
    for step in plan.steps:
        if step.name in names:
            problems.append(f"two steps are named {step.name!r}")
        names.add(step.name)
        for upstream in step.depends_on:
            if upstream not in names:
                problems.append(f"step {step.name!r} depends on {upstream!r}, which is not an earlier step")
    if plan.on_exit is not None:
        if plan.on_exit.name in names:
            problems.append(f"the on-exit step {plan.on_exit.name!r} has the name of a pipeline step")
        if EXIT_HANDLER in names or plan.on_exit.name == EXIT_HANDLER:
            problems.append(f"step name {EXIT_HANDLER!r} is reserved for the exit handler")
        if any(p.name == STATUS_INPUT for p in _step_params(plan.on_exit, {p.key: p for p in plan.params})):
            problems.append(f"the on-exit step cannot use a parameter named {STATUS_INPUT!r}")
    if plan.mlflow:
        problems.extend(_mlflow_problems(plan))
    if problems:
        raise ConfigError([Problem("", "", message) for message in problems])


def _mlflow_problems(plan: Plan) -> list[str]:
    """Names the MLflow tasks and their run-id input reserve."""
    problems = []
    reserved = {MLFLOW_START_STEP.name, MLFLOW_END_STEP.name}
    for step in (*plan.steps, plan.on_exit) if plan.on_exit else plan.steps:
        if step.name in reserved:
            problems.append(f"step name {step.name!r} is reserved for the MLflow run tasks")
    if any(p.name == argv.MLFLOW_RUN_ID_INPUT for p in plan.params):
        problems.append(f"a pipeline parameter cannot be named {argv.MLFLOW_RUN_ID_INPUT!r} with MLflow")
    return problems


def _step_params(step: Step, params: Mapping[str, PipelineParam]) -> list[PipelineParam]:
    try:
        return [params[key] for key in step.parameters]
    except KeyError as err:
        raise ConfigError(
            f"step {step.name!r} uses parameter {err.args[0]!r}, which is not a pipeline input"
        ) from err


def _add_pipeline_inputs(root: Any, params: Iterable[PipelineParam]) -> None:
    inputs = root.input_definitions.parameters
    for param in params:
        spec = inputs[param.name]
        spec.parameter_type = _parameter_type(param)
        spec.is_optional = True
        if param.default is not None:
            _set_value(spec.default_value, param)


def _set_value(target: Any, param: PipelineParam) -> None:
    """Write a default into a ``google.protobuf.Value`` the way kfp does (numbers become doubles)."""
    from google.protobuf import json_format

    try:
        json_format.ParseDict(param.default, target)
    except (json_format.ParseError, TypeError, ValueError) as err:
        raise ConfigError(
            [Problem("parameters", param.key, f"default cannot be written to the spec: {err}")]
        ) from err


def _parameter_type(param: PipelineParam) -> int:
    return _parameter_type_number(param.type)


@cache
def _parameter_type_number(param_type: ParamType) -> int:
    value: int = pb2().ParameterType.ParameterTypeEnum.Value(param_type.value)
    return value


@dataclass
class _Emitter:
    """Adds steps to one spec; holds the maps built once so each step costs the same."""

    plan: Plan
    spec: Any
    deployment: Any  # PipelineDeploymentConfig, copied into spec.deployment_spec at the end
    params: Mapping[str, PipelineParam]  # by Kedro key

    def add_steps(self, parent: Any, prefix: str) -> list[str]:
        """Add every main step to ``parent``'s DAG; return the names of the pipeline inputs they read."""
        used: dict[str, PipelineParam] = {}
        for step in self.plan.steps:
            resources = self.plan.resources.get(step.name)
            step_params = self._step_params(step)
            component = self._add_component(step, step_params)
            args = argv.build_step_args(self.plan, step, resources)
            depends_on = step.depends_on
            custom_job = resources is not None and resources.custom_job
            if self.plan.mlflow:
                _add_string_input(component, argv.MLFLOW_RUN_ID_INPUT)
                args += argv.mlflow_step_args(custom_job)
                depends_on = (*depends_on, MLFLOW_START_STEP.name)
            if resources is not None and custom_job:
                self._add_custom_job(step, component, resources, args)
            else:
                self._add_executor(step, resources, args)
            task = _add_task(parent.dag.tasks[step.name], self.plan, step, depends_on, resources)
            for param in step_params:
                task.inputs.parameters[param.name].component_input_parameter = prefix + param.name
                used[param.name] = param
            if self.plan.mlflow:
                source = task.inputs.parameters[argv.MLFLOW_RUN_ID_INPUT].task_output_parameter
                source.producer_task = MLFLOW_START_STEP.name
                source.output_parameter_key = argv.MLFLOW_RUN_ID_OUTPUT
        if prefix:
            for param in used.values():
                parent.input_definitions.parameters[prefix + param.name].parameter_type = _parameter_type(
                    param
                )
        return sorted(used)

    def add_mlflow_start(self, parent: Any) -> None:
        """The ``mlflow-start-run`` task, first in ``parent``'s DAG; its output is the MLflow run id."""
        step = MLFLOW_START_STEP
        component = self._add_component(step, ())
        output = component.output_definitions.parameters[argv.MLFLOW_RUN_ID_OUTPUT]
        output.parameter_type = _parameter_type_number(ParamType.STRING)
        self._add_executor(step, None, argv.build_mlflow_start_args(self.plan))
        _add_task(parent.dag.tasks[step.name], self.plan, step, (), _NOT_CACHED)

    def add_exit_step(self, step: Step) -> None:
        """The on-exit task: runs after the exit handler whatever its outcome, with its final status."""
        pb = pb2()
        resources = _NOT_CACHED if step == MLFLOW_END_STEP else self.plan.resources.get(step.name)
        if resources is not None:
            resources = customjob.as_container_resources(resources)
        step_params = self._step_params(step)
        component = self._add_component(step, step_params)
        status = component.input_definitions.parameters[STATUS_INPUT]
        status.parameter_type = pb.ParameterType.ParameterTypeEnum.TASK_FINAL_STATUS
        status.is_optional = True
        self._add_executor(step, resources, exit_step_args(self.plan, step, resources))
        task = _add_task(self.spec.root.dag.tasks[step.name], self.plan, step, (EXIT_HANDLER,), resources)
        task.trigger_policy.strategy = (
            pb.PipelineTaskSpec.TriggerPolicy.TriggerStrategy.ALL_UPSTREAM_TASKS_COMPLETED
        )
        for param in step_params:
            task.inputs.parameters[param.name].component_input_parameter = param.name
        task.inputs.parameters[STATUS_INPUT].task_final_status.producer_task = EXIT_HANDLER

    def _step_params(self, step: Step) -> list[PipelineParam]:
        return _step_params(step, self.params)

    def _add_component(self, step: Step, step_params: Iterable[PipelineParam]) -> Any:
        component = self.spec.components["comp-" + step.name]
        component.executor_label = "exec-" + step.name
        for param in step_params:
            component.input_definitions.parameters[param.name].parameter_type = _parameter_type(param)
        for name in argv.artifact_names(self.plan.artifacts.get(step.name, ())).values():
            kind = component.output_definitions.artifacts[name].artifact_type
            kind.schema_title, kind.schema_version = DATASET_SCHEMA, DATASET_SCHEMA_VERSION
        return component

    def _add_custom_job(self, step: Step, component: Any, resources: Resources, args: list[str]) -> None:
        """The step as a CustomJob launcher: our container rides in the worker pool spec on its machine."""
        if resources.accelerator_count is not None and resources.accelerator_count < 0:
            raise _resource_error(
                step, "accelerator_count", str(resources.accelerator_count), "a non-negative integer"
            )
        pools = customjob.worker_pool_specs(
            resources, resources.image or self.plan.image, argv.STEP_COMMAND, args, self.plan.extra_env
        )
        customjob.fill_component(component, step, resources, pools)
        customjob.fill_launcher(self.deployment.executors["exec-" + step.name].container)

    def _add_executor(self, step: Step, resources: Resources | None, args: list[str]) -> None:
        container = self.deployment.executors["exec-" + step.name].container
        container.image = (resources.image if resources is not None else None) or self.plan.image
        container.command.extend(argv.STEP_COMMAND)
        container.args.extend(args)
        for name in sorted(self.plan.extra_env):
            container.env.add(name=name, value=self.plan.extra_env[name])
        if resources is not None:
            _set_resources(container.resources, step, resources)


def _add_string_input(component: Any, name: str) -> None:
    component.input_definitions.parameters[name].parameter_type = _parameter_type_number(ParamType.STRING)


def _set_resources(target: Any, step: Step, resources: Resources) -> None:
    """Container limits exactly as kfp writes them: the string field plus its deprecated numeric twin."""
    if resources.cpu is not None:
        if not _CPU_RE.match(resources.cpu):
            raise _resource_error(step, "cpu", resources.cpu, 'a number, or an integer followed by "m"')
        target.resource_cpu_limit = resources.cpu
        target.cpu_limit = _cpu_to_float(resources.cpu)
    if resources.memory is not None:
        if not _MEMORY_RE.match(resources.memory):
            raise _resource_error(
                step, "memory", resources.memory, "an integer with an optional unit: G, Gi, M, Mi…"
            )
        target.resource_memory_limit = resources.memory
        target.memory_limit = _memory_to_float(resources.memory)
    if resources.accelerator_type is not None:
        count = 1 if resources.accelerator_count is None else resources.accelerator_count
        if count < 0:
            raise _resource_error(step, "accelerator_count", str(count), "a non-negative integer")
        target.accelerator.resource_type = resources.accelerator_type
        target.accelerator.type = resources.accelerator_type
        target.accelerator.resource_count = str(count)
        target.accelerator.count = count
    elif resources.accelerator_count is not None:
        raise ConfigError(
            [Problem("", f"{step.name}.accelerator_count", "needs an accelerator type as well")]
        )


def _resource_error(step: Step, key: str, value: str, expected: str) -> ConfigError:
    return ConfigError([Problem("", f"{step.name}.{key}", f"{value!r} is not valid: expected {expected}")])


def _cpu_to_float(cpu: str) -> float:
    return float(cpu[:-1]) / 1000 if cpu.endswith("m") else float(cpu)


def _memory_to_float(memory: str) -> float:
    """Memory in units of 10**9 bytes, computed with the same float operations as kfp."""
    for suffix in ("Ei", "Pi", "Ti", "Gi", "Mi", "Ki", "E", "P", "T", "G", "M", "K"):
        if memory.endswith(suffix):
            number = float(memory[: -len(suffix)])
            return number if suffix == "G" else number * _MEMORY_UNITS[suffix] / 10**9
    return float(memory) / 10**9


def _add_task(
    task: Any, plan: Plan, step: Step, depends_on: Iterable[str], resources: Resources | None
) -> Any:
    task.task_info.name = step.name
    task.component_ref.name = "comp-" + step.name
    task.dependent_tasks.extend(sorted(set(depends_on)))
    caching = resources.caching if resources is not None and resources.caching is not None else plan.caching
    task.caching_options.enable_cache = caching
    if resources is not None and resources.retries > 0:
        policy = task.retry_policy
        policy.max_retry_count = resources.retries
        backoff = resources.retry_backoff or _RETRY_BACKOFF_DEFAULT
        policy.backoff_duration.seconds = _duration_seconds(step, backoff)
        policy.backoff_factor = _RETRY_BACKOFF_FACTOR
        policy.backoff_max_duration.seconds = _RETRY_MAX_DURATION_SECONDS
    return task


def _duration_seconds(step: Step, duration: str) -> int:
    """Seconds in ``"60s"``, ``"5m"``, ``"1 hour"``… — the forms kfp's ``set_retry`` accepts."""
    parts = [part for part in re.split(r"(\D+)", duration.replace(" ", "")) if part]
    unit = parts[1][0] if len(parts) == 2 else ""
    if len(parts) != 2 or not parts[0].isdigit() or unit not in _SECONDS_PER_UNIT:
        raise _resource_error(step, "retry_backoff", duration, 'an integer and a unit such as "60s" or "5m"')
    return int(parts[0]) * _SECONDS_PER_UNIT[unit]


def _add_exit_handler_task(task: Any, used: Iterable[str]) -> None:
    task.task_info.name = EXIT_HANDLER
    task.component_ref.name = "comp-" + EXIT_HANDLER
    for name in used:
        task.inputs.parameters[_CHANNEL_PREFIX + name].component_input_parameter = name
