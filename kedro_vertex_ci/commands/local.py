"""``run-local``: execute the compiled spec on this machine, a local folder standing in for ``gs://``."""

from __future__ import annotations

import contextlib
import json
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .context import Ctx

if TYPE_CHECKING:
    from ..local.run import Runner, RunOptions
    from ..local.runners import PreloadedSubprocessRunner


def _split_names(values: tuple[str, ...]) -> list[str]:
    return [name.strip() for value in values for name in value.split(",") if name.strip()]


def _parse_params(values: tuple[str, ...]) -> dict[str, str]:
    from ..errors import ConfigError

    params: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--param {item!r}: expected NAME=VALUE")
        params[key.strip()] = value
    return params


def _check_time(text: str | None) -> None:
    from datetime import datetime

    from ..errors import ConfigError

    if text is None:
        return
    try:
        datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"--scheduled-time {text!r}: expected an RFC 3339 time like 2026-01-31T03:00:00Z") from None


def _load_spec(
    ctx: Ctx, spec_file: Path | None, pipeline: str, image: str | None, params: dict[str, str] | None = None
) -> tuple[dict[str, Any], dict[str, str]]:
    """(spec dict, Kedro key -> input name) from ``--spec`` or by compiling the project."""
    from ..errors import ConfigError

    if spec_file is not None:
        from ..local.specgraph import parse_spec_text

        try:
            text = spec_file.read_text(encoding="utf-8")
        except OSError as err:
            raise ConfigError(f"--spec {spec_file}: cannot read it ({err.strerror})") from err
        except UnicodeDecodeError as err:
            raise ConfigError(f"--spec {spec_file}: not UTF-8 text (byte {err.start}); pass a compiled "
                              "JSON or YAML spec") from None
        data = parse_spec_text(text, str(spec_file))
        _check_spec_shape(data, spec_file)
        return data, {}
    from ..compiler import compile_pipeline

    compiled = compile_pipeline(ctx.project, ctx.env, pipeline, image, runtime_params=params)
    for warning in compiled.warnings:
        click.secho(f"Warning: {warning}", fg="yellow", err=True)
    return dict(compiled.spec), {p.key: p.name for p in compiled.plan.params}


def _check_spec_shape(data: dict[str, Any], spec_file: Path) -> None:
    """The spec's own problems named with its file (the runner's messages only say "spec")."""
    from ..errors import ConfigError
    from ..local.specgraph import build_graph, split_job

    try:
        build_graph(split_job(data)[0])
    except ConfigError as err:
        raise ConfigError(f"--spec {spec_file}: {str(err).removeprefix('spec: ')}") from None
    except (AttributeError, KeyError, TypeError, ValueError) as err:
        raise ConfigError(f"--spec {spec_file}: not a KFP PipelineSpec run-local can run ({err!r})") from None


