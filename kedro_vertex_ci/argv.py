"""The step command line: built at compile time, parsed by the step runtime. One module, so the two agree.

A compiled step runs ``kedro-vertex-ci step`` with one argv item per value (no shell strings: a parameter
containing quotes or spaces travels intact). Vertex substitutes the ``{{$...}}`` placeholders before the
container starts; ``run-local`` substitutes them the same way.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from typing import Any

from .model import ParamType, Plan, Resources, Step

STEP_COMMAND = ("kedro-vertex-ci", "step")
RUN_ID_PLACEHOLDER = "{{$.pipeline_job_uuid}}"
JOB_NAME_PLACEHOLDER = "{{$.pipeline_job_name}}"
ROOT_PLACEHOLDER = "{{$.pipeline_root}}"


def input_placeholder(name: str) -> str:
    """The KFP placeholder Vertex replaces with the value of the component input ``name``."""
    return "{{$.inputs.parameters['" + name + "']}}"


def build_step_args(plan: Plan, step: Step, resources: Resources | None = None) -> list[str]:
    """The args (after :data:`STEP_COMMAND`) that run exactly ``step``'s nodes with its parameters."""
    args = ["--pipeline", plan.kedro_pipeline]
    if plan.env:
        args += ["--env", plan.env]
    for node in step.nodes:
        args += ["--node", node]
    args += ["--run-id", RUN_ID_PLACEHOLDER, "--job-name", JOB_NAME_PLACEHOLDER, "--root", ROOT_PLACEHOLDER]
    for dataset in step.reads:
        args += ["--read", dataset]
    for dataset in step.writes:
        args += ["--write", dataset]
    by_key = {p.key: p for p in plan.params}
    for key in step.parameters:
        param = by_key.get(key)
        if param is None:  # null-valued or missing: the step reads the project's own value
            continue
        flag = "--param" if param.type is ParamType.STRING else "--param-json"
        args += [flag, f"{param.key}={input_placeholder(param.name)}"]
    if resources is not None and resources.timeout_seconds:
        args += ["--timeout", str(resources.timeout_seconds)]
    return args


@dataclass(frozen=True)
class StepInvocation:
    """What one step process must do, decoded from its argv."""

    pipeline: str
    env: str | None
    nodes: tuple[str, ...]
    run_id: str
    job_name: str
    root: str
    reads: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()
    params: dict[str, Any] = field(default_factory=dict)
    timeout: int | None = None
    on_exit: bool = False
    status: str | None = None
    project: str | None = None


def _split_assignment(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ValueError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def parse_step_args(argv: list[str]) -> StepInvocation:
    """Decode a step command line (the inverse of :func:`build_step_args`). Raises ``ValueError``."""
    parser = argparse.ArgumentParser(prog="kedro-vertex-ci step", add_help=True, exit_on_error=False)
    parser.add_argument("--pipeline", default="__default__")
    parser.add_argument("--env", default=None)
    parser.add_argument("--node", action="append", default=[])
    parser.add_argument("--run-id", required=True)
    parser.add_argument("--job-name", default="")
    parser.add_argument("--root", required=True)
    parser.add_argument("--read", action="append", default=[])
    parser.add_argument("--write", action="append", default=[])
    parser.add_argument("--param", action="append", default=[])
    parser.add_argument("--param-json", action="append", default=[])
    parser.add_argument("--timeout", type=int, default=None)
    parser.add_argument("--on-exit", action="store_true")
    parser.add_argument("--status", default=None)
    parser.add_argument("--project", default=None)
    ns = parser.parse_args(argv)
    params: dict[str, Any] = {}
    for item in ns.param:
        key, value = _split_assignment(item)
        params[key] = value
    for item in ns.param_json:
        key, value = _split_assignment(item)
        try:
            params[key] = json.loads(value)
        except json.JSONDecodeError as err:
            raise ValueError(f"parameter {key!r}: not valid JSON: {value!r}") from err
    return StepInvocation(
        pipeline=ns.pipeline,
        env=ns.env,
        nodes=tuple(ns.node),
        run_id=ns.run_id,
        job_name=ns.job_name,
        root=ns.root,
        reads=tuple(ns.read),
        writes=tuple(ns.write),
        params=params,
        timeout=ns.timeout,
        on_exit=ns.on_exit,
        status=ns.status,
        project=ns.project,
    )
