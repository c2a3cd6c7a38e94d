"""``run-local``: execute the compiled spec on this machine, a local folder standing in for ``gs://``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:  # types only: importing cli here at run time would be a cycle
    from ..cli import Ctx
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


def _load_spec(
    ctx: Ctx, spec_file: Path | None, pipeline: str, image: str | None
) -> tuple[dict[str, Any], dict[str, str]]:
    """(spec dict, Kedro key -> input name) from ``--spec`` or by compiling the project."""
    from ..errors import ConfigError

    if spec_file is not None:
        from ..local.specgraph import parse_spec_text

        try:
            text = spec_file.read_text(encoding="utf-8")
        except OSError as err:
            raise ConfigError(f"--spec {spec_file}: cannot read it ({err.strerror})") from err
        return parse_spec_text(text, str(spec_file)), {}
    from ..compiler import compile_pipeline

    compiled = compile_pipeline(ctx.project, ctx.env, pipeline, image)
    for warning in compiled.warnings:
        click.secho(f"Warning: {warning}", fg="yellow", err=True)
    return dict(compiled.spec), {p.key: p.name for p in compiled.plan.params}


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
@click.option("--image", default=None, help="Image for --runner docker [default: the spec's image].")
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
    "--json", "as_json", is_flag=True, help="Print a machine-readable result instead of live progress."
)
@click.pass_obj
def run_local(
    ctx: Ctx,
    spec_file: Path | None,
    pipeline: str,
    params: tuple[str, ...],
    root: Path | None,
    pipeline_root: str | None,
    runner: str,
    image: str | None,
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
    as_json: bool,
) -> None:
    """Dry-run the compiled pipeline locally: the same spec Vertex would get, steps as processes or containers."""
    from rich.console import Console

    from ..errors import StepFailed
    from ..local.progress import print_failures, print_summary, progress_for
    from ..local.run import RunOptions, prepare, run_spec

    overrides = _parse_params(params)
    early = _start_preloading(ctx.project) if runner == "subprocess" and preload else None
    try:  # the preload server imports while the project compiles; stopped if nothing is run
        spec, aliases = _load_spec(ctx, spec_file, pipeline, image)
        options = RunOptions(
            root=(root or ctx.project / ".kedro-vertex-ci" / "runs").resolve(),
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
        )
        graph = prepare(spec, options).graph
    except BaseException:
        if early is not None:
            early.close()
        raise
    images = {t.container.image for t in graph.tasks}
    step_runner = early or _make_runner(
        runner, ctx.project, options, images, (image, workdir, mounts, mount_data)
    )
    if as_json:
        result = run_spec(spec, step_runner, options)
        click.echo(json.dumps(result.to_json(), indent=2))
        click.get_current_context().exit(result.exit_code)
    console = Console(highlight=False)
    with progress_for(console, [t.name for t in graph.tasks]) as progress:
        result = run_spec(spec, step_runner, options, observer=progress)
    print_summary(console, result)
    if not result.succeeded:
        print_failures(console, result)
        names = ", ".join(s.name for s in result.failed) or "none (stopped)"
        raise StepFailed(f"run {result.run_id} failed: step(s) {names}; logs in {result.run_dir / 'logs'}")


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
    if not (options.pipeline_root or "").startswith("gs://"):
        options.root.mkdir(parents=True, exist_ok=True)
    binds = plan_mounts(options.root, options.pipeline_root, data, workdir or image_dir, extra)
    return DockerRunner(image=image, mounts=binds, workdir=workdir)