@click.command("run-local")
@click.option(
    "--spec",
    "spec_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Run this compiled spec (JSON/YAML) instead of compiling the project.",
)
@click.option("-p", "--pipeline", default="__default__", show_default=True, help="Kedro pipeline to compile.")
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="NAME=VALUE",
    help="Override a pipeline input (repeatable; NAME may be a dotted path into a mapping).",
)
@click.option(
    "--root",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Local folder standing in for the pipeline root [default: <project>/.kedro-vertex-ci/runs].",
)
@click.option(
    "--pipeline-root",
    default=None,
    help="Root the steps see as {{$.pipeline_root}} (e.g. gs://bucket/x on an emulator) [default: --root].",
)
@click.option(
    "--runner",
    type=click.Choice(["subprocess", "docker"]),
    default="subprocess",
    show_default=True,
    help="Run steps as local processes or in containers of the project image.",
)
@click.option(
    "--image",
    default=None,
    help="Image for --runner docker, used as it is [default: the project's Dockerfile built locally, see --build].",
)
@click.option(
    "--build",
    "build_mode",
    type=click.Choice(["auto", "always", "never"]),
    default="auto",
    show_default=True,
    help="--runner docker: build the project's Dockerfile with the local engine (the same context Cloud Build "
    "gets, tagged by its content hash): auto = only when that tag is missing, always, or never (run the "
    "spec's image as it is).",
)
@click.option(
    "--build-arg",
    "build_args",
    multiple=True,
    metavar="NAME=VALUE",
    help="--runner docker: a docker build argument (repeatable), e.g. BASE_IMAGE=python:3.11-slim.",
)
@click.option(
    "--workdir",
    default=None,
    help="Working directory inside containers [default: the image's WORKDIR, as on Vertex].",
)
@click.option(
    "--mount",
    "mounts",
    multiple=True,
    metavar="HOST:CONTAINER",
    help="Extra bind mount for --runner docker (repeatable).",
)
@click.option(
    "--mount-data/--no-mount-data",
    default=True,
    show_default=True,
    help="--runner docker: share the project's data/ folder with every container (at <workdir>/data), so "
    "catalog files one step writes reach the next.",
)
@click.option(
    "--preload/--no-preload",
    default=True,
    show_default=True,
    help="--runner subprocess: fork `kedro-vertex-ci step` steps from one process that imported Kedro and "
    "the step runtime once (same argv, env, cwd, one process per step); --no-preload starts each afresh.",
)
@click.option(
    "--max-parallel",
    type=click.IntRange(min=1),
    default=None,
    help="Steps running at once [default: number of cores].",
)
@click.option(
    "--run-id",
    default=None,
    help="Run id ({{$.pipeline_job_uuid}}); reuse one to rerun into the same folder [default: a new uuid].",
)
@click.option(
    "--fail-fast",
    is_flag=True,
    help="After a failure start no new step (Vertex failure_policy 'fast'). Default, as on Vertex: only the "
    "failed step's dependants are skipped.",
)
@click.option(
    "--from-nodes",
    multiple=True,
    metavar="NODES",
    help="Run only the steps holding these Kedro nodes and what depends on them.",
)
@click.option(
    "--to-nodes",
    multiple=True,
    metavar="NODES",
    help="Run only the steps holding these Kedro nodes and what they depend on.",
)
@click.option(
    "--resume",
    is_flag=True,
    help="With --run-id of an earlier run: skip the steps it finished, run the failed and skipped ones.",
)
@click.option(
    "--simulate-step-overhead",
    type=click.FloatRange(min=0),
    default=0.0,
    metavar="SECONDS",
    help="Delay each step's start by SECONDS, as a step start on Vertex would (checks `plan`'s estimate).",
)
@click.option(
    "--scheduled-time",
    default=None,
    metavar="RFC3339",
    help="Run as a scheduled run fired at this time (${vertex:scheduled_time}), e.g. 2026-01-31T03:00:00Z "
    "[default: a one-off run, whose scheduled time is its create time: now].",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print a machine-readable result instead of live progress."
)
@click.pass_obj
def run_local(ctx: Ctx, **options: Any) -> None:  # the options are _run_local's parameters
    """Dry-run the compiled pipeline locally: the same spec Vertex would get, steps as processes or containers."""
    from ..local.executor import Interrupted

    with _stop_on_signals():
        try:
            _run_local(ctx, **options)
        except Interrupted as stop:  # before any step started (compiling, validating): nothing to record
            click.secho(
                f"run-local: stopped by {stop.signal_name} before any step started", fg="yellow", err=True
            )
            click.get_current_context().exit(128 + stop.signum)


