"""One local dry run: spec dict in, outcome out. The run folder is the only thing written.

Layout under the local root (a folder standing in for ``gs://``)::

    <root>/<run id>/run.json        job name, spec hash (kept so a rerun with the same id renders the same)
    <root>/<run id>/logs/<task>.log  each step's stdout + stderr
    <root>/<run id>/result.json     the machine-readable result (what ``--json`` prints)
    <root>/<run id>/node-durations.json  seconds per Kedro node, measured by the steps (grouping ``auto``)
    <root>/<run id>/outputs/<task>/<name>  task output parameters (``{{$.outputs.parameters[...].output_file}}``)
    <root>/kedro-vertex-ci/<run id>/  data the step runtime passes between steps
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..errors import ConfigError
from .executor import Observer, State, StepOutcome, execute
from .placeholders import (
    RunContext,
    check_renderable,
    output_file,
    render_command,
    render_env,
    resolve_params,
)
from .runners import Invocation
from .specgraph import FromTask, Task, TaskGraph, build_graph, select_tasks, skip_tasks, split_job


class Runner(Protocol):
    name: str

    def run(self, inv: Invocation, log: Path) -> int: ...

    def terminate(self) -> None: ...


@dataclass(frozen=True)
class RunOptions:
    """What the user chose for this run (``root`` is the local folder; ``pipeline_root`` what steps get)."""

    root: Path
    run_id: str | None = None
    pipeline_root: str | None = None  # default: ``root`` (absolute); may be gs://... with an emulator
    overrides: Mapping[str, str] = field(default_factory=dict)
    aliases: Mapping[str, str] = field(default_factory=dict)  # Kedro parameter key -> spec input name
    max_parallel: int | None = None
    fail_fast: bool = False  # Vertex failure_policy "fast"; default "slow" as on Vertex
    from_nodes: Sequence[str] = ()
    to_nodes: Sequence[str] = ()
    resume: bool = False  # skip the steps an earlier attempt with this run id finished
    simulate_step_overhead: float = 0.0  # seconds each step waits before it starts, as on Vertex (plan's S)


@dataclass(frozen=True)
class Prepared:
    """A validated run: the graph to execute, typed parameters, steps reused from an earlier attempt."""

    graph: TaskGraph
    params: dict[str, Any]
    reused: tuple[StepOutcome, ...] = ()
    order: tuple[str, ...] = ()  # every task of the spec, in graph order (for the result)


@dataclass(frozen=True)
class RunResult:
    run_id: str
    job_name: str
    pipeline: str
    runner: str
    run_dir: Path
    pipeline_root: str
    params: Mapping[str, Any]
    steps: tuple[StepOutcome, ...]
    duration: float

    @property
    def succeeded(self) -> bool:
        return all(s.state is State.DONE for s in self.steps)

    @property
    def exit_code(self) -> int:
        return 0 if self.succeeded else 1

    @property
    def failed(self) -> list[StepOutcome]:
        return [s for s in self.steps if s.state is State.FAILED]

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "job_name": self.job_name,
            "pipeline": self.pipeline,
            "runner": self.runner,
            "run_dir": str(self.run_dir),
            "pipeline_root": self.pipeline_root,
            "params": dict(self.params),
            "state": "succeeded" if self.succeeded else "failed",
            "exit_code": self.exit_code,
            "duration_seconds": round(self.duration, 3),
            "steps": [
                {
                    "name": s.name,
                    "state": s.state.value,
                    "started_seconds": None if s.started is None else round(s.started, 3),
                    "duration_seconds": None if s.duration is None else round(s.duration, 3),
                    "exit_code": s.exit_code,
                    "log": None if s.log is None else str(s.log),
                    "reason": s.reason,
                }
                for s in self.steps
            ],
        }


def new_run_id() -> str:
    return str(uuid.uuid4())


def check_run_id(run_id: str) -> str:
    """A run id becomes a folder name and a Vertex uuid: keep it to safe characters."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}", run_id):
        raise ConfigError(f"--run-id {run_id!r}: use letters, digits, '.', '_' or '-' (at most 128)")
    return run_id


def prepare(spec_data: Mapping[str, Any], options: RunOptions) -> Prepared:
    """Validate everything that can be validated before a file is written: graph, subset, parameters."""
    if options.run_id is not None:
        check_run_id(options.run_id)
    spec, job_values = split_job(spec_data)
    full = build_graph(spec)
    graph = select_tasks(full, options.from_nodes, options.to_nodes)
    params = resolve_params(graph.inputs, options.overrides, job_values, options.aliases)
    reused: tuple[StepOutcome, ...] = ()
    if options.resume:
        reused = _finished_earlier(options, graph)
        graph = skip_tasks(graph, {s.name for s in reused})
    return Prepared(graph, params, reused, tuple(t.name for t in full.tasks))


