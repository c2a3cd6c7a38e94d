"""One local dry run: spec dict in, outcome out. The run folder is the only thing written.

Layout under the local root (a folder standing in for ``gs://``)::

    <root>/<run id>/run.json        job name, spec hash (kept so a rerun with the same id renders the same)
    <root>/<run id>/logs/<task>.log  each step's stdout + stderr
    <root>/<run id>/result.json     the run record: every step of the spec and its state, rewritten after
                                    each step ends (what ``--json`` prints; ``--resume`` reads it)
    <root>/<run id>/.lock           held (flock) by the run-local running this id
    <root>/<run id>/node-durations.json  seconds per Kedro node, measured by the steps (grouping ``auto``)
    <root>/<run id>/outputs/<task>/<name>  task output parameters (``{{$.outputs.parameters[...].output_file}}``)
    <root>/kedro-vertex-ci/<run id>/  data the step runtime passes between steps
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote

from ..errors import ConfigError
from .executor import Observer, RunInterrupted, State, StepOutcome, execute
from .locks import hold_run, is_run_active, register_active
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
    scheduled_time: str | None = None  # {{$.pipeline_job_schedule_time_utc}}, as a scheduled run gets it
    project: Path | None = None  # where other run-locals are looked for (they share its catalog files)


@dataclass(frozen=True)
class Prepared:
    """A validated run: the graph to execute, typed parameters, steps reused from an earlier attempt."""

    graph: TaskGraph
    params: dict[str, Any]
    reused: tuple[StepOutcome, ...] = ()
    order: tuple[str, ...] = ()  # every task of the spec, in graph order (for the result)


@dataclass(frozen=True)
class RunResult:
    """One run-local invocation. ``steps``: what it ran or reused (they decide the exit code);
    ``outside``: the spec's other steps (not selected by --from-nodes/--to-nodes), as an earlier attempt
    left them, so the record always covers the whole pipeline and a later ``--resume`` continues it."""

    run_id: str
    job_name: str
    pipeline: str
    runner: str
    run_dir: Path
    pipeline_root: str
    params: Mapping[str, Any]
    steps: tuple[StepOutcome, ...]
    duration: float
    outside: tuple[StepOutcome, ...] = ()
    interrupted: int | None = None  # the signal that stopped the run
    order: tuple[str, ...] = ()  # every task of the spec, in graph order
    running: bool = False  # a record written while the run is still going

    @property
    def succeeded(self) -> bool:
        return self.interrupted is None and all(s.state is State.DONE for s in self.steps)

    @property
    def exit_code(self) -> int:
        if self.interrupted is not None:
            return 128 + self.interrupted  # as a shell reports a process a signal ended: 130, 143
        return 0 if self.succeeded else 1

    @property
    def failed(self) -> list[StepOutcome]:
        return [s for s in self.steps if s.state is State.FAILED]

    @property
    def state(self) -> str:
        if self.running:
            return "running"
        if self.interrupted is not None:
            return "interrupted"
        return "succeeded" if self.succeeded else "failed"

    def to_json(self) -> dict[str, Any]:
        selected = {s.name for s in self.steps}
        every = _in_order([*self.steps, *self.outside], self.order)
        return {
            "run_id": self.run_id,
            "job_name": self.job_name,
            "pipeline": self.pipeline,
            "runner": self.runner,
            "run_dir": str(self.run_dir),
            "pipeline_root": self.pipeline_root,
            "params": dict(self.params),
            "state": self.state,
            "exit_code": None if self.running else self.exit_code,
            "duration_seconds": round(self.duration, 3),
            "steps": [_step_json(s, s.name in selected) for s in every],
        }


def _step_json(s: StepOutcome, selected: bool) -> dict[str, Any]:
    return {
        "name": s.name,
        "state": s.state.value,
        "started_seconds": None if s.started is None else round(s.started, 3),
        "duration_seconds": None if s.duration is None else round(s.duration, 3),
        "exit_code": s.exit_code,
        "log": None if s.log is None else str(s.log),
        "reason": s.reason,
        "selected": selected,
    }


def _step_from_json(item: Mapping[str, Any]) -> StepOutcome:
    return StepOutcome(
        str(item["name"]),
        State(item["state"]),
        Path(item["log"]) if item.get("log") else None,
        item.get("exit_code"),
        item.get("started_seconds"),
        item.get("duration_seconds"),
        str(item.get("reason") or ""),
    )


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
    warn: Callable[[str], None] | None = None,
) -> RunResult:
    """Interpret ``spec_data`` (a PipelineSpec or PipelineJob body) and run it with ``runner``.

    The run folder is locked for the run (a second run-local with this id is refused: :class:`RunInUse`);
    ``warn`` hears about other run-locals active in ``options.project``. The record (result.json) is
    rewritten after every step, so an interrupted or killed run can be resumed. An interrupt (SIGINT,
    SIGTERM) stops the steps and returns a result whose exit code is 128 + the signal.
    """
    try:
        prepared = prepare(spec_data, options)
        run_id = check_run_id(options.run_id or new_run_id())
        run_dir = options.root.resolve() / run_id
        ctx = _context(options, prepared, run_id)
        check_renderable(prepared.graph, ctx)  # before the lock: a spec we cannot run writes nothing
        with hold_run(run_dir, run_id), _announce(options, run_id, run_dir, warn):
            return _run_locked(spec_data, runner, options, prepared, ctx, observer, on_prepared)
    finally:
        close = getattr(runner, "close", None)  # a runner may keep a helper process for the run
        if close is not None:
            close()


@contextlib.contextmanager
def _announce(
    options: RunOptions, run_id: str, run_dir: Path, warn: Callable[[str], None] | None
) -> Iterator[None]:
    if options.project is None:
        yield
        return
    with register_active(options.project, run_id, run_dir) as others:
        if others and warn is not None:
            listed = ", ".join(f"{o.run_id} (pid {o.pid})" for o in others)
            warn(
                f"another run-local is active in this project: run {listed}. Runs share the project's "
                "catalog files (data/...), so they may read or overwrite each other's outputs; "
                "intermediate data is kept apart by run id."
            )
        yield


def _context(options: RunOptions, prepared: Prepared, run_id: str) -> RunContext:
    """The values placeholders render from (the job name is kept from an earlier attempt)."""
    root = options.root.resolve()
    job_name = _job_name(root / run_id, prepared.graph.pipeline_name)
    return RunContext(
        job_name=job_name,
        run_id=run_id,
        root=options.pipeline_root or str(root),
        params=prepared.params,
        job_resource=f"projects/local/locations/local/pipelineJobs/{job_name}",
        outputs_dir=str(root / run_id / "outputs"),
        create_time=_utc_now(),
        schedule_time=options.scheduled_time or "",
    )


def _run_locked(
    spec_data: Mapping[str, Any],
    runner: Runner,
    options: RunOptions,
    prepared: Prepared,
    ctx: RunContext,
    observer: Observer | None,
    on_prepared: Callable[[TaskGraph, RunContext], None] | None,
) -> RunResult:
    graph, params = prepared.graph, prepared.params
    root = options.root.resolve()
    run_id, job_name, pipeline_root = ctx.run_id, ctx.job_name, ctx.root
    run_dir = root / run_id
    earlier = _earlier_steps(run_dir)
    data_dir = _local_data_dir(pipeline_root)
    sweep_temp_files(data_dir, root, run_id)  # what a killed earlier attempt left half-written
    _write_json(run_dir / "spec.json", spec_data)  # before run.json: a run.json always has its spec beside it
    _write_json(
        run_dir / "run.json", {"run_id": run_id, "job_name": job_name, "spec_sha256": _digest(spec_data)}
    )
    if on_prepared:
        on_prepared(graph, ctx)
    logs = run_dir / "logs"
    selected = {t.name for t in graph.tasks} | {s.name for s in prepared.reused}
    outside = tuple(
        earlier.get(name) or StepOutcome(name, State.SKIPPED, reason="not selected (--from-nodes/--to-nodes)")
        for name in prepared.order
        if name not in selected
    )

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

    def record(outcomes: Sequence[StepOutcome], running: bool, interrupted: int | None = None) -> RunResult:
        pending = [
            StepOutcome(t.name, State.WAITING)
            for t in graph.tasks
            if t.name not in {o.name for o in outcomes}
        ]
        result = RunResult(
            run_id=run_id,
            job_name=job_name,
            pipeline=graph.pipeline_name,
            runner=runner.name,
            run_dir=run_dir,
            pipeline_root=pipeline_root,
            params=params,
            steps=_in_order([*prepared.reused, *outcomes, *pending], prepared.order),
            duration=time.monotonic() - begin,
            outside=outside,
            interrupted=interrupted,
            order=prepared.order,
            running=running,
        )
        _write_json(run_dir / "result.json", result.to_json())
        return result

    recorder = _Recorder(observer, lambda done: record(done, running=True))
    record([], running=True)
    try:
        outcomes = execute(
            graph,
            launch,
            max_parallel=options.max_parallel,
            observer=recorder,
            fail_fast=options.fail_fast,
            log_path=lambda name: logs / f"{name}.log",
            on_interrupt=runner.terminate,
        )
    except RunInterrupted as stop:
        result = record(stop.outcomes, running=False, interrupted=stop.signum)
    else:
        from ..durations import collect_run_durations

        collect_run_durations(pipeline_root, run_id, run_dir)  # before the last record: its time dates the run
        result = record(outcomes, running=False)
    finally:
        sweep_temp_files(data_dir, root, run_id)  # every step is over: no write is in flight
    return result


class _Recorder:
    """Passes progress on to the caller's observer and rewrites the record after every finished step."""

    def __init__(self, inner: Observer | None, save: Callable[[list[StepOutcome]], object]):
        self._inner = inner
        self._save = save
        self._done: list[StepOutcome] = []

    def step_started(self, name: str) -> None:
        if self._inner is not None:
            self._inner.step_started(name)

    def step_finished(self, outcome: StepOutcome) -> None:
        self._done = [o for o in self._done if o.name != outcome.name] + [outcome]
        self._save(list(self._done))
        if self._inner is not None:
            self._inner.step_finished(outcome)