def _run_local(
    ctx: Ctx,
    spec_file: Path | None,
    pipeline: str,
    params: tuple[str, ...],
    root: Path | None,
    pipeline_root: str | None,
    runner: str,
    image: str | None,
    build_mode: str,
    build_args: tuple[str, ...],
    workdir: str | None,
    mounts: tuple[str, ...],
    mount_data: bool,
    preload: bool,
    max_parallel: int | None,
    run_id: str | None,
    fail_fast: bool,
    from_nodes: tuple[str, ...],
    to_nodes: tuple[str, ...],
    resume: bool,
    simulate_step_overhead: float,
    scheduled_time: str | None,
    as_json: bool,
) -> None:
    from rich.console import Console

    from ..errors import StepFailed
    from ..local.progress import print_failures, print_summary, progress_for
    from ..local.run import RunOptions, prepare, run_spec

    overrides = _parse_params(params)
    _check_time(scheduled_time)
    run_root = _usable_root(root, ctx.project)
    early = _start_preloading(ctx.project) if runner == "subprocess" and preload else None
    try:  # the preload server imports while the project compiles; stopped if nothing is run
        spec, aliases = _load_spec(ctx, spec_file, pipeline, image, overrides)
        if spec_file is None and run_id and (from_nodes or to_nodes or resume):
            spec = _spec_of_the_earlier_run(run_root, run_id, spec)
        options = RunOptions(
            root=run_root,
            run_id=run_id,
            pipeline_root=pipeline_root,
            overrides=overrides,
            aliases=aliases,
            max_parallel=max_parallel,
            fail_fast=fail_fast,
            from_nodes=_split_names(from_nodes),
            to_nodes=_split_names(to_nodes),
            resume=resume,
            simulate_step_overhead=simulate_step_overhead,
            scheduled_time=scheduled_time,
            project=ctx.project,
        )
        graph = prepare(spec, options).graph
        images = {t.container.image for t in graph.tasks}
        if runner == "docker" and image is None:
            image = _project_image(ctx.project, build_mode, build_args, images, quiet=as_json)
        step_runner = early or _make_runner(
            runner, ctx.project, options, images, (image, workdir, mounts, mount_data)
        )
    except BaseException:
        if early is not None:
            early.close()
        raise

    def warn(message: str) -> None:
        click.secho(f"Warning: {message}", fg="yellow", err=True)

    if as_json:
        result = run_spec(spec, step_runner, options, warn=warn)
        click.echo(json.dumps(result.to_json(), indent=2))
        click.get_current_context().exit(result.exit_code)
    console = Console(highlight=False)
    with progress_for(console, [t.name for t in graph.tasks]) as progress:
        result = run_spec(spec, step_runner, options, observer=progress, warn=warn)
    print_summary(console, result)
    if result.interrupted is not None:
        finished = sum(1 for s in result.steps if s.state.value == "done")
        click.secho(
            f"run {result.run_id} stopped by signal {result.interrupted}: {finished} of {len(result.steps)} "
            f"step(s) finished, record in {result.run_dir / 'result.json'}. Continue with: "
            f"kedro-vertex-ci run-local --run-id {result.run_id} --resume",
            fg="yellow",
            err=True,
        )
        click.get_current_context().exit(result.exit_code)
    if not result.succeeded:
        print_failures(console, result)
        names = ", ".join(s.name for s in result.failed) or "none (stopped)"
        raise StepFailed(f"run {result.run_id} failed: step(s) {names}; logs in {result.run_dir / 'logs'}")


def _spec_of_the_earlier_run(root: Path, run_id: str, compiled: dict[str, Any]) -> dict[str, Any]:
    """A partial rerun continues run ``run_id`` with that run's own spec when the project now compiles to
    another (different steps would look for data the earlier run never wrote)."""
    from ..local.run import earlier_spec, spec_digest

    earlier = earlier_spec(root, run_id)
    if earlier is None or spec_digest(earlier) == spec_digest(compiled):
        return compiled
    click.secho(
        f"run-local: run {run_id} continues with the spec it started with "
        f"({root.resolve() / run_id / 'spec.json'}): the project now compiles to a different one "
        "(another grouping, settings or pipeline). Start a new run to use the new spec.",
        fg="yellow",
        err=True,
    )
    return earlier


@contextlib.contextmanager
def _stop_on_signals() -> Iterator[None]:
    """SIGINT and SIGTERM raise :class:`Interrupted` in the main thread, once: the run then stops its steps,
    records what finished and exits 130 / 143. Later signals are ignored while it cleans up (which is
    bounded: steps get SIGKILL after a grace period). A SIGINT inherited as ignored stays ignored (a
    background job of a shell); outside the main thread (tests calling the command in a thread) nothing is
    installed.
    """
    from ..local.executor import Interrupted

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    fired: list[int] = []

    def on_signal(signum: int, frame: object) -> None:
        if fired:
            return
        fired.append(signum)
        raise Interrupted(signum)

    previous = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        if signal.getsignal(signum) is signal.SIG_IGN:
            continue
        previous[signum] = signal.signal(signum, on_signal)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _usable_root(root: Path | None, project: Path) -> Path:
    """The local pipeline root, checked now so an unwritable ``--root`` is one clear error before the compile."""
    from ..fsutil import check_folder

    folder = root or project / ".kedro-vertex-ci" / "runs"
    return check_folder(folder, f"--root {root}" if root is not None else "run folder")


