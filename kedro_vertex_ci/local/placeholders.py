"""Vertex placeholders, substituted the way Vertex does before a container starts.

Pure. Parameter values are rendered like the KFP launcher's ``PbValueToText``: strings raw, numbers in plain
decimal without a trailing ``.0`` (a spec stores every number as a double: ``3.0`` renders as ``3``), booleans
``true``/``false``, lists and structs as compact JSON with integral numbers written as integers.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ..errors import ConfigError
from ..params import set_nested, spec_value_problem
from .specgraph import Constant, FinalStatus, FromPipeline, FromTask, PipelineInput, Task, TaskGraph

_PLACEHOLDER = re.compile(r"\{\{\$(?:\.[^{}]*)?\}\}")
_INPUT = re.compile(r"\{\{\$\.inputs\.parameters\['([^']+)'\]\}\}")
_OUTPUT_FILE = re.compile(r"\{\{\$\.outputs\.parameters\['([^']+)'\]\.output_file\}\}")


@dataclass(frozen=True)
class RunContext:
    """The run-wide values Vertex fills in: job name and uuid, pipeline root, typed pipeline inputs."""

    job_name: str
    run_id: str
    root: str
    params: Mapping[str, Any] = field(default_factory=dict)
    job_resource: str = ""  # pipelineJobResourceName reported to exit handlers
    outputs_dir: str = ""  # where tasks write output parameters: <outputs_dir>/<task>/<name>
    create_time: str = ""  # {{$.pipeline_job_create_time_utc}}
    schedule_time: str = ""  # {{$.pipeline_job_schedule_time_utc}}: run-local --scheduled-time


def output_file(ctx: RunContext, task: str, name: str) -> str:
    """The file behind ``{{$.outputs.parameters['name'].output_file}}`` for ``task`` (the launcher's role)."""
    return f"{ctx.outputs_dir}/{task}/{name}"


def render_value(value: Any, type_name: str = "") -> str:
    """One parameter value as text, as Vertex puts it into a command line."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return _render_number(value)
    if value is None:
        return "null" if type_name in ("LIST", "STRUCT") else ""
    return json.dumps(_integral_to_int(value), separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def _render_number(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    if math.isfinite(value) and value == int(value):
        return str(int(value))
    return format(Decimal(repr(value)), "f")


def _integral_to_int(value: Any) -> Any:
    if isinstance(value, float) and math.isfinite(value) and value == int(value):
        return int(value)
    if isinstance(value, list | tuple):
        return [_integral_to_int(v) for v in value]
    if isinstance(value, dict):
        return {k: _integral_to_int(v) for k, v in value.items()}
    return value


def parse_override(text: str, spec_input: PipelineInput) -> Any:
    """A ``--param NAME=VALUE`` value typed by the pipeline input it overrides. Raises :class:`ConfigError`."""
    kind = spec_input.type
    where = f"--param {spec_input.name}"
    shown = repr(text) if len(text) <= 60 else f"{text[:40]!r}… ({len(text)} characters)"
    try:
        if kind == "STRING":
            return text
        if kind == "NUMBER_INTEGER":
            value: Any = int(text)
        elif kind == "NUMBER_DOUBLE":
            value = float(text)
        elif kind == "BOOLEAN":
            lowered = text.strip().lower()
            if lowered not in ("true", "false"):
                raise ValueError("expected true or false")
            return lowered == "true"
        else:
            value = json.loads(text)
    except (ValueError, RecursionError) as err:  # json.JSONDecodeError is a ValueError
        reason = "nested too deeply" if isinstance(err, RecursionError) else str(err).splitlines()[0][:200]
        raise ConfigError(f"{where}: {shown} is not a valid {kind} value ({reason})") from err
    expected = list if kind == "LIST" else dict
    if kind in ("LIST", "STRUCT") and not isinstance(value, expected):
        raise ConfigError(f"{where}: {shown} is not a JSON {'list' if kind == 'LIST' else 'object'}")
    problem = spec_value_problem(value)
    if problem:
        raise ConfigError(f"{where}: {problem}")
    return value


def resolve_params(
    inputs: Mapping[str, PipelineInput],
    overrides: Mapping[str, str] = {},  # noqa: B006 - read only
    values: Mapping[str, Any] = {},  # noqa: B006 - already typed (a PipelineJob's parameterValues)
    aliases: Mapping[str, str] = {},  # noqa: B006 - Kedro key -> spec input name
) -> dict[str, Any]:
    """Typed pipeline inputs: spec defaults, then ``values``, then ``--param`` overrides.

    An override key may be a spec input name, a Kedro parameter key (through ``aliases``) or a dotted path
    into a STRUCT input (``model_options.test_size=0.3``).
    """
    params = {name: i.default for name, i in inputs.items() if i.has_default}
    params.update({k: v for k, v in values.items() if k in inputs})
    for key, text in overrides.items():
        name, path = _locate(key, inputs, aliases)
        if not path:
            params[name] = parse_override(text, inputs[name])
            continue
        params[name] = set_nested(params.get(name) or {}, ".".join([name, *path]), text)
    missing = sorted(set(inputs) - set(params))
    if missing:
        raise ConfigError(f"pipeline input(s) {missing} have no default; pass --param NAME=VALUE")
    return params


def _locate(
    key: str, inputs: Mapping[str, PipelineInput], aliases: Mapping[str, str]
) -> tuple[str, list[str]]:
    head, *path = key.split(".")
    for candidate, rest in (
        (key, []),
        (aliases.get(key, ""), []),
        (head, path),
        (aliases.get(head, ""), path),
    ):
        if candidate in inputs and (not rest or inputs[candidate].type == "STRUCT"):
            return candidate, rest
    raise ConfigError(f"--param {key}: the pipeline has no such input; inputs: {sorted(inputs)}")


def typed_inputs(
    task: Task,
    ctx: RunContext,
    statuses: Mapping[str, str] = {},  # noqa: B006
    produced: Mapping[tuple[str, str], str] | None = None,
) -> dict[str, Any]:
    """The value of each of ``task``'s input parameters, typed (an ExecutorInput's ``parameterValues``).

    ``produced`` holds upstream output parameters by (task, name) as written; None leaves them empty (to
    validate).
    """
    values: dict[str, Any] = {}
    for name, source in task.inputs.items():
        if isinstance(source, FromPipeline):
            values[name] = ctx.params.get(source.name)
        elif isinstance(source, Constant):
            values[name] = source.value
        elif isinstance(source, FinalStatus):
            values[name] = _final_status(source.group, ctx, statuses)
        elif isinstance(source, FromTask):
            if produced is None:
                values[name] = ""
            elif (source.task, source.key) in produced:
                values[name] = _typed_output(produced[(source.task, source.key)], task.input_types.get(name, ""))
            else:
                raise ConfigError(
                    f"task {task.name!r} input {name!r}: task {source.task!r} wrote no output {source.key!r}"
                )
    return values


def _typed_output(text: str, type_name: str) -> Any:
    """An output parameter file's text as the typed value a consumer gets (JSON for non-string types)."""
    if type_name in ("", "STRING"):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def task_inputs(
    task: Task,
    ctx: RunContext,
    statuses: Mapping[str, str] = {},  # noqa: B006
    produced: Mapping[tuple[str, str], str] | None = None,
) -> dict[str, str]:
    """The rendered value of each of ``task``'s input parameters.

    ``produced`` holds upstream output parameters by (task, name); None renders them empty (to validate).
    """
    return _rendered(task, typed_inputs(task, ctx, statuses, produced), produced)


