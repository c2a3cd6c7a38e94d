"""Vertex AI Experiments: a pipeline run joins ``run_config.experiment_name`` the way aiplatform does it.

``aiplatform.PipelineJob.submit(experiment=...)`` (google-cloud-aiplatform 1.x/2.x) does, in Vertex ML Metadata:

1. make sure the region's ``default`` metadata store exists;
2. get or create the experiment: a context with id = the experiment name, ``schemaTitle: system.Experiment``,
   ``schemaVersion: 0.0.1``, ``metadata: {experiment_deleted: false}`` and the description (updated when the
   configured description changed);
3. after creating the job, wait until Vertex has made the run's own context (``jobDetail.pipelineRunContext``,
   ``schemaTitle: system.PipelineRun``, which carries the run's parameters);
4. ``POST <experiment>:addContextChildren {"childContexts": [<pipeline-run context>]}``.

The console's Experiments view then lists the run under the experiment with its parameters and metrics. We
make the same calls through the generated ``aiplatform_v1`` REST client (see ``vertex`` for why not
``submit()`` itself). A second run finds the experiment and only adds itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ..errors import CloudError
from .names import slug

EXPERIMENT_SCHEMA = "system.Experiment"
PIPELINE_RUN_SCHEMA = "system.PipelineRun"
SCHEMA_VERSION = "0.0.1"
EXPERIMENT_METADATA = {"experiment_deleted": False}


def experiment_id(name: str) -> str:
    """The context id Vertex accepts (``[a-z0-9][a-z0-9-]{0,127}``) for an experiment name users write."""
    return slug(name, 128)


def experiment_body(name: str, description: str | None) -> dict[str, Any]:
    """The ``Context`` REST body of a new experiment (pure)."""
    body: dict[str, Any] = {"displayName": experiment_id(name), "schemaTitle": EXPERIMENT_SCHEMA,
                            "schemaVersion": SCHEMA_VERSION, "metadata": dict(EXPERIMENT_METADATA)}
    if description:
        body["description"] = description
    return body


def ensure_experiment(vertex: Any, name: str, description: str | None) -> dict[str, Any]:
    """The experiment's context, created when missing; refuses a context of another kind with that id."""
    context_id = experiment_id(name)
    vertex.ensure_metadata_store()
    context = vertex.get_context(context_id)
    if context is None:
        return dict(vertex.create_context(context_id, experiment_body(name, description)))
    if context.get("schemaTitle") != EXPERIMENT_SCHEMA:
        raise CloudError(f"Vertex ML Metadata already has a context {context_id!r} of type "
                         f"{context.get('schemaTitle')}, not an experiment: choose another "
                         f"run_config.experiment_name")
    if (context.get("metadata") or {}).get("experiment_deleted"):
        raise CloudError(f"experiment {context_id!r} was deleted in Vertex AI; choose another "
                         f"run_config.experiment_name or restore it")
    if description and description != context.get("description"):
        vertex.update_context_description(context["name"], description)
        context = {**context, "description": description}
    return context


def run_context_of(job: dict[str, Any]) -> str | None:
    """The ``system.PipelineRun`` context Vertex made for a job, once it exists."""
    context = (job.get("jobDetail") or {}).get("pipelineRunContext") or {}
    name = context.get("name")
    return str(name) if name else None


def wait_for_run_context(vertex: Any, job_name: str, timeout_seconds: float, poll_seconds: float,
                         sleep: Callable[[float], None] = time.sleep) -> str:
    """Poll the job until Vertex created its run context (asynchronously, shortly after the job starts)."""
    begun = time.monotonic()
    while True:
        job = vertex.get_job(job_name)
        context = run_context_of(job)
        if context:
            return context
        if job.get("state") in ("PIPELINE_STATE_FAILED", "PIPELINE_STATE_CANCELLED"):
            raise CloudError(f"pipeline run {job_name} ended {job['state']} before Vertex created its run "
                             f"context; it cannot be added to the experiment")
        if time.monotonic() - begun > timeout_seconds:
            raise CloudError(f"Vertex created no run context for {job_name} within {timeout_seconds:.0f}s: the run "
                             f"goes on, but is not in the experiment")
        sleep(poll_seconds)


def associate_run(vertex: Any, experiment: dict[str, Any], job_name: str, timeout_seconds: float = 300.0,
                  poll_seconds: float = 5.0) -> str:
    """Add the job's run context to the experiment; returns the run context's name."""
    run_context = wait_for_run_context(vertex, job_name, timeout_seconds, poll_seconds)
    vertex.add_context_children(experiment["name"], [run_context])
    return run_context


def console_experiment_url(project: str, region: str, name: str) -> str:
    return (f"https://console.cloud.google.com/vertex-ai/experiments/locations/{region}/experiments/"
            f"{experiment_id(name)}/runs?project={project}")
