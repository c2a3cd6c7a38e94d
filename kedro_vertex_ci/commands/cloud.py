"""Cloud commands: ``build``, ``run-once``, ``schedule``, ``list-pipelines``, ``ui``.

The one place that reads the environment and prints for the Google Cloud edge: it loads the config, compiles
(offline), resolves endpoints, authenticates, then hands plain values to ``kedro_vertex_ci.gcp`` clients.
Everything that can be checked offline (config, cron, labels) is checked before the first network call.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import Any

import click

from ..gcp import submission
from . import kubeflow

_AUTH_HELP = "Workload Identity provider (projects/NUMBER/locations/global/workloadIdentityPools/POOL/providers/ID)."


def _auth_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Options every authenticated command takes (also read from the environment, as the Action sets them)."""
    command = click.option(
        "--impersonate-service-account", "impersonate", envvar="KEDRO_VERTEX_CI_SERVICE_ACCOUNT", default=None,
        help="Service account to act as after the federation exchange. [env: KEDRO_VERTEX_CI_SERVICE_ACCOUNT]",
    )(command)
    return click.option(
        "--workload-identity-provider", "provider", envvar="KEDRO_VERTEX_CI_WORKLOAD_IDENTITY_PROVIDER",
        default=None, help=_AUTH_HELP + " [env: KEDRO_VERTEX_CI_WORKLOAD_IDENTITY_PROVIDER]",
    )(command)


def _labels_option(command: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--labels", "--label", "labels", multiple=True, metavar="KEY=VALUE",
                        help="Extra run labels (repeatable).")(command)


# ---------------------------------------------------------------------------------------------- helpers



def _load_config(ctx: Any) -> tuple[Any, str]:
    from ..config import parse_config
    from ..kedro_io import open_project

    with open_project(ctx.project, ctx.env) as project:
        parsed = parse_config(project.config_raw(), project.config_sources())
        return parsed.config, project.info.project_name


def _endpoints(config: Any) -> Any:
    from ..gcp.endpoints import resolve_endpoints

    return resolve_endpoints(getattr(config, "endpoints", None), os.environ)


def _credentials(config: Any, endpoints: Any, provider: str | None, impersonate: str | None) -> Any:
    from ..gcp.auth import AuthRequest, github_masker, load_credentials

    # google-auth's own project/metadata probes must not wander off to GCE or Resource Manager.
    os.environ.setdefault("GOOGLE_CLOUD_PROJECT", config.project_id)
    os.environ.setdefault("NO_GCE_CHECK", "True")
    request = AuthRequest(project_id=config.project_id, endpoints=endpoints, workload_identity_provider=provider,
                          service_account=impersonate, environ=dict(os.environ))
    return load_credentials(request, mask=github_masker(os.environ))


def _say_retry(what: str, attempt: int, err: BaseException) -> None:
    from ..gcp.hints import server_message

    click.secho(f"  retrying {what} (attempt {attempt + 1}): {server_message(err)[:120]}", fg="yellow", err=True)










def _compile(ctx: Any, pipeline: str, image: str | None, params: tuple[str, ...]) -> Any:
    from ..compiler import compile_pipeline
    from ..params import parse_overrides

    compiled = compile_pipeline(ctx.project, ctx.env, pipeline, image, parse_overrides(params))
    for warning in compiled.warnings:
        click.secho(f"Warning: {warning}", fg="yellow", err=True)
    return compiled




# ---------------------------------------------------------------------------------------------- build