def _finished_earlier(options: RunOptions, graph: TaskGraph) -> tuple[StepOutcome, ...]:
    """Steps an earlier attempt with the same run id finished (from its result.json)."""
    if options.run_id is None:
        raise ConfigError("--resume needs the --run-id of the earlier run")
    previous = options.root.resolve() / options.run_id / "result.json"
    try:
        steps = json.loads(previous.read_text(encoding="utf-8"))["steps"]
    except FileNotFoundError as err:
        raise ConfigError(
            f"--resume: no earlier run {options.run_id!r} under {options.root} ({previous})"
        ) from err
    except (ValueError, KeyError, TypeError) as err:
        raise ConfigError(f"--resume: {previous} is not a run-local result ({err})") from err
    names = {t.name for t in graph.tasks if not t.run_after_failure}
    return tuple(
        StepOutcome(s["name"], State.DONE, Path(s["log"]) if s.get("log") else None, 0, reason="done earlier")
        for s in steps
        if s.get("state") == State.DONE.value and s.get("name") in names
    )


def run_spec(
    spec_data: Mapping[str, Any],
    runner: Runner,
    options: RunOptions,
    observer: Observer | None = None,
    on_prepared: Callable[[TaskGraph, RunContext], None] | None = None,
) -> RunResult:
    """Interpret ``spec_data`` (a PipelineSpec or PipelineJob body) and run it with ``runner``."""
    prepared = prepare(spec_data, options)
    graph, params = prepared.graph, prepared.params
    run_id = check_run_id(options.run_id or new_run_id())
    root = options.root.resolve()
    run_dir = root / run_id
    job_name = _job_name(run_dir, graph.pipeline_name)
    pipeline_root = options.pipeline_root or str(root)
    ctx = RunContext(
        job_name=job_name,
        run_id=run_id,
        root=pipeline_root,
        params=params,
        job_resource=f"projects/local/locations/local/pipelineJobs/{job_name}",
        outputs_dir=str(run_dir / "outputs"),
    )
    check_renderable(graph, ctx)
    _write_json(
        run_dir / "run.json", {"run_id": run_id, "job_name": job_name, "spec_sha256": _digest(spec_data)}
    )
    if on_prepared:
        on_prepared(graph, ctx)
    logs = run_dir / "logs"

    def launch(task: Task, statuses: Mapping[str, str]) -> int:
        if options.simulate_step_overhead > 0:  # holds the step's slot, like a VM starting on Vertex
            time.sleep(options.simulate_step_overhead)
        produced = read_outputs(task, ctx)
        command, args = render_command(task, ctx, statuses, produced)
        inv = Invocation(
            task=task.name,
            image=task.container.image,
            command=tuple(command),
            args=tuple(args),
            env=render_env(task, ctx, produced),
            cpu=task.container.cpu,
            memory=task.container.memory,
        )
        return runner.run(inv, logs / f"{task.name}.log")

    begin = time.monotonic()
    try:
        outcomes = execute(
            graph,
            launch,
            max_parallel=options.max_parallel,
            observer=observer,
            fail_fast=options.fail_fast,
            log_path=lambda name: logs / f"{name}.log",
            on_interrupt=runner.terminate,
        )
    finally:
        close = getattr(runner, "close", None)  # a runner may keep a helper process for the run
        if close is not None:
            close()
    result = RunResult(
        run_id=run_id,
        job_name=job_name,
        pipeline=graph.pipeline_name,
        runner=runner.name,
        run_dir=run_dir,
        pipeline_root=pipeline_root,
        params=params,
        steps=_in_order([*prepared.reused, *outcomes], prepared.order),
        duration=time.monotonic() - begin,
    )
    from ..durations import collect_run_durations

    collect_run_durations(pipeline_root, run_id, run_dir)  # before result.json: its mtime dates the run
    _write_json(run_dir / "result.json", result.to_json())
    return result


def read_outputs(task: Task, ctx: RunContext) -> dict[tuple[str, str], str]:
    """The upstream output parameters ``task`` reads, from the files their producers wrote.

    Files stay in the run folder, so a ``--resume`` of the same run id still finds them.
    """
    produced = {}
    for source in task.inputs.values():
        if isinstance(source, FromTask):
            path = Path(output_file(ctx, source.task, source.key))
            if path.is_file():
                produced[(source.task, source.key)] = path.read_text(encoding="utf-8")
    return produced


def _in_order(outcomes: Sequence[StepOutcome], order: Sequence[str]) -> tuple[StepOutcome, ...]:
    rank = {name: i for i, name in enumerate(order)}
    return tuple(sorted(outcomes, key=lambda o: rank.get(o.name, len(rank))))


def _job_name(run_dir: Path, pipeline_name: str) -> str:
    """Vertex names a job ``<pipeline>-<timestamp>``; a rerun with the same run id keeps the first name."""
    previous = run_dir / "run.json"
    if previous.is_file():
        try:
            return str(json.loads(previous.read_text(encoding="utf-8"))["job_name"])
        except (ValueError, KeyError):
            pass
    return f"{pipeline_name}-{time.strftime('%Y%m%d%H%M%S', time.gmtime())}"


def _digest(data: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    """Write atomically: a reader never sees half a file, a crash never leaves one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(data, out, indent=2, sort_keys=False)
            out.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
