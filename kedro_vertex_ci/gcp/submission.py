"""What a run or a schedule is submitted with: labels, identity, network, root, schedule settings.

Shared by the CLI's cloud commands and the GitHub Action, so both submit identical requests. It takes
the parsed config and plain values (git facts from the environment) and returns settings; no printing, no network.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def stable_identity(config: Any, project_name: str) -> str:
    """The project's stable name on Vertex: the experiment name, else the Kedro project name."""
    return getattr(config.run_config, "experiment_name", None) or project_name


def parse_labels(items: tuple[str, ...]) -> dict[str, str]:
    from ..errors import ConfigError, Problem
    from ..gcp.names import label_key, label_value

    labels: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError([Problem("--labels", item, "expected KEY=VALUE, e.g. --labels team=ml")])
        labels[label_key(key.strip())] = label_value(value.strip())
    return labels


def run_labels(config: Any, identity: str, pipeline: str, project: Path, extra: dict[str, str],
               kedro_project: str | None = None) -> dict[str, str]:
    """Config labels, git labels, then ours: the identity, the pipeline and the Kedro project (which finds a
    project's schedules again after ``experiment_name`` changed), then ``--labels``."""
    from ..gcp import names
    from ..gcp.schedules import PROJECT_LABEL

    git = names.git_context(os.environ, project)
    own = names.labels({"kvc_project": identity, "kvc_pipeline": "default" if pipeline == "__default__"
                        else pipeline, PROJECT_LABEL: kedro_project})
    return {**names.labels(dict(getattr(config.run_config, "labels", {}) or {})), **names.git_labels(git), **own,
            **extra}


def network(config: Any) -> str | None:
    """Vertex peers with ``projects/NUMBER/global/networks/NAME`` and needs the project NUMBER there."""
    import re

    from ..errors import ConfigError, Problem

    vpc = getattr(getattr(config.run_config, "network", None), "vpc", None)
    if not vpc or re.fullmatch(r"projects/\d+/global/networks/[^/]+", vpc):
        return vpc
    name = vpc.rsplit("/", 1)[-1]
    raise ConfigError([Problem("conf/base/vertexai.yml", "run_config.network.vpc",
                               f"{vpc!r}: Vertex AI needs projects/PROJECT_NUMBER/global/networks/{name} (find the "
                               f"number with `gcloud projects describe {config.project_id} "
                               f"--format='value(projectNumber)'`)")])


def require_root(config: Any) -> str:
    from ..errors import ConfigError, Problem

    root = getattr(config.run_config, "root", None)
    if not root:
        raise ConfigError([Problem("conf/base/vertexai.yml", "run_config.root",
                                   "is required to run on Vertex AI (gs://BUCKET/PATH for pipeline outputs)")])
    return str(root)


def job_settings(project: Path, compiled: Any, pipeline: str, labels: tuple[str, ...], cache: bool | None,
                  display_name: str | None = None) -> Any:
    from ..gcp.vertex import JobSettings

    config = compiled.config
    identity = stable_identity(config, compiled.project_name)
    return JobSettings(
        display_name=display_name or compiled.spec["pipelineInfo"]["name"],
        root=require_root(config),
        service_account=getattr(config.run_config, "service_account", None),
        network=network(config),
        labels=run_labels(config, identity, pipeline, project, parse_labels(labels), compiled.project_name),
        enable_caching=cache,
    )


def schedule_settings(config: Any, pipeline: str, overrides: dict[str, Any]) -> Any | None:
    """Config (own schedule, else default_schedule) + command-line overrides, validated offline.

    None when neither the config nor the overrides give a cron: only what the user asked for is scheduled
    (the CLI's ``schedule`` and the Action follow this one rule).
    """
    from ..cron import split_timezone
    from ..gcp.schedules import resolve_settings

    chosen = config.run_config.schedule_for(pipeline) if hasattr(config.run_config, "schedule_for") else None
    base = chosen.model_dump() if chosen is not None else {}
    cron = overrides.get("cron_expression") or base.get("cron_expression", "")
    if not cron:
        return None
    prefix_tz, _ = split_timezone(cron) if cron else (None, "")
    if prefix_tz and not overrides.get("timezone"):
        base.pop("timezone", None)  # the cron's TZ= prefix says it; the config default must not contradict
    return resolve_settings({pipeline: base}, pipeline, overrides, source="vertexai.yml")


def experiment_name(config: Any) -> str | None:
    """The Vertex AI experiment runs join: ``run_config.experiment_name`` when set."""
    return getattr(config.run_config, "experiment_name", None) or None


def submit_run(vertex: Any, body: dict[str, Any], job_id: str, config: Any, poll_seconds: float = 5.0,
               on_event: Any = lambda _m: None, context_timeout: float = 300.0) -> dict[str, Any]:
    """Submit one PipelineJob; with an experiment, as ``PipelineJob.submit(experiment=...)`` does.

    The experiment is found or created before the job (a bad experiment stops the run before it starts);
    the job's run context is added to it once Vertex made it.
    """
    from .experiments import associate_run, ensure_experiment

    name = experiment_name(config)
    experiment = ensure_experiment(vertex, name, getattr(config.run_config, "experiment_description", None)) \
        if name else None
    job = dict(vertex.submit(body, job_id))
    if experiment is not None:
        run_context = associate_run(vertex, experiment, job["name"], timeout_seconds=context_timeout,
                                    poll_seconds=poll_seconds)
        on_event(f"added {run_context.rsplit('/', 1)[-1]} to experiment {experiment['name'].rsplit('/', 1)[-1]}")
    return job


def no_schedule_reason(pipeline: str, cron_source: str) -> str:
    """Why nothing is scheduled, naming both ways to ask for a schedule."""
    return (f"no schedule configured for pipeline {pipeline!r}: add run_config.schedules.{pipeline} (or "
            f"default_schedule) with a cron_expression to conf/base/vertexai.yml, or pass {cron_source}")


def start_time_in_the_past(moment: str | None) -> bool:
    """A past ``start_time`` makes Vertex start the missed runs since then right away."""
    from datetime import datetime, timezone

    if not moment:
        return False
    parsed = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    return parsed < datetime.now(timezone.utc)