def _build_image(ctx: Any, config: Any, credentials: Any, endpoints: Any, *, wait: bool,
                 tag: str | None = None) -> tuple[str, str | None]:
    """Upload the project and build it; return (build id, ``repo@sha256:…`` or None with --no-wait)."""
    import hashlib

    from ..errors import ConfigError, Problem
    from ..gcp import names
    from ..gcp.cloudbuild import BuildSettings, CloudBuild, build_body, image_repository, pushed_digest
    from ..gcp.source import collect_files, make_tarball
    from ..gcp.storage import Storage, default_staging_bucket, staging_bucket

    build = getattr(config, "build", None)
    dockerfile = getattr(build, "dockerfile", None) or "Dockerfile"
    if not (ctx.project / dockerfile).is_file():
        raise ConfigError([Problem("conf/base/vertexai.yml", "build.dockerfile",
                                   f"{dockerfile} not found in {ctx.project}; write one (kedro-vertex-ci init "
                                   f"--github writes a starter)")])
    repository = image_repository(getattr(build, "image", None) or config.run_config.image)
    files = collect_files(ctx.project)
    tarball = make_tarball(ctx.project, files)
    content = hashlib.sha256(tarball).hexdigest()
    git = names.git_context(os.environ, ctx.project)
    commit = tag or git.get("sha") or f"src-{content[:12]}"
    bucket = staging_bucket(config)
    region = getattr(build, "region", None)
    obj = f"kedro-vertex-ci/source/{names.docker_tag(commit)}-{content[:12]}.tgz"
    click.echo(f"Uploading {len(files)} files ({len(tarball) / 1024:.0f} KiB) to gs://{bucket}/{obj}")
    Storage(config.project_id, credentials, endpoints).upload(
        bucket, obj, tarball, region=region or config.region,
        create_missing=bucket == default_staging_bucket(config.project_id))
    settings = BuildSettings(
        repository=repository, commit=commit, bucket=bucket, source_object=obj, branch=git.get("branch"),
        dockerfile=dockerfile, machine_type=getattr(build, "machine_type", None),
        timeout_seconds=int(getattr(build, "timeout", None) or 1200),
        service_account=getattr(build, "service_account", None), project=config.project_id)
    client = CloudBuild(config.project_id, credentials, endpoints, region=region)
    started = client.start(build_body(settings))
    click.echo(f"Build {started.build_id} started; logs: {started.log_url}")
    if not wait:
        return started.build_id, None
    begun = time.monotonic()
    shown: list[str] = []

    def show(status: str) -> None:
        if not shown or shown[-1] != status:
            click.echo(f"  [{time.monotonic() - begun:5.0f}s] build {status}")
            shown.append(status)

    finished = client.wait(started, on_update=show, poll_seconds=_poll_seconds(5.0))
    digest = pushed_digest(finished, settings.image)
    if not digest:
        from ..errors import CloudError

        raise CloudError(f"Cloud Build {started.build_id} succeeded but reported no digest for {settings.image}")
    return started.build_id, f"{repository}@{digest}"


def _poll_seconds(default: float) -> float:
    """Polling interval; KEDRO_VERTEX_CI_POLL_SECONDS shortens it (tests, impatient humans)."""
    try:
        return float(os.environ.get("KEDRO_VERTEX_CI_POLL_SECONDS", default))
    except ValueError:
        return default


@click.command("build")
@click.option("--wait/--no-wait", default=True, show_default=True,
              help="Wait for the build and print the pushed digest; --no-wait prints the build id.")
@click.option("--tag", default=None, help="Image tag for this source [default: the git commit].")
@_auth_options
@click.pass_obj
def build_command(ctx: Any, wait: bool, tag: str | None, provider: str | None, impersonate: str | None) -> None:
    """Build the project's Dockerfile with Cloud Build (layer cache) and push IMAGE:COMMIT."""
    config, _ = _load_config(ctx)
    endpoints = _endpoints(config)
    credentials = _credentials(config, endpoints, provider, impersonate)
    build_id, image = _build_image(ctx, config, credentials, endpoints, wait=wait, tag=tag)
    click.echo(f"build_id={build_id}")
    if image:
        click.echo(f"image={image}")


def _connect(ctx: Any, compiled: Any, pipeline: str, params: tuple[str, ...], build_first: bool,
             provider: str | None, impersonate: str | None) -> tuple[Any, Any]:
    """Credentials and a Vertex client; with ``--build``, build first and recompile pinned to the digest."""
    from ..gcp.vertex import Vertex

    config = compiled.config
    endpoints = _endpoints(config)
    credentials = _credentials(config, endpoints, provider, impersonate)
    if build_first:
        _, pinned = _build_image(ctx, config, credentials, endpoints, wait=True)
        compiled = _compile(ctx, pipeline, pinned, params)
        click.echo(f"Pinned image {pinned}")
    vertex = Vertex(config.project_id, config.region, credentials, endpoints, on_retry=_say_retry)
    return vertex, compiled