def _project_image(
    project: Path, mode: str, build_args: tuple[str, ...], images: set[str], quiet: bool
) -> str | None:
    """The locally built project image to run in place of the spec's, or None to run the spec's image."""
    from ..errors import ConfigError
    from ..local.imagebuild import check_engine, ensure_image, image_present, parse_build_args

    args = parse_build_args(build_args)
    if mode == "never":
        return None
    spec_image = next(iter(images), "")
    if mode == "auto" and not (project / "Dockerfile").is_file():
        check_engine()
        if len(images) == 1 and not image_present(spec_image):
            raise ConfigError(
                f"--runner docker: {project / 'Dockerfile'} does not exist and the spec's image {spec_image} "
                "is not in the Docker engine. `kedro-vertex-ci init --github` writes a Dockerfile (then "
                "run-local builds it); or pass --image IMAGE"
            )
        return None  # nothing to build: the spec's image runs as it is
    if len(images) > 1:
        raise ConfigError(
            f"--runner docker --build {mode}: the spec uses several images {sorted(images)}; build them "
            "yourself and pass --image, or --build never"
        )
    log = project / ".kedro-vertex-ci" / "builds" / "docker-build.log"
    if quiet:
        built = ensure_image(project, mode, args, log)
    else:
        from rich.console import Console

        console = Console(stderr=True, highlight=False)
        with console.status("docker build: sending the build context") as status:
            built = ensure_image(project, mode, args, log, on_line=lambda line: status.update(
                f"docker build: {line[:110]}"))
    verb = f"built in {built.seconds:.0f} s (log: {built.log})" if built.built else "unchanged, not rebuilt"
    click.echo(f"Image {built.tag}: {verb}. Steps run it in place of {spec_image}; the spec itself is unchanged.",
         err=True)
    return built.tag


def _start_preloading(project: Path) -> PreloadedSubprocessRunner:
    """The preloading subprocess runner, its server already importing while the project compiles."""
    from ..local.runners import PreloadedSubprocessRunner

    warm = PreloadedSubprocessRunner(project)
    warm.start()
    return warm


def _make_runner(
    kind: str,
    project: Path,
    options: RunOptions,
    images: set[str],
    docker_options: tuple[str | None, str | None, tuple[str, ...], bool],
) -> Runner:
    """The subprocess runner, or a Docker runner whose image was checked before anything runs."""
    from ..errors import ConfigError
    from ..local.runners import DockerRunner, SubprocessRunner, image_workdir, plan_mounts

    if kind == "subprocess":
        return SubprocessRunner(project)
    image, workdir, mounts, mount_data = docker_options
    if image is None and len(images) > 1:
        raise ConfigError(f"--runner docker: the spec uses several images {sorted(images)}; pass --image")
    chosen = image or next(iter(images), "")
    image_dir = image_workdir(chosen)
    extra: list[tuple[str, str]] = []
    for item in mounts:
        host, sep, inside = item.rpartition(":")
        if not sep or not host or not inside.startswith("/"):
            raise ConfigError(f"--mount {item!r}: expected HOST_PATH:/CONTAINER_PATH")
        extra.append((str(Path(host).resolve()), inside))
    data = project / "data" if mount_data else None
    if data is not None:
        data.mkdir(parents=True, exist_ok=True)
    if "://" not in (options.pipeline_root or ""):
        options.root.mkdir(parents=True, exist_ok=True)
    binds = plan_mounts(options.root, options.pipeline_root, data, workdir or image_dir, extra)
    return DockerRunner(image=image, mounts=binds, workdir=workdir)
