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

from . import __version__
from .model import ConfigProvider, HostAlias, ParamType, Plan, Resources, Step

STEP_COMMAND = ("kedro-vertex-ci", "step")
VERSION_FLAG = "--kvc-version"  # the compiler's version, recorded in every step's args
RUN_ID_PLACEHOLDER = "{{$.pipeline_job_uuid}}"
JOB_NAME_PLACEHOLDER = "{{$.pipeline_job_name}}"
ROOT_PLACEHOLDER = "{{$.pipeline_root}}"
# kfp's dsl.PIPELINE_JOB_SCHEDULE_TIME_UTC_PLACEHOLDER / PIPELINE_JOB_CREATE_TIME_UTC_PLACEHOLDER
SCHEDULE_TIME_PLACEHOLDER = "{{$.pipeline_job_schedule_time_utc}}"
CREATE_TIME_PLACEHOLDER = "{{$.pipeline_job_create_time_utc}}"
# kfp's dsl.PIPELINE_JOB_RESOURCE_NAME_PLACEHOLDER: projects/P/locations/L/pipelineJobs/ID on Vertex
PIPELINE_JOB_PLACEHOLDER = "{{$.pipeline_job_resource_name}}"


EXECUTOR_INPUT_PLACEHOLDER = "{{$}}"  # the whole KFP ExecutorInput as JSON (outputs.outputFile among it)


def artifact_names(datasets: tuple[str, ...]) -> dict[str, str]:
    """Output-artifact names (identifiers, unique in the step) for catalog datasets, in the given order."""
    import re

    names: dict[str, str] = {}
    taken: set[str] = set()
    for dataset in datasets:
        base = re.sub(r"\W", "_", dataset).strip("_") or "dataset"
        base = base if base[0].isalpha() else f"d_{base}"
        name, n = base, 2
        while name in taken:
            name, n = f"{base}_{n}", n + 1
        taken.add(name)
        names[dataset] = name
    return names


def input_placeholder(name: str) -> str:
    """The KFP placeholder Vertex replaces with the value of the component input ``name``."""
    return "{{$.inputs.parameters['" + name + "']}}"


def output_file_placeholder(name: str) -> str:
    """The KFP placeholder Vertex replaces with the file path the task writes its output ``name`` to."""
    return "{{$.outputs.parameters['" + name + "'].output_file}}"


MLFLOW_RUN_ID_INPUT = "mlflow_run_id"  # each main step's input carrying the MLflow run id
MLFLOW_RUN_ID_OUTPUT = "run_id"  # the mlflow-start-run task's output parameter


def mlflow_step_args() -> list[str]:
    """Appended to each main step's args when the plan uses MLflow: the run to log into."""
    return ["--mlflow-run-id", input_placeholder(MLFLOW_RUN_ID_INPUT)]


def build_mlflow_start_args(plan: Plan) -> list[str]:
    """The ``mlflow-start-run`` task: no nodes; it writes the new run's id to its output parameter."""
    return [
        *build_step_args(plan, Step(name="mlflow-start-run", nodes=())),
        "--mlflow-start",
        "--mlflow-run-id-output",
        output_file_placeholder(MLFLOW_RUN_ID_OUTPUT),
    ]


def build_mlflow_end_args(plan: Plan, status_placeholder: str) -> list[str]:
    """The ``mlflow-end-run`` exit task: no nodes; it ends the job's run with the pipeline's final status."""
    return [*build_step_args(plan, Step(name="mlflow-end-run", nodes=())), "--mlflow-end", "--status",
            status_placeholder]


def build_step_args(plan: Plan, step: Step, resources: Resources | None = None) -> list[str]:
    """The args (after :data:`STEP_COMMAND`) that run exactly ``step``'s nodes with its parameters."""
    args = ["--pipeline", plan.kedro_pipeline]
    if plan.env:
        args += ["--env", plan.env]
    for node in step.nodes:
        args += ["--node", node]
    args += ["--run-id", RUN_ID_PLACEHOLDER, "--job-name", JOB_NAME_PLACEHOLDER, "--root", ROOT_PLACEHOLDER]
    if plan.run_times:
        args += ["--scheduled-time", SCHEDULE_TIME_PLACEHOLDER, "--create-time", CREATE_TIME_PLACEHOLDER]
    if plan.experiment:  # a run a schedule started joins the experiment from its steps (runtime/experiment.py)
        args += ["--pipeline-job", PIPELINE_JOB_PLACEHOLDER, "--experiment", plan.experiment]
        if plan.experiment_description:
            args += ["--experiment-description", plan.experiment_description]
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
    artifacts = plan.artifacts.get(step.name, ())
    if artifacts:
        args += ["--executor-input", EXECUTOR_INPUT_PLACEHOLDER]
        for dataset, name in artifact_names(artifacts).items():
            args += ["--artifact", f"{dataset}={name}"]
    if resources is not None and resources.timeout_seconds:
        args += ["--timeout", str(resources.timeout_seconds)]
    for alias in plan.host_aliases:
        args += ["--host-alias", format_host_alias(alias)]
    if plan.config_providers:
        args += ["--dynamic-config", format_config_providers(plan.config_providers)]
    return [VERSION_FLAG, __version__, *args]


def _release(version: str) -> tuple[int, ...]:
    parts = []
    for part in version.split(".")[:2]:
        digits = "".join(ch for ch in part if ch.isdigit()) or "0"
        parts.append(int(digits))
    return tuple(parts)