def _local_data_dir(pipeline_root: str) -> Path | None:
    """The local folder holding the intermediate files (None for an object store)."""
    if "://" in pipeline_root and not pipeline_root.startswith("file://"):
        return None
    return Path(pipeline_root.removeprefix("file://")) / "kedro-vertex-ci"


TEMP_AGE = 60.0  # seconds: another run's temp file younger than this may still be written by a step


def sweep_temp_files(data_dir: Path | None, root: Path, run_id: str) -> list[Path]:
    """Remove half-written intermediates (``.*.tmp``) that no step is writing any more; the removed paths.

    This run's folder is swept entirely (called while no step of it runs); other runs' folders only when no
    run-local holds that run id and the file has not changed for :data:`TEMP_AGE` seconds.
    """
    if data_dir is None or not data_dir.is_dir():
        return []
    removed = []
    now = time.time()
    for folder in data_dir.iterdir():
        if not folder.is_dir():
            continue
        folder_run = unquote(folder.name)  # runtime.intermediate.unescape_name, without importing Kedro
        mine = folder_run == run_id
        if not mine and is_run_active(root / folder_run):
            continue
        for temp in folder.glob(".*.tmp"):
            try:
                if mine or now - temp.stat().st_mtime > TEMP_AGE:
                    temp.unlink()
                    removed.append(temp)
            except OSError:
                continue
    return removed


def _earlier_steps(run_dir: Path) -> dict[str, StepOutcome]:
    """The steps an earlier attempt with this run id recorded (none if there is no readable record)."""
    try:
        steps = json.loads((run_dir / "result.json").read_text(encoding="utf-8"))["steps"]
        return {str(s["name"]): _step_from_json(s) for s in steps}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


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


def earlier_spec(root: Path, run_id: str) -> dict[str, Any] | None:
    """The spec an earlier run with this id ran, verified against the hash its run.json recorded.

    A rerun of that id (``--from-nodes``, ``--to-nodes``, ``--resume``) must run the same steps: compiled
    again, the project may group differently (cost-aware ``auto`` learns the durations of the run itself), and
    a step would then look for data the earlier run kept inside one of its steps. None: no usable record.
    """
    run_dir = root.resolve() / run_id
    try:
        recorded = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))["spec_sha256"]
        spec = json.loads((run_dir / "spec.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return spec if isinstance(spec, dict) and _digest(spec) == recorded else None


def spec_digest(data: Mapping[str, Any]) -> str:
    """The hash a run records of its spec."""
    return _digest(data)


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


def _utc_now() -> str:
    """The job's create time as Vertex writes it (RFC 3339, UTC)."""
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