def _built_for_kfp(ctx: Any, compiled: Any, pipeline: str, params: tuple[str, ...], build_first: bool,
                   provider: str | None, impersonate: str | None) -> Any:
    """With ``--build``, the image is still built by Cloud Build (Google credentials) and pinned by digest."""
    if not build_first:
        return compiled
    config = compiled.config
    endpoints = _endpoints(config)
    credentials = _credentials(config, endpoints, provider, impersonate)
    _, pinned = _build_image(ctx, config, credentials, endpoints, wait=True)
    click.echo(f"Pinned image {pinned}")
    return _compile(ctx, pipeline, pinned, params)


# ---------------------------------------------------------------------------------------------- run-once

def _follow(vertex: Any, job: dict[str, Any], timeout: float | None) -> dict[str, Any]:
    begun = time.monotonic()
    last: list[str] = []

    def show(current: dict[str, Any]) -> None:
        state = str(current.get("state", "")).replace("PIPELINE_STATE_", "")
        tasks = ((current.get("jobDetail") or {}).get("taskDetails")) or []
        done = sum(1 for t in tasks if t.get("state") in ("SUCCEEDED", "SKIPPED"))
        line = f"{state}" + (f" ({done}/{len(tasks)} tasks done)" if tasks else "")
        if line != (last[-1] if last else None):
            click.echo(f"  [{time.monotonic() - begun:5.0f}s] {line}")
            last.append(line)

    return dict(vertex.wait(job["name"], on_update=show, poll_seconds=_poll_seconds(15.0), timeout_seconds=timeout))


@click.command("run-once")
@click.option("-p", "--pipeline", default="__default__", show_default=True, help="Kedro pipeline to run.")
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE", help="Override a parameter's default.")
@click.option("--image", default=None, help="Image for the steps (overrides run_config.image).")
@click.option("--build", "build_first", is_flag=True, help="Build the image with Cloud Build first; pin its digest.")
@click.option("--wait", is_flag=True, help="Follow the run until it ends; exit non-zero if it fails.")
@click.option("--timeout", type=float, default=None, help="Stop following after this many seconds (with --wait).")
@click.option("--cache/--no-cache", default=None, help="Override caching for every step.")
@_labels_option
@_auth_options
@click.pass_obj
def run_once_command(ctx: Any, pipeline: str, params: tuple[str, ...], image: str | None, build_first: bool,
                     wait: bool, timeout: float | None, cache: bool | None, labels: tuple[str, ...],
                     provider: str | None, impersonate: str | None) -> None:
    """Compile and submit one Vertex AI pipeline run; print its console link."""
    from datetime import datetime, timezone
    from uuid import uuid4

    from ..errors import StepFailed
    from ..gcp import names
    from ..gcp.vertex import TERMINAL_STATES, pipeline_job_body

    compiled = _compile(ctx, pipeline, image, params)  # offline: config errors surface before any call
    config = compiled.config
    if kubeflow.is_kfp(config):
        compiled = _built_for_kfp(ctx, compiled, pipeline, params, build_first, provider, impersonate)
        kubeflow.run_once(config, compiled, pipeline, wait=wait, timeout=timeout, cache=cache, provider=provider,
                          impersonate=impersonate, poll_seconds=_poll_seconds(15.0))
        return
    settings = submission.job_settings(ctx.project, compiled, pipeline, labels, cache)
    vertex, compiled = _connect(ctx, compiled, pipeline, params, build_first, provider, impersonate)
    job_id = names.job_id(settings.display_name, datetime.now(timezone.utc), uuid4().hex[:6])
    job = submission.submit_run(vertex, pipeline_job_body(compiled.spec, settings), job_id, config,
                                poll_seconds=_poll_seconds(5.0), on_event=lambda m: click.echo(f"  {m}"))
    click.echo(f"Submitted {job_id}")
    click.echo(f"Console: {names.console_run_url(config.project_id, config.region, job_id)}")
    experiment = submission.experiment_name(config)
    if experiment:
        from ..gcp.experiments import console_experiment_url

        click.echo(f"Experiment: {console_experiment_url(config.project_id, config.region, experiment)}")
    if not wait:
        return
    final = _follow(vertex, job, timeout)
    state = final.get("state")
    if state not in TERMINAL_STATES:
        raise StepFailed(f"pipeline run {job_id} is still {state} after {timeout:.0f}s; it keeps running on "
                         f"Vertex AI (follow it in the console)")
    if state != "PIPELINE_STATE_SUCCEEDED":
        message = (final.get("error") or {}).get("message", "")
        raise StepFailed(f"pipeline run {job_id} ended {state}{': ' + message if message else ''}")
    click.echo(f"Run {job_id} succeeded")


