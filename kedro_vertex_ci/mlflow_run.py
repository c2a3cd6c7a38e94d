"""One MLflow run per pipeline job: started by the first task, resumed by every step, ended on exit.

The ``mlflow-start-run`` task creates the run in the experiment the project's ``mlflow.yml`` names (through
kedro-mlflow's own config, so tracking URI, credentials and experiment are exactly what ``kedro run`` uses),
tags it ``vertexai_run_id`` / ``vertexai_job_name`` and writes its id to its KFP output parameter. Each
step receives that id as an input parameter and exports ``MLFLOW_RUN_ID`` before its session starts:
kedro-mlflow's ``mlflow.start_run`` resumes the run named there instead of creating one.

The exit task cannot take the id as an input (kfp forbids an exit task that depends on other tasks), so it
finds the run by its ``vertexai_run_id`` tag, which also makes the start task idempotent: a retried start
finds the run its first attempt created. The exit task sets the run's final status from the pipeline's
(``SUCCEEDED`` → ``FINISHED``, ``CANCELLED`` → ``KILLED``, anything else → ``FAILED``).

mlflow and kedro-mlflow are imported only here and only when a task needs them (the ``mlflow`` extra).
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kedro.framework.hooks import hook_impl

if TYPE_CHECKING:
    from .argv import StepInvocation

TAG_RUN_ID = "vertexai_run_id"
TAG_JOB_NAME = "vertexai_job_name"
RUN_ID_ENV = "MLFLOW_RUN_ID"  # mlflow.start_run resumes the run named here (kedro-mlflow calls it)
_PREFIX = "kedro-vertex-ci step: error:"


class MlflowTaskError(Exception):
    """The MLflow start or end task cannot do its job (reported as a one-line error)."""


def final_status(pipeline_status: str | None) -> str:
    """The MLflow run status for the pipeline's final status (``PipelineTaskFinalStatus`` JSON or a word)."""
    from .runtime.resolvers import final_state

    state = final_state(pipeline_status or "").upper()
    if state == "SUCCEEDED":
        return "FINISHED"
    if state in ("CANCELLED", "CANCELLING"):
        return "KILLED"
    return "FAILED"


def tag_filter(vertex_run_id: str) -> str:
    """The MLflow search filter selecting the run of one pipeline job (pure)."""
    if "'" in vertex_run_id or "\\" in vertex_run_id:
        raise MlflowTaskError(f"run id {vertex_run_id!r} cannot be matched in an MLflow filter")
    return f"tags.{TAG_RUN_ID} = '{vertex_run_id}'"


def run_tags(vertex_run_id: str, job_name: str) -> dict[str, str]:
    return {TAG_RUN_ID: vertex_run_id, TAG_JOB_NAME: job_name}


def find_run(client: Any, experiment_id: str, vertex_run_id: str) -> str | None:
    """The id of the (oldest) MLflow run tagged with ``vertex_run_id``, if any."""
    runs = client.search_runs(
        [experiment_id], filter_string=tag_filter(vertex_run_id), max_results=1,
        order_by=["attributes.start_time ASC"],
    )
    return str(runs[0].info.run_id) if runs else None


def start_run(client: Any, experiment_id: str, vertex_run_id: str, job_name: str) -> str:
    """Create the job's run (RUNNING, tagged) unless an earlier attempt did; return its id."""
    existing = find_run(client, experiment_id, vertex_run_id)
    if existing is not None:
        return existing
    run = client.create_run(experiment_id, tags=run_tags(vertex_run_id, job_name), run_name=job_name or None)
    return str(run.info.run_id)


