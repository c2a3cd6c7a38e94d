"""``run-once``, ``schedule``, ``list-pipelines`` and ``ui`` when ``run_config.target`` is ``kfp``.

The cloud commands hand over here after compiling (offline, identical spec); this module reads the
environment, authenticates as ``kfp.auth`` says, and drives :class:`~kedro_vertex_ci.kubeflow.client.KfpTarget`.
"""

from __future__ import annotations

import os
import time
from datetime import datetime, timezone
from typing import Any

import click


def is_kfp(config: Any) -> bool:
    return getattr(getattr(config, "run_config", None), "target", "vertex") == "kfp"


def _mask(secret: str) -> None:
    """In GitHub Actions, hide a secret from the log the moment it exists."""
    if secret and os.environ.get("GITHUB_ACTIONS") == "true":
        click.echo(f"::add-mask::{secret}")


def access_factory(config: Any, provider: str | None, impersonate: str | None) -> Any:
    """A function returning fresh :class:`KfpAccess` for ``kfp.auth`` (called again after a session expires)."""
    from ..kubeflow.access import access_factory as factory

    return factory(config, os.environ, _mask, provider, impersonate)


def target_for(config: Any, provider: str | None, impersonate: str | None) -> Any:
    from ..kubeflow.client import KfpTarget

    return KfpTarget(config.kfp.host, access_factory(config, provider, impersonate), namespace=config.kfp.namespace,
                     ui_host=config.kfp.ui_host)


def experiment_name(config: Any, project_name: str) -> str:
    from ..kubeflow.deploy import experiment_name as name

    return name(config, project_name)


def runtime_parameters(spec: Any) -> dict[str, Any]:
    from ..kubeflow.deploy import runtime_parameters as parameters

    return parameters(spec)


def _describe_commit() -> str:
    from ..gcp import names
    from ..kubeflow.deploy import describe_commit

    return describe_commit(names.git_context(os.environ))


def _run_name(base: str) -> str:
    from ..gcp import names

    git = names.git_context(os.environ)
    suffix = (git.get("sha") or "")[:8] or "local"
    return names.job_id(base, datetime.now(timezone.utc), suffix)


def _prepare(target: Any, config: Any, compiled: Any, pipeline: str) -> tuple[str, str, str, str]:
    """(experiment id, pipeline id, version id, pipeline name) — created when missing, reused otherwise."""
    from ..kubeflow.deploy import prepare

    done = prepare(target, config, compiled, pipeline, _describe_commit())
    return done.experiment_id, done.pipeline_id, done.version_id, done.pipeline_name


def run_once(config: Any, compiled: Any, pipeline: str, *, wait: bool, timeout: float | None,
             cache: bool | None, provider: str | None, impersonate: str | None, poll_seconds: float) -> None:
    from ..errors import StepFailed
    from ..kubeflow.client import TERMINAL_STATES

    if cache is not None:  # KFP applies caching options from the spec: a run with another choice is another spec
        from dataclasses import replace

        from ..gcp.vertex import override_caching

        compiled = replace(compiled, spec=override_caching(compiled.spec, cache))
    target = target_for(config, provider, impersonate)
    experiment, pipeline_id, version_id, name = _prepare(target, config, compiled, pipeline)
    run = target.run_once(experiment_id=experiment, pipeline_id=pipeline_id, version_id=version_id,
                          display_name=_run_name(compiled.spec["pipelineInfo"]["name"]),
                          params=runtime_parameters(compiled.spec), pipeline_root=config.run_config.root,
                          service_account=None, enable_caching=None)
    click.echo(f"Submitted {run.display_name} ({run.run_id}) to Kubeflow Pipelines, pipeline {name}")
    click.echo(f"UI: {run.url}")
    if not wait:
        return
    begun = time.monotonic()
    state = target.wait(run.run_id, timeout_seconds=timeout, poll_seconds=poll_seconds,
                        on_update=lambda s: click.echo(f"  [{time.monotonic() - begun:5.0f}s] {s}"))
    if state not in TERMINAL_STATES:
        raise StepFailed(f"run {run.run_id} is still {state} after {timeout:.0f}s; it keeps running on Kubeflow")
    if state != "SUCCEEDED":
        raise StepFailed(f"run {run.run_id} ended {state}: {run.url}")
    click.echo(f"Run {run.run_id} succeeded")


def schedule(config: Any, compiled: Any, pipeline: str, settings: Any, *, provider: str | None,
             impersonate: str | None) -> None:
    from ..kubeflow.client import cron_for_kfp

    cron = cron_for_kfp(settings.cron_expression, settings.timezone)  # offline check before any call
    target = target_for(config, provider, impersonate)
    experiment, pipeline_id, version_id, name = _prepare(target, config, compiled, pipeline)
    deployed = target.deploy_recurring(
        display_name=name, experiment_id=experiment, pipeline_id=pipeline_id, version_id=version_id, cron=cron,
        params=runtime_parameters(compiled.spec), max_concurrency=settings.max_concurrent_run_count,
        start_time=settings.start_time, end_time=settings.end_time, pipeline_root=config.run_config.root,
        service_account=None, description=_describe_commit())
    click.echo(f"Recurring run {name}: '{cron}' (UTC) -> {deployed.recurring_run_id}"
               + (f", replaced {len(deployed.replaced)}" if deployed.replaced else ""))


def list_rows(config: Any, project_name: str, limit: int, provider: str | None, impersonate: str | None) -> list[dict[str, Any]]:
    from ..gcp import names
    from ..gcp.submission import stable_identity

    target = target_for(config, provider, impersonate)
    prefix = names.schedule_display_name(stable_identity(config, project_name), "x")[:-1]
    rows: list[dict[str, Any]] = []
    for recurring in target.recurring_runs():
        if str(recurring.display_name or "").startswith(prefix):
            cron = getattr(getattr(recurring.trigger, "cron_schedule", None), "cron", None)
            rows.append({"kind": "schedule", "name": recurring.display_name, "state": recurring.status or recurring.mode,
                         "cron": cron, "resource": recurring.recurring_run_id})
    experiment = target.find_experiment(experiment_name(config, project_name))
    for run in target.runs(experiment, limit) if experiment else []:
        rows.append({"kind": "run", "name": run.display_name, "state": run.state,
                     "start": str(run.created_at or ""), "duration_s": None, "link": target.run_url(run.run_id),
                     "resource": run.run_id})
    return rows


def ui_url(config: Any) -> str:
    from ..kubeflow.client import KfpTarget

    return KfpTarget(config.kfp.host, lambda: None, ui_host=config.kfp.ui_host).ui_host + "/#/pipelines"  # type: ignore[arg-type, return-value]