# ---------------------------------------------------------------------------------------------- schedule



@click.command("schedule")
@click.option("-p", "--pipeline", default="__default__", show_default=True, help="Kedro pipeline to schedule.")
@click.option("--cron", "cron_expression", default=None, help='Cron, e.g. "0 3 * * *" (TZ=Area/City prefix ok).')
@click.option("--timezone", default=None, help="IANA time zone of the cron, e.g. Europe/Warsaw.")
@click.option("--start-time", default=None, help="RFC 3339 start (a past start backfills).")
@click.option("--end-time", default=None, help="RFC 3339 end.")
@click.option("--max-run-count", type=int, default=None, help="Stop after this many runs.")
@click.option("--max-concurrent-run-count", type=int, default=None, help="Runs allowed at the same time.")
@click.option("--allow-queueing/--no-allow-queueing", default=None, help="Queue runs beyond the concurrency.")
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE", help="Override a parameter's default.")
@click.option("--image", default=None, help="Image for the steps (overrides run_config.image).")
@click.option("--build", "build_first", is_flag=True, help="Build the image with Cloud Build first; pin its digest.")
@click.option("--cache/--no-cache", default=None, help="Override caching for every step.")
@click.option("--pause", "manage", flag_value="pause", default=None, help="Pause PIPELINE's schedule (no new runs).")
@click.option("--resume", "manage", flag_value="resume", help="Resume PIPELINE's paused schedule (missed runs skipped).")
@click.option("--delete", "manage", flag_value="delete", help="Delete PIPELINE's schedule.")
@click.option("--prune", "manage", flag_value="prune",
              help="Delete this project's schedules that match none of its pipelines (e.g. after renaming "
                   "experiment_name).")
@_labels_option
@_auth_options
@click.pass_obj
def schedule_command(ctx: Any, pipeline: str, cron_expression: str | None, timezone: str | None,
                     start_time: str | None, end_time: str | None, max_run_count: int | None,
                     max_concurrent_run_count: int | None, allow_queueing: bool | None, params: tuple[str, ...],
                     image: str | None, build_first: bool, cache: bool | None, manage: str | None,
                     labels: tuple[str, ...], provider: str | None, impersonate: str | None) -> None:
    """Create or replace this project's one schedule for PIPELINE (safe to repeat); or pause, resume, delete it."""
    from ..gcp import names
    from ..gcp.schedules import deploy_schedule, schedule_body
    from ..gcp.vertex import pipeline_job_body

    if manage is not None:
        deploy_options = (cron_expression, timezone, start_time, end_time, max_run_count, max_concurrent_run_count,
                          allow_queueing, image, cache, *params, *labels)
        if build_first or any(value is not None and value != () for value in deploy_options):
            from ..errors import ConfigError

            raise ConfigError(f"schedule --{manage} takes only -p/--pipeline: the other options describe a "
                              f"schedule to deploy (run `schedule` without --{manage} for that)")
        _manage_schedule(ctx, manage, pipeline, provider, impersonate)
        return
    compiled = _compile(ctx, pipeline, image, params)
    config = compiled.config
    overrides = {"cron_expression": cron_expression, "timezone": timezone, "start_time": start_time,
                 "end_time": end_time, "max_run_count": max_run_count,
                 "max_concurrent_run_count": max_concurrent_run_count, "allow_queueing": allow_queueing}
    schedule = submission.schedule_settings(config, pipeline, overrides)
    if schedule is None:
        from ..errors import ConfigError

        raise ConfigError(submission.no_schedule_reason(pipeline, "--cron"))
    if kubeflow.is_kfp(config):
        compiled = _built_for_kfp(ctx, compiled, pipeline, params, build_first, provider, impersonate)
        kubeflow.schedule(config, compiled, pipeline, schedule, provider=provider, impersonate=impersonate)
        return
    if submission.start_time_in_the_past(schedule.start_time):
        click.secho(f"Warning: start_time {schedule.start_time} is in the past: Vertex AI may start the missed "
                    f"runs since then right away.", fg="yellow", err=True)
    run_name = getattr(config.run_config, "scheduled_run_name", None)
    settings = submission.job_settings(ctx.project, compiled, pipeline, labels, cache, display_name=run_name)
    display_name = names.schedule_display_name(submission.stable_identity(config, compiled.project_name), pipeline)
    vertex, compiled = _connect(ctx, compiled, pipeline, params, build_first, provider, impersonate)
    body = schedule_body(display_name, schedule, vertex.parent, pipeline_job_body(compiled.spec, settings))
    deployed = deploy_schedule(vertex, body, on_event=lambda m: click.echo(f"  {m}"))
    zone = f" ({schedule.timezone})" if schedule.timezone else ""
    click.echo(f"Schedule {display_name}: '{schedule.cron_expression}'{zone} -> {deployed.schedule['name']}"
               + (f", replaced {len(deployed.replaced)}" if deployed.replaced else ""))


