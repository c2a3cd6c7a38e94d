"""The action's :class:`~action.cloud.Cloud` on a self-hosted Kubeflow Pipelines.

Runs, recurring runs, pipeline versions and experiments go through the same
:class:`~kedro_vertex_ci.kubeflow.client.KfpTarget` and deploy helpers as the CLI's ``run-once`` / ``schedule``.
KFP has no labels: a run triggered by a push or PR is named after its commit (``<pipeline>-<sha12>``, so
"this commit's run" is a name lookup) and its description carries branch, commit, PR and workflow run
(``kedro-vertex-ci: branch B, sha S, pr N, run R``), which is what superseded runs are recognised by.
Images are built with Cloud Build, as on Vertex: only a build needs Google credentials, so they are loaded
on the first build and never for ``build: false``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .cloud import Built, CloudTarget, RunScope, Scheduled, Submitted, earlier_workflow_run, kedro_pipeline_of

Log = Callable[[str], None]
_ACTIVE_STATES = ("PENDING", "RUNNING", "PAUSED")


def connect_kfp(target: CloudTarget, config: Any, environ: Mapping[str, str], mask: Callable[[str], None],
                log: Log) -> KfpCloud:
    """Authenticate as ``kfp.auth`` says (secrets from the step's env, masked) and return the KFP cloud."""
    from kedro_vertex_ci.kubeflow.access import access_factory
    from kedro_vertex_ci.kubeflow.client import KfpTarget

    access = access_factory(config, environ, mask, target.workload_identity_provider, target.service_account)
    kfp = KfpTarget(config.kfp.host, access, namespace=config.kfp.namespace, ui_host=config.kfp.ui_host)

    def google() -> Any:
        from .gcp_cloud import GcpCloud

        return GcpCloud.connect(target, config, environ, mask, log)

    return KfpCloud(config, kfp, environ, log, google)


class KfpCloud:
    def __init__(self, config: Any, target: Any, environ: Mapping[str, str], log: Log, google: Callable[[], Any]):
        self.config = config
        self.target = target
        self.environ = environ
        self.log = log
        self._google_factory = google
        self._google: Any = None

    # ------------------------------------------------------------------ image
    def build(self, project: Path, image: str, *, sha: str, branch: str | None, reuse: bool) -> Built:
        """Cloud Build, exactly as for Vertex (the cluster pulls the pushed digest)."""
        if self._google is None:
            self._google = self._google_factory()
        built: Built = self._google.build(project, image, sha=sha, branch=branch, reuse=reuse)
        return built

    # ------------------------------------------------------------------ names
    def _description(self, sha: str | None) -> str:
        from kedro_vertex_ci.gcp import names
        from kedro_vertex_ci.kubeflow.deploy import describe_commit

        git = names.git_context(self.environ)
        git.pop("sha", None)  # GITHUB_SHA is a PR's merge commit; the run belongs to the pushed head commit
        if sha:
            git["sha"] = sha
        if self.environ.get("GITHUB_RUN_ID"):
            git["run"] = self.environ["GITHUB_RUN_ID"]
        return describe_commit(git)

    @staticmethod
    def _commit_run_name(compiled: Any, sha: str) -> str:
        from kedro_vertex_ci.gcp import names

        tail = f"-{sha.lower()[:12]}"
        return f"{names.slug(compiled.spec['pipelineInfo']['name'], names.JOB_ID_MAX - len(tail))}{tail}"

    def _experiment(self, compiled: Any) -> str | None:
        from kedro_vertex_ci.kubeflow.deploy import experiment_name

        found: str | None = self.target.find_experiment(experiment_name(self.config, compiled.project_name))
        return found

    def _submitted(self, run: Any, reused: bool) -> Submitted:
        return Submitted(job_id=str(run.run_id), run_url=self.target.run_url(run.run_id),
                         state=str(run.state or "") or None, reused=reused)

    # ------------------------------------------------------------------ runs
    def find_run(self, compiled: Any, scope: RunScope) -> Submitted | None:
        """This commit's run of this pipeline (the oldest, if a race made two), whatever its state."""
        experiment = self._experiment(compiled)
        if experiment is None:
            return None
        runs = self.target.runs_named(experiment, self._commit_run_name(compiled, scope.sha))
        return self._submitted(runs[0], reused=True) if runs else None

    def cancel_superseded(self, compiled: Any, scope: RunScope) -> list[str]:
        """Terminate this pipeline's active runs of other commits of the same branch (or PR), submitted by an
        earlier workflow run — recognised by the description the action wrote on them."""
        from kedro_vertex_ci.kubeflow.deploy import parse_description, pipeline_name

        experiment = self._experiment(compiled)
        pipeline_id = self.target.pipeline_id(pipeline_name(self.config, compiled.project_name,
                                                            kedro_pipeline_of(compiled)))
        if experiment is None or pipeline_id is None:
            return []
        cancelled = []
        for run in self.target.runs(experiment, 100):
            tags = parse_description(run.description)
            reference = run.pipeline_version_reference
            same_place = (tags.get("branch") == scope.branch if scope.branch
                          else tags.get("pr") == str(scope.pr_number))
            if (str(run.state) in _ACTIVE_STATES and same_place and tags.get("sha") != scope.sha
                    and getattr(reference, "pipeline_id", None) == pipeline_id
                    and earlier_workflow_run(tags.get("run"), scope.run_id) and self.target.terminate(run.run_id)):
                cancelled.append(str(run.run_id))
        return cancelled

    def run_once(self, compiled: Any, *, labels: Mapping[str, str], params: Mapping[str, str],
                 scope: RunScope | None) -> Submitted:
        """One run of this commit's pipeline version, with every pipeline input as a typed runtime parameter
        (``params`` were applied at compile time as the inputs' defaults)."""
        from kedro_vertex_ci.gcp import names
        from kedro_vertex_ci.kubeflow.deploy import prepare, runtime_parameters

        sha = scope.sha if scope is not None else labels.get("git-sha", "")
        description = self._description(sha)
        prepared = prepare(self.target, self.config, compiled, kedro_pipeline_of(compiled), description)
        base = compiled.spec["pipelineInfo"]["name"]
        name = (self._commit_run_name(compiled, scope.sha) if scope is not None
                else names.job_id(base, datetime.now(timezone.utc), sha[:8] or "run"))
        run = self.target.run_once(
            experiment_id=prepared.experiment_id, pipeline_id=prepared.pipeline_id, version_id=prepared.version_id,
            display_name=name, params=runtime_parameters(compiled.spec), pipeline_root=self.config.run_config.root,
            service_account=None, enable_caching=None, description=description)
        if scope is not None:
            return self._first_of_commit(prepared.experiment_id, name, run)
        return Submitted(job_id=run.run_id, run_url=run.url, state=run.state, reused=False)

    def _first_of_commit(self, experiment_id: str, name: str, run: Any) -> Submitted:
        """KFP accepts two runs with one name: when two jobs of one commit raced past :meth:`find_run`, both
        keep the oldest (creation time, then id) and the newer one is terminated by the job that created it."""
        oldest = next(iter(self.target.runs_named(experiment_id, name)), None)
        if oldest is None or str(oldest.run_id) == run.run_id:
            return Submitted(job_id=run.run_id, run_url=run.url, state=run.state, reused=False)
        self.target.terminate(run.run_id)
        self.log(f"this commit's run {oldest.run_id} was created first by a concurrent job: "
                 f"terminated the duplicate {run.run_id}")
        return self._submitted(oldest, reused=True)

    def wait(self, submitted: Submitted) -> str:
        state: str = self.target.wait(submitted.job_id, timeout_seconds=None, poll_seconds=_poll_seconds(self.environ),
                                      on_update=self.log)
        return state

    # ------------------------------------------------------------------ recurring run
    def schedule(self, compiled: Any, settings: Any) -> Scheduled:
        """Exactly one enabled recurring run for this pipeline: the new one first, then the others deleted."""
        from kedro_vertex_ci.kubeflow.client import cron_for_kfp
        from kedro_vertex_ci.kubeflow.deploy import prepare, runtime_parameters

        cron = cron_for_kfp(settings.cron_expression, settings.timezone)
        sha = self.environ.get("GITHUB_SHA")
        description = self._description(sha)
        prepared = prepare(self.target, self.config, compiled, kedro_pipeline_of(compiled), description)
        deployed = self.target.deploy_recurring(
            display_name=prepared.pipeline_name, experiment_id=prepared.experiment_id,
            pipeline_id=prepared.pipeline_id, version_id=prepared.version_id, cron=cron,
            params=runtime_parameters(compiled.spec), max_concurrency=settings.max_concurrent_run_count,
            start_time=settings.start_time, end_time=settings.end_time, pipeline_root=self.config.run_config.root,
            service_account=None, description=description)
        if deployed.replaced:
            self.log(f"replaced recurring runs: {', '.join(deployed.replaced)}")
        return Scheduled(name=deployed.recurring_run_id, cron=f"{cron} (UTC)")


    def unschedule(self, compiled: Any) -> list[str]:
        """Delete this pipeline's recurring run(s); none left is success (a re-run of the job must not fail)."""
        from kedro_vertex_ci.kubeflow.deploy import pipeline_name

        name = pipeline_name(self.config, compiled.project_name, kedro_pipeline_of(compiled))
        deleted = [str(r.recurring_run_id) for r in self.target.recurring_runs(name)]
        for rid in deleted:
            self.target.delete_recurring(rid)
        if not deleted:
            self.log(f"no recurring run named {name}: nothing to delete")
        return deleted


def _poll_seconds(environ: Mapping[str, str], default: float = 15.0) -> float:
    try:
        return float(environ.get("KEDRO_VERTEX_CI_POLL_SECONDS", default))
    except ValueError:
        return default