def compatible(compiled_by: str, installed: str) -> bool:
    """Same major version (same minor while the major is 0): the step command line did not change shape."""
    a, b = _release(compiled_by), _release(installed)
    return a[:2] == b[:2] if a[:1] == (0,) or b[:1] == (0,) else a[:1] == b[:1]


def version_mismatch(argv: list[str], installed: str = "") -> str | None:
    """Why this image cannot run a step compiled by another kedro-vertex-ci, else None.

    Read before the full parse: a newer compiler may pass options this runtime does not know, and the user
    must hear "rebuild the image", not "unrecognized arguments".
    """
    installed = installed or __version__
    if VERSION_FLAG not in argv or argv.index(VERSION_FLAG) + 1 >= len(argv):
        return None
    compiled_by = argv[argv.index(VERSION_FLAG) + 1]
    if compatible(compiled_by, installed):
        return None
    return (f"this pipeline was compiled by kedro-vertex-ci {compiled_by}, but the image runs kedro-vertex-ci "
            f"{installed}. Rebuild the image so it installs kedro-vertex-ci=={compiled_by} (the Dockerfile "
            f"`init --github` writes pins it; `kedro-vertex-ci build`, or push again), or compile with "
            f"kedro-vertex-ci {installed}.")


def format_host_alias(alias: HostAlias) -> str:
    """``IP=host1,host2``: one argv item per hosts-file line."""
    return f"{alias.ip}={','.join(alias.hostnames)}"


def parse_host_alias(text: str) -> HostAlias:
    """The inverse of :func:`format_host_alias`. Raises ``ValueError``."""
    ip, hostnames = _split_assignment(text)
    names = tuple(name for name in hostnames.split(",") if name)
    if not names:
        raise ValueError(f"--host-alias {text!r}: expected IP=HOST[,HOST...]")
    return HostAlias(ip=ip, hostnames=names)


def format_config_providers(providers: tuple[ConfigProvider, ...]) -> str:
    """The providers as one compact, key-sorted JSON argv item (no shell quoting involved)."""
    return json.dumps(
        [{"cls": p.cls, "params": dict(p.params)} for p in providers], sort_keys=True, separators=(",", ":")
    )


def parse_config_providers(text: str) -> tuple[ConfigProvider, ...]:
    """The inverse of :func:`format_config_providers`. Raises ``ValueError``."""
    try:
        items = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"--dynamic-config: not valid JSON: {err}") from err
    if not isinstance(items, list) or not all(
        isinstance(i, dict) and isinstance(i.get("cls"), str) and isinstance(i.get("params", {}), dict)
        for i in items
    ):
        raise ValueError('--dynamic-config: expected a JSON list of {"cls": str, "params": {...}}')
    return tuple(ConfigProvider(cls=i["cls"], params=i.get("params", {})) for i in items)


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
    host_aliases: tuple[HostAlias, ...] = ()
    config_providers: tuple[ConfigProvider, ...] = ()
    mlflow_run_id: str | None = None  # log into this MLflow run (exported as MLFLOW_RUN_ID)
    mlflow_start: bool = False  # start the job's MLflow run instead of running nodes
    mlflow_run_id_output: str | None = None  # where --mlflow-start writes the run id
    mlflow_end: bool = False  # end the job's MLflow run with --status (after the nodes, if any)
    executor_input: str | None = None  # KFP's ExecutorInput JSON (with run_config.artifacts)
    artifacts: dict[str, str] = field(default_factory=dict)  # catalog dataset -> output artifact name
    scheduled_time: str | None = None  # the schedule's fire time (empty for a one-off run)
    create_time: str | None = None  # the job's create time
    pipeline_job: str | None = None  # the job's resource name (with run_config.experiment_name)
    experiment: str | None = None  # run_config.experiment_name
    experiment_description: str | None = None


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
    parser.add_argument("--host-alias", action="append", default=[])
    parser.add_argument("--dynamic-config", default=None)
    parser.add_argument("--mlflow-run-id", default=None)
    parser.add_argument("--mlflow-start", action="store_true")
    parser.add_argument("--mlflow-run-id-output", default=None)
    parser.add_argument("--mlflow-end", action="store_true")
    parser.add_argument(VERSION_FLAG, default=None)
    parser.add_argument("--executor-input", default=None)
    parser.add_argument("--artifact", action="append", default=[])
    parser.add_argument("--scheduled-time", default=None)
    parser.add_argument("--create-time", default=None)
    parser.add_argument("--pipeline-job", default=None)
    parser.add_argument("--experiment", default=None)
    parser.add_argument("--experiment-description", default=None)
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
        host_aliases=tuple(parse_host_alias(item) for item in ns.host_alias),
        config_providers=parse_config_providers(ns.dynamic_config) if ns.dynamic_config else (),
        mlflow_run_id=ns.mlflow_run_id or None,
        mlflow_start=ns.mlflow_start,
        mlflow_run_id_output=ns.mlflow_run_id_output,
        mlflow_end=ns.mlflow_end,
        executor_input=ns.executor_input,
        artifacts=dict(_split_assignment(item) for item in ns.artifact),
        scheduled_time=ns.scheduled_time,
        create_time=ns.create_time,
        pipeline_job=ns.pipeline_job or None,
        experiment=ns.experiment or None,
        experiment_description=ns.experiment_description or None,
    )