def _manage_schedule(ctx: Any, action: str, pipeline: str, provider: str | None, impersonate: str | None) -> None:
    """``--pause`` / ``--resume`` / ``--delete`` PIPELINE's schedule, or ``--prune`` the stale ones."""
    from ..gcp import names, schedules
    from ..gcp.vertex import Vertex

    project = _project_facts(ctx)
    config = project.config
    if kubeflow.is_kfp(config):
        from ..errors import ConfigError

        raise ConfigError(f"schedule --{action} manages Vertex AI schedules; with run_config.target kfp enable, "
                          f"disable or delete the recurring run in the Kubeflow Pipelines UI")
    if action != "prune" and pipeline not in project.pipelines:
        from ..errors import ConfigError, Problem

        raise ConfigError([Problem("--pipeline", pipeline, f"no such pipeline; available: "
                                   f"{', '.join(project.pipelines)}")])
    endpoints = _endpoints(config)
    vertex = Vertex(config.project_id, config.region, _credentials(config, endpoints, provider, impersonate),
                    endpoints, on_retry=_say_retry)
    say = lambda message: click.echo(f"  {message}")  # noqa: E731
    display_name = names.schedule_display_name(project.identity, pipeline)
    if action == "pause":
        paused = schedules.pause_schedules(vertex, display_name, on_event=say)
        click.echo(f"Schedule {display_name}: paused ({len(paused)})")
    elif action == "resume":
        schedules.resume_schedule(vertex, display_name, on_event=say)
        click.echo(f"Schedule {display_name}: active")
    elif action == "delete":
        deleted = schedules.delete_schedules(vertex, display_name, on_event=say)
        click.echo(f"Schedule {display_name}: deleted ({len(deleted)})")
    else:
        stale = schedules.stale_schedules(vertex.list_schedules(), project.label, project.current_schedule_names)
        for schedule in stale:
            if vertex.delete_schedule(schedule["name"]):
                say(f"deleted stale schedule {schedule['displayName']} ({schedule['name']})")
        click.echo(f"Pruned {len(stale)} stale schedule(s) of {project.name}")


class _ProjectFacts:
    """What the schedule-management commands need from the project: no compile, no network."""

    def __init__(self, config: Any, name: str, pipelines: list[str]):
        from ..gcp import names

        self.config, self.name, self.pipelines = config, name, pipelines
        self.identity = submission.stable_identity(config, name)
        self.label = names.label_value(name)
        self.current_schedule_names = {names.schedule_display_name(self.identity, p) for p in pipelines}


def _project_facts(ctx: Any) -> _ProjectFacts:
    from ..config import parse_config
    from ..kedro_io import open_project

    with open_project(ctx.project, ctx.env) as project:
        parsed = parse_config(project.config_raw(), project.config_sources())
        return _ProjectFacts(parsed.config, project.info.project_name, project.pipeline_names())


# ---------------------------------------------------------------------------------------------- list / ui