def _rendered(
    task: Task, typed: Mapping[str, Any], produced: Mapping[tuple[str, str], str] | None
) -> dict[str, str]:
    rendered = {}
    for name, source in task.inputs.items():
        if isinstance(source, FromTask):  # the producer's text, as written
            rendered[name] = "" if produced is None else produced[(source.task, source.key)]
        else:
            rendered[name] = render_value(typed[name], task.input_types.get(name, ""))
    return rendered


def _final_status(group: str, ctx: RunContext, statuses: Mapping[str, str]) -> dict[str, Any]:
    """What Vertex passes to a ``dsl.PipelineTaskFinalStatus`` input."""
    failed = statuses.get(group) == "FAILED"
    return {
        "error": {"code": 2, "message": "a task in the exit handler failed"} if failed else {},
        "pipelineJobResourceName": ctx.job_resource,
        "pipelineTaskName": group,
        "state": "FAILED" if failed else "SUCCEEDED",
    }


def executor_input(task: Task, ctx: RunContext, values: Mapping[str, Any] | None = None) -> str:
    """The parts of KFP's ExecutorInput a step reads: its typed input parameters (``values``, from
    :func:`typed_inputs`) and where to write its ExecutorOutput, as Vertex's launcher hands them over."""
    document: dict[str, Any] = {"outputs": {"outputFile": output_file(ctx, task.name, "executor_output.json")}}
    if values:
        document["inputs"] = {"parameterValues": dict(values)}
    return json.dumps(document, sort_keys=True)


