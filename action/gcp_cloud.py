"""The real :class:`~action.cloud.Cloud`: Workload Identity credentials, Cloud Build, Vertex AI.

It composes the same ``kedro_vertex_ci.gcp`` clients and settings helpers as the ``build`` / ``run-once`` /
``schedule`` commands, so the action and the CLI submit identical bodies; it only adds what the action
reports (build log link, run link) and sends progress to the action's log instead of a terminal.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from uuid import uuid4

from kedro_vertex_ci.errors import CloudError, ConfigError, Problem

from .cloud import Built, CloudTarget, RunScope, Scheduled, Submitted, earlier_workflow_run, kedro_pipeline_of

Log = Callable[[str], None]
_ACTIVE_STATES = {"PIPELINE_STATE_QUEUED", "PIPELINE_STATE_PENDING", "PIPELINE_STATE_RUNNING",
                  "PIPELINE_STATE_PAUSED"}


def connect_gcp(target: CloudTarget, config: Any, environ: Mapping[str, str], mask: Callable[[str], None],
                log: Log) -> GcpCloud:
    """Authenticate (WIF from the job's OIDC token, or a credentials file) and return the real cloud."""
    return GcpCloud.connect(target, config, environ, mask, log)


class GcpCloud:
    """One authenticated session against the project/region the action targets."""

    def __init__(self, config: Any, credentials: Any, endpoints: Any, environ: Mapping[str, str], log: Log):
        self.config = config
        self.credentials = credentials
        self.endpoints = endpoints
        self.environ = environ
        self.log = log
        self.poll_seconds = _poll_seconds(environ)

    @classmethod
    def connect(cls, target: CloudTarget, config: Any, environ: Mapping[str, str], mask: Callable[[str], None],
                log: Log = print) -> GcpCloud:
        from kedro_vertex_ci.gcp.auth import AuthRequest, load_credentials
        from kedro_vertex_ci.gcp.endpoints import resolve_endpoints

        config = config.model_copy(update={"project_id": target.project_id, "region": target.region})
        # google-auth's project and metadata probes must not wander off to GCE or Resource Manager.
        os.environ.setdefault("GOOGLE_CLOUD_PROJECT", target.project_id)
        os.environ.setdefault("NO_GCE_CHECK", "True")
        endpoints = resolve_endpoints(getattr(config, "endpoints", None), environ)
        request = AuthRequest(
            project_id=target.project_id,
            endpoints=endpoints,
            workload_identity_provider=target.workload_identity_provider,
            service_account=target.service_account,
            environ=dict(environ),
        )
        return cls(config, load_credentials(request, mask=mask), endpoints, environ, log)

    def build(self, project: Path, image: str, *, sha: str, branch: str | None, reuse: bool = False) -> Built:
        """Upload the project (ignore rules applied), build its Dockerfile with cache, push IMAGE:SHA.

        With ``reuse``, an image already tagged with this commit in Artifact Registry is used as it is.
        """
        from kedro_vertex_ci.gcp import names
        from kedro_vertex_ci.gcp.cloudbuild import (
            BuildSettings,
            CloudBuild,
            build_body,
            image_repository,
            pushed_digest,
        )
        from kedro_vertex_ci.gcp.registry import tagged_digest
        from kedro_vertex_ci.gcp.source import collect_files, make_tarball
        from kedro_vertex_ci.gcp.storage import Storage, default_staging_bucket, staging_bucket

        config, build = self.config, getattr(self.config, "build", None)
        dockerfile = getattr(build, "dockerfile", None) or "Dockerfile"
        if not (project / dockerfile).is_file():
            raise ConfigError(
                [Problem("conf/base/vertexai.yml", "build.dockerfile",
                         f"{dockerfile} not found in the project; `kedro-vertex-ci init --github` writes one, "
                         "or set the action input build: false")]
            )
        repository = image_repository(getattr(build, "image", None) or image)
        if reuse and sha:
            tag = names.docker_tag(sha)
            try:
                digest = tagged_digest(repository, tag, self.credentials, self.endpoints)
            except Exception as err:  # noqa: BLE001 - not knowing only costs a build
                self.log(f"could not check whether {repository}:{tag} exists ({err}); building it")
                digest = None
            if digest:
                self.log(f"{repository}:{tag} already exists ({digest}): not rebuilt")
                return Built(image=f"{repository}:{tag}", digest=digest, reused=True)
        files = collect_files(project)
        tarball = make_tarball(project, files)
        content = hashlib.sha256(tarball).hexdigest()
        commit = sha or f"src-{content[:12]}"
        bucket = staging_bucket(config)
        default_bucket = default_staging_bucket(config.project_id)
        source = f"kedro-vertex-ci/source/{names.docker_tag(commit)}-{content[:12]}.tgz"
        region = getattr(build, "region", None)
        self.log(f"uploading {len(files)} files ({len(tarball) / 1024:.0f} KiB) to gs://{bucket}/{source}")
        Storage(config.project_id, self.credentials, self.endpoints).upload(
            bucket, source, tarball, region=region or config.region, create_missing=bucket == default_bucket
        )
        settings = BuildSettings(
            repository=repository, commit=commit, bucket=bucket, source_object=source, branch=branch,
            dockerfile=dockerfile, machine_type=getattr(build, "machine_type", None),
            timeout_seconds=int(getattr(build, "timeout", None) or 1200),
            service_account=getattr(build, "service_account", None), project=config.project_id,
        )
        client = CloudBuild(config.project_id, self.credentials, self.endpoints, region=region)
        started = client.start(build_body(settings))
        self.log(f"build {started.build_id} started; logs: {started.log_url}")
        finished = client.wait(started, on_update=lambda status: self.log(f"build {status}"),
                               poll_seconds=self.poll_seconds)
        digest = pushed_digest(finished, settings.image)
        if not digest:
            raise CloudError(f"Cloud Build {started.build_id} succeeded but reported no digest for {settings.image}")
        return Built(image=settings.image, digest=digest, build_id=started.build_id, log_url=started.log_url)

    def _vertex(self) -> Any:
        from kedro_vertex_ci.gcp.vertex import Vertex

        return Vertex(self.config.project_id, self.config.region, self.credentials, self.endpoints,
                      on_retry=lambda what, attempt, err: self.log(f"retrying {what} (attempt {attempt + 1})"))

    def _job_settings(self, compiled: Any, labels: Mapping[str, str], display_name: str | None = None) -> Any:
        from kedro_vertex_ci.gcp.submission import job_settings

        project = Path(self.environ.get("GITHUB_WORKSPACE", "."))
        pipeline = kedro_pipeline_of(compiled)
        items = tuple(f"{key}={value}" for key, value in labels.items())
        return job_settings(project, _with_config(compiled, self.config), pipeline, items, None, display_name)

    def _filter(self, compiled: Any, **labels: str) -> str:
        """A list filter for this project's runs of this pipeline, plus ``labels`` (AIP-160, ANDed)."""
        from kedro_vertex_ci.gcp import names
        from kedro_vertex_ci.gcp.submission import stable_identity

        pipeline = kedro_pipeline_of(compiled)
        wanted = names.labels({"kvc_project": stable_identity(self.config, compiled.project_name),
                               "kvc_pipeline": "default" if pipeline == "__default__" else pipeline})
        wanted.update(labels)
        return " AND ".join(f'labels.{key}="{value}"' for key, value in wanted.items())

    def _submitted(self, job: Mapping[str, Any], reused: bool) -> Submitted:
        from kedro_vertex_ci.gcp import names

        job_id = str(job["name"]).rsplit("/", 1)[-1]
        url = names.console_run_url(self.config.project_id, self.config.region, job_id)
        return Submitted(job_id=job_id, run_url=url, state=str(job.get("state") or "") or None, reused=reused)

    def find_run(self, compiled: Any, scope: RunScope) -> Submitted | None:
        """This commit's newest run of this pipeline, whatever its state (one run per pipeline and commit)."""
        jobs = self._vertex().list_jobs(self._filter(compiled, **{"git-sha": scope.sha.lower()}), limit=5)
        return self._submitted(jobs[0], reused=True) if jobs else None

    def cancel_superseded(self, compiled: Any, scope: RunScope) -> list[str]:
        """Cancel this pipeline's still-running runs of other commits of the same PR or branch.

        Only runs submitted by earlier workflow runs (a smaller ``github-run`` label) count as superseded: a
        slow job of an older commit that submits late must not cancel the newer commit's run.
        """
        from kedro_vertex_ci.gcp import names

        where = ({"git-branch": names.label_value(scope.branch)} if scope.branch
                 else {"github-pr": str(scope.pr_number)})
        vertex = self._vertex()
        cancelled = []
        for job in vertex.list_jobs(self._filter(compiled, **where), limit=50):
            labels = job.get("labels") or {}
            if job.get("state") in _ACTIVE_STATES and labels.get("git-sha") != scope.sha.lower() \
                    and earlier_workflow_run(labels.get("github-run"), scope.run_id):
                if vertex.cancel_job(job["name"]):
                    cancelled.append(str(job["name"]).rsplit("/", 1)[-1])
        return cancelled

    def run_once(self, compiled: Any, *, labels: Mapping[str, str], params: Mapping[str, str],
                 scope: RunScope | None = None) -> Submitted:
        """Submit one PipelineJob (params were applied at compile time as the inputs' defaults).

        With a ``scope`` the job id is derived from the commit, so two runs racing for the same commit (the
        ``push`` and the ``pull_request`` run of one push) create one job: Vertex refuses the second id.
        """
        from kedro_vertex_ci.gcp import names
        from kedro_vertex_ci.gcp.submission import submit_run
        from kedro_vertex_ci.gcp.vertex import pipeline_job_body

        settings = self._job_settings(compiled, labels)
        if scope is not None:
            tail = f"-{scope.sha.lower()[:12]}"
            job_id = f"{names.slug(settings.display_name, names.JOB_ID_MAX - len(tail))}{tail}"
        else:
            job_id = names.job_id(settings.display_name, datetime.now(timezone.utc), uuid4().hex[:6])
        job = submit_run(self._vertex(), pipeline_job_body(compiled.spec, settings), job_id, self.config,
                         poll_seconds=self.poll_seconds, on_event=self.log)
        return self._submitted(job, reused=False)

    def wait(self, submitted: Submitted) -> str:
        name = (
            f"projects/{self.config.project_id}/locations/{self.config.region}/pipelineJobs/{submitted.job_id}"
        )

        def show(job: Mapping[str, Any]) -> None:
            self.log(str(job.get("state", "")).replace("PIPELINE_STATE_", ""))

        final = self._vertex().wait(name, on_update=show, poll_seconds=_poll_seconds(self.environ, 15.0),
                                    timeout_seconds=None)
        return str(final.get("state") or "PIPELINE_STATE_UNSPECIFIED")

    def schedule(self, compiled: Any, settings: Any) -> Scheduled:
        """Create this pipeline's schedule and delete the one it replaces (one per project and pipeline)."""
        from kedro_vertex_ci.gcp import names
        from kedro_vertex_ci.gcp.schedules import deploy_schedule, schedule_body
        from kedro_vertex_ci.gcp.submission import stable_identity
        from kedro_vertex_ci.gcp.vertex import pipeline_job_body

        config, pipeline = self.config, kedro_pipeline_of(compiled)
        run_name = getattr(config.run_config, "scheduled_run_name", None)
        job = self._job_settings(compiled, {}, display_name=run_name)
        display_name = names.schedule_display_name(stable_identity(config, compiled.project_name), pipeline)
        vertex = self._vertex()
        body = schedule_body(display_name, settings, vertex.parent, pipeline_job_body(compiled.spec, job))
        deployed = deploy_schedule(vertex, body, on_event=self.log)
        zone = f"TZ={settings.timezone} " if settings.timezone else ""
        return Scheduled(name=str(deployed.schedule["name"]), cron=f"{zone}{settings.cron_expression}")

    def unschedule(self, compiled: Any) -> list[str]:
        """Delete this pipeline's schedule(s); none left is success (a re-run of the job must not fail)."""
        from kedro_vertex_ci.gcp import names
        from kedro_vertex_ci.gcp.schedules import schedules_named
        from kedro_vertex_ci.gcp.submission import stable_identity

        display_name = names.schedule_display_name(stable_identity(self.config, compiled.project_name),
                                                   kedro_pipeline_of(compiled))
        vertex = self._vertex()
        deleted = [s["name"] for s in schedules_named(vertex, display_name) if vertex.delete_schedule(s["name"])]
        if not deleted:
            self.log(f"no schedule named {display_name}: nothing to delete")
        return deleted


def _with_config(compiled: Any, config: Any) -> Any:
    """The compiled result with the target project/region the action chose (inputs win over the config)."""
    from dataclasses import replace

    return replace(compiled, config=config)


def _poll_seconds(environ: Mapping[str, str], default: float = 5.0) -> float:
    try:
        return float(environ.get("KEDRO_VERTEX_CI_POLL_SECONDS", default))
    except ValueError:
        return default