def _rows(config: Any, project: _ProjectFacts, vertex: Any, limit: int) -> list[dict[str, Any]]:
    from ..gcp import names
    from ..gcp.schedules import stale_schedules
    from ..gcp.vertex import duration_seconds

    identity = project.identity
    prefix = names.schedule_display_name(identity, "x")[:-1]
    rows: list[dict[str, Any]] = []
    listed = vertex.list_schedules()
    stale = {s["name"] for s in stale_schedules(listed, project.label, project.current_schedule_names)}
    for schedule in listed:
        if str(schedule.get("displayName", "")).startswith(prefix) or schedule["name"] in stale:
            rows.append({"kind": "schedule", "name": schedule["displayName"],
                         "state": str(schedule.get("state") or "") + (" (stale)" if schedule["name"] in stale else ""),
                         "cron": schedule.get("cron"), "next_run": schedule.get("nextRunTime"),
                         "stale": schedule["name"] in stale, "resource": schedule["name"]})
    label_filter = f'labels.kvc_project="{names.label_value(identity)}"'
    for job in vertex.list_jobs(label_filter, limit=limit):
        job_id = job["name"].rsplit("/", 1)[-1]
        seconds = duration_seconds(job)
        rows.append({"kind": "run", "name": job_id, "state": str(job.get("state", "")).replace("PIPELINE_STATE_", ""),
                     "start": job.get("startTime") or job.get("createTime"),
                     "duration_s": round(seconds) if seconds is not None else None,
                     "link": names.console_run_url(config.project_id, config.region, job_id),
                     "resource": job["name"]})
    return rows


def _table(rows: list[dict[str, Any]]) -> str:
    header = ("KIND", "NAME", "STATE", "START / CRON", "DURATION", "LINK")
    lines = [header]
    for row in rows:
        when = row.get("start") or row.get("cron") or ""
        duration = f"{row['duration_s']}s" if row.get("duration_s") is not None else ""
        lines.append((row["kind"], row["name"], str(row.get("state") or ""), str(when), duration,
                      row.get("link", "")))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header) - 1)]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line[:-1], widths, strict=True)) + "  " + line[-1]
                     for line in lines).rstrip()


@click.command("list-pipelines")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--limit", type=int, default=20, show_default=True, help="Most recent runs to show.")
@_auth_options
@click.pass_obj
def list_pipelines_command(ctx: Any, as_json: bool, limit: int, provider: str | None, impersonate: str | None) -> None:
    """This project's schedules and recent runs (state, start, duration, link)."""
    import json

    from ..gcp.vertex import Vertex

    project = _project_facts(ctx)
    config = project.config
    if kubeflow.is_kfp(config):
        rows = kubeflow.list_rows(config, project.name, limit, provider, impersonate)
    else:
        endpoints = _endpoints(config)
        credentials = _credentials(config, endpoints, provider, impersonate)
        vertex = Vertex(config.project_id, config.region, credentials, endpoints, on_retry=_say_retry)
        rows = _rows(config, project, vertex, limit)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    elif not rows:
        click.echo("No schedules or runs for this project yet.")
    else:
        click.echo(_table(rows))
    stale = [row["name"] for row in rows if row.get("stale")]
    if stale and not as_json:
        click.secho(f"Warning: {len(stale)} schedule(s) of this project match none of its pipelines "
                    f"({', '.join(stale)}); they still run. Remove them with `kedro-vertex-ci schedule --prune`.",
                    fg="yellow", err=True)


@click.command("ui")
@click.option("--print-only", is_flag=True, help="Print the URL, do not open a browser.")
@click.pass_obj
def ui_command(ctx: Any, print_only: bool) -> None:
    """Open the Vertex AI Pipelines console for this project (prints the URL when there is no browser)."""
    from ..gcp.names import console_pipelines_url

    config, _ = _load_config(ctx)
    url = kubeflow.ui_url(config) if kubeflow.is_kfp(config) else console_pipelines_url(config.project_id, config.region)
    click.echo(url)
    if print_only or os.environ.get("CI") or os.environ.get("GITHUB_ACTIONS") or not sys.stdout.isatty():
        return
    import webbrowser

    if not webbrowser.open(url):
        click.echo("(no browser available: open the URL above)")


CLOUD_COMMANDS = [build_command, run_once_command, schedule_command, list_pipelines_command, ui_command]