def write_output(path: str, value: str) -> None:
    """Write a KFP output parameter file atomically (its folder may not exist yet)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(value)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def project_tracking(context: Any) -> tuple[Any, str]:
    """(MlflowClient, experiment id) as the project's kedro-mlflow config sets them up.

    kedro-mlflow's ``after_context_created`` hook has already done the setup when its hooks are active;
    otherwise the same config class is built from ``mlflow.yml`` and set up here.
    """
    config = getattr(context, "mlflow", None)
    if config is None:
        config = _setup_kedro_mlflow(context)
    experiment = getattr(config.tracking.experiment, "_experiment", None)
    client = getattr(config.server, "_mlflow_client", None)
    if experiment is None or client is None:
        raise MlflowTaskError("kedro-mlflow did not set up the tracking server and experiment")
    return client, str(experiment.experiment_id)


def _setup_kedro_mlflow(context: Any) -> Any:
    from kedro.config import MissingConfigException
    from kedro_mlflow.config.kedro_mlflow_config import KedroMlflowConfig

    loader = context.config_loader
    if "mlflow" not in loader.config_patterns:
        loader.config_patterns.update({"mlflow": ["mlflow*", "mlflow*/**", "**/mlflow*"]})
    try:
        raw = dict(loader["mlflow"] or {})
    except MissingConfigException:
        raw = {}
    config = KedroMlflowConfig.model_validate(raw)
    if not raw.get("tracking", {}).get("experiment", {}).get("name"):
        from kedro.framework.project import PACKAGE_NAME

        config.tracking.experiment.name = PACKAGE_NAME  # kedro-mlflow's default: the project's package
    config.setup(context)
    return config


class ResumeTaggedRun:
    """Session hook for the on-exit step of an MLflow pipeline: its nodes log into the job's run.

    Runs after kedro-mlflow's hooks (``trylast``): once the tracking URI and experiment are set up it points
    ``MLFLOW_RUN_ID`` at the run found by its tag, before any node starts; after the nodes (kedro-mlflow
    has marked the run FINISHED or FAILED for this step) it sets the job's final status.
    """

    def __init__(self, vertex_run_id: str, pipeline_status: str | None):
        self.vertex_run_id = vertex_run_id
        self.pipeline_status = pipeline_status
        self.client: Any = None
        self.run_id: str | None = None

    @hook_impl(trylast=True)
    def after_context_created(self, context: Any) -> None:
        self.client, experiment_id = project_tracking(context)
        self.run_id = find_run(self.client, experiment_id, self.vertex_run_id)
        if self.run_id is not None:
            os.environ[RUN_ID_ENV] = self.run_id

    @hook_impl(trylast=True)
    def after_pipeline_run(self, run_params: Mapping[str, Any], pipeline: Any, catalog: Any) -> None:
        self._end(final_status(self.pipeline_status))

    @hook_impl(trylast=True)
    def on_pipeline_error(self, error: Exception, run_params: Mapping[str, Any], pipeline: Any,
                          catalog: Any) -> None:
        self._end("FAILED")

    def _end(self, status: str) -> None:
        """After kedro-mlflow closed the run for this step: the job's final status wins.

        kedro-mlflow reopens the run per node, so it can still be active in this process; MLflow would end
        it FINISHED at interpreter exit, overwriting the status. It is ended here with the final status.
        """
        if self.client is None or self.run_id is None:
            return
        import mlflow

        while mlflow.active_run() is not None:
            mlflow.end_run(status)
        self.client.set_terminated(self.run_id, status)
        print(f"MLflow run {self.run_id} ended {status}", flush=True)


def _say(message: str) -> None:
    print(f"{_PREFIX} {message}", file=sys.stderr, flush=True)


def run_task(inv: StepInvocation, project: Path) -> int:
    """The ``--mlflow-start`` / ``--mlflow-end`` task process (no nodes run); returns the exit code."""
    from .runtime.session import StepSetupError, load_context

    try:
        with load_context(inv, project) as context:
            client, experiment_id = project_tracking(context)
            if inv.mlflow_start:
                return _start(inv, client, experiment_id)
            return _end(inv, client, experiment_id)
    except (MlflowTaskError, StepSetupError) as err:
        _say(str(err))
        return 2
    except Exception as err:  # noqa: BLE001 - the server, the config: one line, the cause named
        _say(f"MLflow {'start' if inv.mlflow_start else 'end'} failed: {type(err).__name__}: {err}")
        return 1


def _start(inv: StepInvocation, client: Any, experiment_id: str) -> int:
    if not inv.mlflow_run_id_output:
        raise MlflowTaskError("--mlflow-start needs --mlflow-run-id-output FILE")
    run_id = start_run(client, experiment_id, inv.run_id, inv.job_name)
    write_output(inv.mlflow_run_id_output, run_id)
    print(f"MLflow run {run_id} (experiment {experiment_id}) for pipeline run {inv.run_id}", flush=True)
    return 0


def _end(inv: StepInvocation, client: Any, experiment_id: str) -> int:
    run_id = find_run(client, experiment_id, inv.run_id)
    if run_id is None:
        print(f"No MLflow run is tagged {TAG_RUN_ID}={inv.run_id}: the start task did not run.", flush=True)
        return 0
    status = final_status(inv.status)
    client.set_terminated(run_id, status)
    print(f"MLflow run {run_id} ended {status}", flush=True)
    return 0