def substitute(
    text: str, task: Task, ctx: RunContext, inputs: Mapping[str, str], executor_json: str | None = None
) -> str:
    """Replace every ``{{$...}}`` placeholder in one argv item. Unknown placeholders raise ConfigError.

    ``executor_json`` is what ``{{$}}`` becomes (default: the ExecutorInput without input values).
    """

    def one(match: re.Match[str]) -> str:
        token = match.group(0)
        fixed = {
            "{{$.pipeline_job_name}}": ctx.job_name,
            "{{$.pipeline_job_uuid}}": ctx.run_id,
            "{{$.pipeline_root}}": ctx.root,
            "{{$.pipeline_task_name}}": task.name,
            "{{$.pipeline_task_uuid}}": f"{ctx.run_id}-{task.name}",
            "{{$.pipeline_job_resource_name}}": ctx.job_resource,
            "{{$.pipeline_job_create_time_utc}}": ctx.create_time,
            "{{$.pipeline_job_schedule_time_utc}}": ctx.schedule_time,
            "{{$}}": executor_json if executor_json is not None else executor_input(task, ctx),
        }
        if token in fixed:
            return fixed[token]
        written = _OUTPUT_FILE.fullmatch(token)
        if written and written.group(1) in task.outputs:
            return output_file(ctx, task.name, written.group(1))
        wanted = _INPUT.fullmatch(token)
        if wanted and wanted.group(1) in inputs:
            return inputs[wanted.group(1)]
        if wanted:
            raise ConfigError(f"spec: task {task.name!r} uses input {wanted.group(1)!r}, which is not wired")
        raise ConfigError(f"spec: task {task.name!r} uses placeholder {token}, which run-local does not know")

    return _PLACEHOLDER.sub(one, text)


def render_command(
    task: Task,
    ctx: RunContext,
    statuses: Mapping[str, str] = {},  # noqa: B006
    produced: Mapping[tuple[str, str], str] | None = None,
) -> tuple[list[str], list[str]]:
    """The container's ``command`` and ``args`` with placeholders substituted, ready to exec (no shell)."""
    typed = typed_inputs(task, ctx, statuses, produced)
    inputs = _rendered(task, typed, produced)
    wanted = any("{{$}}" in item for item in (*task.container.command, *task.container.args))
    executor_json = executor_input(task, ctx, typed) if wanted else None
    return (
        [substitute(a, task, ctx, inputs, executor_json) for a in task.container.command],
        [substitute(a, task, ctx, inputs, executor_json) for a in task.container.args],
    )


def render_env(
    task: Task, ctx: RunContext, produced: Mapping[tuple[str, str], str] | None = None
) -> dict[str, str]:
    """The container's static env (Vertex substitutes placeholders there too)."""
    inputs = task_inputs(task, ctx, produced=produced)
    return {k: substitute(v, task, ctx, inputs) for k, v in task.container.env}


def check_renderable(graph: TaskGraph, ctx: RunContext) -> None:
    """Render every task once so a bad spec fails before anything is written or started."""
    for task in graph.tasks:
        render_command(task, ctx)
        render_env(task, ctx)
