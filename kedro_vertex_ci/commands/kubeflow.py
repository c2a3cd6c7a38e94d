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
    from ..kubeflow import auth

    settings = config.kfp.auth
    environ = dict(os.environ)
    if settings.mode == "token":
        return lambda: auth.KfpAccess(existing_token=_masked(auth.token_from(settings.token_file, settings.token_env,
                                                                             environ)), describe="bearer token")
    if settings.mode == "dex":
        user, password = auth.dex_credentials(settings.username_env, settings.password_env, environ)
        _mask(password)
        return lambda: auth.KfpAccess(cookies=auth.dex_login(config.kfp.host, user, password, _mask),
                                      describe=f"Dex login of {user}")
    if settings.mode == "iap":
        return _iap_factory(config, provider, impersonate)
    return lambda: auth.KfpAccess()


def _masked(secret: str) -> str:
    _mask(secret)
    return secret


def _iap_factory(config: Any, provider: str | None, impersonate: str | None) -> Any:
    from ..errors import ConfigError, Problem
    from ..gcp.auth import AuthRequest, fetch_id_token, load_credentials
    from ..gcp.endpoints import resolve_endpoints
    from ..kubeflow import auth

    settings = config.kfp.auth
    client_id = auth.iap_client_id(settings.client_id, os.environ)
    account = settings.service_account or impersonate
    if not account:
        raise ConfigError([Problem("vertexai.yml", "kfp.auth.service_account",
                                   "auth mode iap mints the ID token IAP checks for a service account: set "
                                   "kfp.auth.service_account (or --impersonate-service-account) to one that "
                                   "IAP admits, and grant your identity roles/iam.serviceAccountOpenIdTokenCreator "
                                   "on it")])
    os.environ.setdefault("GOOGLE_CLOUD_PROJECT", config.project_id)
    os.environ.setdefault("NO_GCE_CHECK", "True")
    endpoints = resolve_endpoints(getattr(config, "endpoints", None), os.environ)
    request = AuthRequest(project_id=config.project_id, endpoints=endpoints, workload_identity_provider=provider,
                          environ=dict(os.environ))
    source = load_credentials(request, mask=_mask)
    token = auth.RefreshingIdToken(lambda: fetch_id_token(source, account, client_id, endpoints, mask=_mask))
    return lambda: auth.KfpAccess(credentials=token, describe=f"IAP ID token of {account}")


def target_for(config: Any, provider: str | None, impersonate: str | None) -> Any:
    from ..kubeflow.client import KfpTarget

    return KfpTarget(config.kfp.host, access_factory(config, provider, impersonate), namespace=config.kfp.namespace,
                     ui_host=config.kfp.ui_host)


def experiment_name(config: Any, project_name: str) -> str:
    from ..gcp.submission import stable_identity

    return config.kfp.experiment or stable_identity(config, project_name)


def runtime_parameters(spec: Any) -> dict[str, Any]:
    """Every pipeline input with the typed value the compile gave it (defaults + --param), as on Vertex."""
    declared = (spec.get("root", {}).get("inputDefinitions", {}).get("parameters")) or {}
    return {name: _typed(item["defaultValue"], item.get("parameterType")) for name, item in declared.items()
            if "defaultValue" in item}


def _typed(value: Any, parameter_type: str | None) -> Any:
    """protobuf's Value holds every number as a double: an integer parameter goes out as an integer."""
    if parameter_type == "NUMBER_INTEGER" and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _describe_commit() -> str:
    from ..gcp import names

    git = names.git_context(os.environ)
    parts = [f"{key} {git[key]}" for key in ("branch", "sha", "pr") if git.get(key)]
    return "kedro-vertex-ci" + (f": {', '.join(parts)}" if parts else "")


def _run_name(base: str) -> str:
    from ..gcp import names

    git = names.git_context(os.environ)
    suffix = (git.get("sha") or "")[:8] or "local"
    return names.job_id(base, datetime.now(timezone.utc), suffix)


def _prepare(target: Any, config: Any, compiled: Any, pipeline: str) -> tuple[str, str, str, str]:
    """(experiment id, pipeline id, version id, pipeline name) — created when missing, reused otherwise."""
    from ..gcp import names
    from ..gcp.submission import stable_identity

    identity = stable_identity(config, compiled.project_name)
    name = names.schedule_display_name(identity, pipeline)
    experiment = target.ensure_experiment(experiment_name(config, compiled.project_name),
                                          getattr(config.run_config, "experiment_description", None))
    pipeline_id, version_id = target.ensure_pipeline(name, compiled.spec, _describe_commit())
    return experiment, pipeline_id, version_id, name


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
