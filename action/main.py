"""The action's one orchestrator: read inputs and the event, compile, build, run or schedule, report.

Only :func:`run` reads the environment, prints and writes the output/summary files; everything it calls
takes values and returns values. Errors a user can cause end as annotations and an exit code, never a
traceback.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from kedro_vertex_ci.errors import ConfigError, KvcError
from kedro_vertex_ci.settings import require_pinned_images

from .cloud import Cloud, CloudTarget, RunScope, Submitted
from .events import COMPILE, SCHEDULE, UNSCHEDULE, ActionPlan, Event, decide, read_event, require_credentials
from .github_api import GitHubClient, comment_marker
from .inputs import Inputs, read_inputs
from .report import Report, render_comment, render_dry_run, render_summary
from .requirements import install_requirements
from .target import apply_target_inputs, describe_target, needs_google_credentials, target_of
from .workflow_commands import Runner

OUTPUT_NAMES = ("image-digest", "image", "job-id", "run-url", "schedule-name", "spec-path", "state")
SPEC_FOLDER = ".kedro-vertex-ci"
DRY_RUN_COMMENT_GROUP = "Pull request comment (dry run: not posted)"
SUCCEEDED = ("PIPELINE_STATE_SUCCEEDED", "SUCCEEDED")  # Vertex AI, Kubeflow Pipelines
PLATFORMS = {"vertex": "Vertex AI", "kfp": "Kubeflow Pipelines"}

CompileFn = Callable[..., Any]
ConnectFn = Callable[[CloudTarget, Any, Mapping[str, str], Callable[[str], None], Callable[[str], None]], Cloud]


@dataclass
class _Run:
    """The state one run carries between its phases."""

    inputs: Inputs
    event: Event
    plan: ActionPlan
    project: Path
    workspace: Path
    runner: Runner
    report: Report
    github: GitHubClient | None = None
    pr_number: int | None = None
    target: str = "vertex"  # vertex | kfp, once vertexai.yml and the inputs are read


def connect_gcp(target: CloudTarget, config: Any, environ: Mapping[str, str], mask: Callable[[str], None],
                log: Callable[[str], None]) -> Cloud:
    """The real cloud; google libraries load only when a cloud call is really made."""
    from .gcp_cloud import connect_gcp as connect

    return connect(target, config, environ, mask, log)


def connect_cloud(target: CloudTarget, config: Any, environ: Mapping[str, str], mask: Callable[[str], None],
                  log: Callable[[str], None]) -> Cloud:
    """Vertex AI, or the Kubeflow Pipelines of ``kfp`` when ``run_config.target`` (after the inputs) says so."""
    if target_of(config) == "kfp":
        from .kfp_cloud import connect_kfp

        return connect_kfp(target, config, environ, mask, log)
    return connect_gcp(target, config, environ, mask, log)


def compile_project(project: Path, env: str | None, pipeline: str, image: str | None, params: Mapping[str, str]) -> Any:
    """Compile with the lead's compiler (imported here: the action's ``--help`` path stays light)."""
    from kedro_vertex_ci.compiler import compile_pipeline

    return compile_pipeline(project, env, pipeline=pipeline, image=image, params=dict(params))


def run(
    environ: Mapping[str, str],
    *,
    stream: TextIO | None = None,
    compile_fn: CompileFn = compile_project,
    connect: ConnectFn = connect_cloud,
) -> int:
    """Run the action once; returns the process exit code."""
    runner = Runner(
        output_file=_path(environ.get("GITHUB_OUTPUT")),
        summary_file=_path(environ.get("GITHUB_STEP_SUMMARY")),
        stream=stream,
    )
    for secret in (
        environ.get("INPUT_GITHUB-TOKEN"),
        environ.get("INPUT_GITHUB_TOKEN"),
        environ.get("ACTIONS_ID_TOKEN_REQUEST_TOKEN"),
    ):
        runner.mask(secret)
    workspace = Path(environ.get("GITHUB_WORKSPACE") or os.getcwd())
    project = workspace
    state: _Run | None = None
    try:
        inputs = read_inputs(environ)
        event = read_event(environ)
        plan = decide(inputs, event)
        project = (workspace / inputs.working_directory).resolve()
        state = _Run(
            inputs=inputs,
            event=event,
            plan=plan,
            project=project,
            workspace=workspace,
            runner=runner,
            report=Report(plan=plan, event=event, pipeline=inputs.pipeline, params=dict(inputs.params), dry_run=inputs.dry_run),
        )
        return _execute(state, environ, compile_fn, connect)
    except KvcError as err:
        _report_error(runner, err, workspace, project)
        _write_outputs(runner, state.report if state else None)
        return err.exit_code
    except Exception as err:  # noqa: BLE001 - a bug or an unexpected library error must still end like an error
        runner.error(f"{type(err).__name__}: {err}", title="kedro-vertex-ci: unexpected error")
        with runner.group("Details for a bug report"):
            runner.log("".join(traceback.format_exception(err)).rstrip())
        runner.add_summary(f"## Kedro → Vertex AI: failed\n\n```\n{type(err).__name__}: {err}\n```\n")
        _write_outputs(runner, state.report if state else None)
        return 1


def _execute(state: _Run, environ: Mapping[str, str], compile_fn: CompileFn, connect: ConnectFn) -> int:
    inputs, plan, runner = state.inputs, state.plan, state.runner
    runner.log(f"kedro-vertex-ci: {plan.reason}")
    if not state.project.is_dir():
        raise ConfigError(f"working-directory {inputs.working_directory!r} does not exist in the repository")
    if plan.operation == COMPILE and state.event.fork:
        runner.notice(plan.reason, title="Compile only")
    requirements = _requirements_file(state)
    if requirements:
        with runner.group(f"Install the project's requirements ({requirements.name})"):
            install_requirements(requirements, runner, cache_dir=_pip_cache_dir(state))
    with runner.group(f"Compile pipeline {inputs.pipeline}"):
        compiled = _with_target(state, compile_fn(state.project, inputs.env, inputs.pipeline, inputs.image,
                                                  inputs.params))
        spec_path = _write_spec(state, compiled.spec_bytes)
        state.report = state.report.with_(
            steps=tuple(compiled.plan.steps), image=compiled.plan.image, spec_path=spec_path, cron=inputs.cron,
            estimate=getattr(compiled, "estimate", None),
        )
        runner.log(f"{len(compiled.plan.steps)} steps; spec written to {spec_path}")
    _require_credentials(state, compiled.config)
    schedule = _schedule_settings(state, compiled.config) if plan.operation == SCHEDULE else None
    if inputs.dry_run:
        runner.log(render_dry_run(state.report, project=str(state.project), requirements=_shown(requirements, state)))
        if plan.comment:
            with runner.group(DRY_RUN_COMMENT_GROUP):
                runner.log(render_comment(state.report, comment_marker(inputs.pipeline, inputs.working_directory)))
        return _finish(state)
    if plan.operation == COMPILE or (plan.operation == SCHEDULE and schedule is None):
        return _finish(state)
    if plan.operation != UNSCHEDULE:
        require_pinned_images(compiled.plan.resources)
    cloud = connect(_target(inputs, compiled.config), compiled.config, environ, runner.mask, runner.log)
    if plan.operation == UNSCHEDULE:
        with runner.group("Delete the schedule"):
            deleted = cloud.unschedule(compiled)
            state.report = state.report.with_(schedule_name=", ".join(deleted) or None)
            runner.log(f"deleted {len(deleted)} schedule(s)" + (f": {', '.join(deleted)}" if deleted else ""))
        return _finish(state)
    _connect_github(state, environ)
    scope = RunScope(state.event.head_sha, state.event.branch, state.event.pr_number, state.event.run_id)
    if plan.operation != SCHEDULE:
        if plan.cancel_superseded:
            _cancel_superseded(state, cloud, compiled, scope)
        if plan.reuse and state.event.head_sha:
            existing = cloud.find_run(compiled, scope)
            if existing is not None:
                return _report_run(state, cloud, existing)
    if plan.build:
        with runner.group("Build the image with Cloud Build"):
            image = inputs.image or compiled.plan.image
            built = cloud.build(state.project, image, sha=state.event.head_sha, branch=state.event.branch,
                                reuse=plan.reuse_image)
            state.report = state.report.with_(
                image=built.pinned, image_digest=built.digest, build_id=built.build_id, build_log_url=built.log_url,
                image_reused=built.reused,
            )
            runner.log(f"{'reused' if built.reused else 'built'} {built.pinned}")
        with runner.group("Compile against the built image"):
            compiled = _with_target(state, compile_fn(state.project, inputs.env, inputs.pipeline, built.pinned,
                                                      inputs.params))
            state.report = state.report.with_(spec_path=_write_spec(state, compiled.spec_bytes))
    if plan.operation == SCHEDULE and schedule is not None:
        with runner.group("Update the schedule"):
            scheduled = cloud.schedule(compiled, schedule)
            state.report = state.report.with_(schedule_name=scheduled.name, cron=scheduled.cron)
            runner.log(f"schedule {scheduled.name} ({scheduled.cron})")
        return _finish(state)
    with runner.group("Submit the pipeline run"):
        submitted = cloud.run_once(compiled, labels=plan.labels, params=inputs.params,
                                   scope=scope if plan.reuse and state.event.head_sha else None)
        runner.log(f"submitted {submitted.job_id}: {submitted.run_url}")
    return _report_run(state, cloud, submitted)


def _report_run(state: _Run, cloud: Cloud, submitted: Submitted) -> int:
    """Comment, optionally wait, and finish for a run this job submitted or found already submitted."""
    runner = state.runner
    if submitted.reused:
        runner.notice(f"commit {state.event.head_sha[:12]} already has run {submitted.job_id} of pipeline "
                      f"{state.inputs.pipeline} ({submitted.state}): reused, nothing built or submitted "
                      "(set the input force: true, or run the workflow manually, to run it again)",
                      title="One run per commit")
    state.report = state.report.with_(job_id=submitted.job_id, run_url=submitted.run_url, state=submitted.state,
                                      run_reused=submitted.reused)
    _update_comment(state)
    if not state.inputs.wait:
        return _finish(state)
    with runner.group("Wait for the run to finish"):
        final = cloud.wait(submitted)
        state.report = state.report.with_(state=final, waited=True)
        runner.log(f"{submitted.job_id} finished: {final}")
    _update_comment(state)
    if final not in SUCCEEDED:
        title = "Kubeflow run failed" if state.target == "kfp" else "Vertex run failed"
        runner.error(f"the pipeline run ended {final}: {submitted.run_url}", title=title)
        _finish(state)
        return 1
    return _finish(state)


def _cancel_superseded(state: _Run, cloud: Cloud, compiled: Any, scope: RunScope) -> None:
    """Stop paying for runs of older commits of this PR/branch; a failure here is only a warning."""
    try:
        cancelled = cloud.cancel_superseded(compiled, scope)
    except KvcError as err:
        state.runner.warning(f"could not cancel superseded runs: {err}")
        return
    if cancelled:
        state.runner.log(f"cancelled superseded runs: {', '.join(cancelled)}")
        state.report = state.report.with_(cancelled=tuple(cancelled))


def _with_target(state: _Run, compiled: Any) -> Any:
    """The compiled result with the config the run deploys with (the target inputs applied), named in the report."""
    from dataclasses import replace

    config = apply_target_inputs(state.inputs, compiled.config)
    state.target = target_of(config)
    project_id, region = state.inputs.project_id or config.project_id, state.inputs.region or config.region
    target = describe_target(config) if state.target == "kfp" else describe_target(
        config.model_copy(update={"project_id": project_id, "region": region}))
    state.report = state.report.with_(platform=PLATFORMS[state.target], target=target)
    return compiled if config is compiled.config else replace(compiled, config=config)


def _require_credentials(state: _Run, config: Any) -> None:
    """Finish the credential rule of ``decide`` now that the target is known (a KFP target may need none)."""
    build = state.plan.build
    why = ("Vertex AI" if state.target == "vertex" else "the Cloud Build of the image (build: true)" if build
           else "kfp.auth mode iap")
    require_credentials(state.event, state.plan, dry_run=state.inputs.dry_run,
                        google_needed=needs_google_credentials(build, config), why=why)


def _schedule_settings(state: _Run, config: Any) -> Any | None:
    """The schedule the config (or the ``cron`` input) asks for; None, with a notice, when it asks for none."""
    from kedro_vertex_ci.gcp.submission import no_schedule_reason, schedule_settings, start_time_in_the_past

    settings = schedule_settings(config, state.inputs.pipeline, {"cron_expression": state.inputs.cron})
    if settings is None:
        reason = no_schedule_reason(state.inputs.pipeline, "the action input cron")
        state.runner.notice(f"nothing was scheduled: {reason}. To run once on this branch instead, set mode: run-once",
                            title="No schedule")
        state.report = state.report.with_(schedule_skipped=reason)
        return None
    if state.target == "kfp":
        from kedro_vertex_ci.kubeflow.client import cron_for_kfp

        cron = cron_for_kfp(settings.cron_expression, settings.timezone)  # a time zone KFP lacks: refused now
        state.report = state.report.with_(cron=f"{cron} (UTC)")
        return settings
    if start_time_in_the_past(settings.start_time):
        state.runner.warning(f"start_time {settings.start_time} is in the past: Vertex AI may start the missed runs "
                             "since then right away", title="Schedule start in the past")
    zone = f"TZ={settings.timezone} " if settings.timezone else ""
    state.report = state.report.with_(cron=f"{zone}{settings.cron_expression}")
    return settings


def _finish(state: _Run) -> int:
    state.runner.add_summary(render_summary(state.report))
    _write_outputs(state.runner, state.report)
    return 0


def _write_outputs(runner: Runner, report: Report | None) -> None:
    """Every output, always: what is known so far (the spec path survives a later failure), else empty."""
    values = dict.fromkeys(OUTPUT_NAMES, "")
    if report is not None:
        values.update({
            "image-digest": report.image_digest or "",
            "image": report.image or "",
            "job-id": report.job_id or "",
            "run-url": report.run_url or "",
            "schedule-name": report.schedule_name or "",
            "spec-path": report.spec_path or "",
            "state": report.state or "",
        })
    runner.set_outputs(values)


def _connect_github(state: _Run, environ: Mapping[str, str]) -> None:
    """Set up the PR comment: the client, and the PR (from the event, or the open PR of a pushed commit)."""
    if not state.plan.comment:
        return
    if not state.inputs.github_token:
        state.runner.warning("no github-token input: the PR comment is skipped")
        return
    state.github = GitHubClient(state.event.api_url, state.inputs.github_token, state.event.repository)
    state.pr_number = state.event.pr_number
    if state.pr_number is None and state.event.head_sha:
        try:
            numbers = state.github.pull_requests_for_commit(state.event.head_sha)
        except Exception as err:  # noqa: BLE001 - without the PR there is no comment, nothing more
            state.runner.warning(f"could not look up the pull request of {state.event.head_sha[:12]}: {err}")
            numbers = []
        state.pr_number = numbers[0] if numbers else None


def _update_comment(state: _Run) -> None:
    """Write the sticky comment; a comment failure is a warning, never a failed deployment."""
    if state.github is None or state.pr_number is None:
        return
    marker = comment_marker(state.inputs.pipeline, state.inputs.working_directory)
    try:
        comment_id = state.github.upsert_sticky_comment(state.pr_number, marker, render_comment(state.report, marker))
        state.runner.log(f"PR #{state.pr_number} comment {comment_id} updated")
    except Exception as err:  # noqa: BLE001 - the deployment happened; the comment is only its echo
        state.runner.warning(f"could not update the PR comment: {err or type(err).__name__}")


def _target(inputs: Inputs, config: Any) -> CloudTarget:
    project_id = inputs.project_id or getattr(config, "project_id", None)
    region = inputs.region or getattr(config, "region", None)
    if not project_id or not region:
        raise ConfigError("set the project-id and region inputs (or project_id/region in conf/base/vertexai.yml)")
    return CloudTarget(project_id, region, inputs.workload_identity_provider, inputs.service_account)


def _requirements_file(state: _Run) -> Path | None:
    if not state.inputs.requirements:
        return None
    path = state.project / state.inputs.requirements
    return path if path.is_file() else None


def _shown(path: Path | None, state: _Run) -> str | None:
    return str(path.relative_to(state.project)) if path else None


def _pip_cache_dir(state: _Run) -> Path | None:
    if not state.inputs.pip_cache_dir:
        return None
    return (state.workspace / state.inputs.pip_cache_dir).resolve()


def _write_spec(state: _Run, spec_bytes: bytes) -> str:
    """Write the spec atomically under the project (visible to later steps, e.g. upload-artifact)."""
    from kedro_vertex_ci.fsutil import atomic_write

    folder = state.project / SPEC_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{_safe(state.inputs.pipeline)}.json"
    atomic_write(target, spec_bytes)  # a unique temp name: two runs in one workspace may write at once
    try:
        return str(target.relative_to(state.workspace.resolve()))
    except ValueError:
        return str(target)


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name) or "pipeline"


def _report_error(runner: Runner, err: KvcError, workspace: Path, project: Path) -> None:
    """Config problems become file/line annotations; other errors one annotation with the message."""
    if isinstance(err, ConfigError):
        for problem in err.problems:
            file = _relative(problem.file, workspace, project) if problem.file and problem.file != "action inputs" else None
            title = "Invalid action input" if problem.file == "action inputs" else "Invalid kedro-vertex-ci config"
            message = f"{problem.key}: {problem.message}" if problem.key else problem.message
            runner.error(message, file=file, line=problem.line, title=title)
    else:
        runner.error(str(err), title=f"kedro-vertex-ci {type(err).__name__}")
    runner.add_summary(f"## Kedro → Vertex AI: failed\n\n```\n{err}\n```\n")


def _relative(file: str, workspace: Path, project: Path) -> str:
    """Annotation paths are relative to the repository root; config problems name files under the project."""
    path = Path(file) if Path(file).is_absolute() else project / file
    try:
        return str(path.resolve().relative_to(workspace.resolve()))
    except ValueError:
        return file


def _path(value: str | None) -> Path | None:
    return Path(value) if value else None


def main(argv: list[str] | None = None) -> None:
    """``python -m action``: run the action; ``--version`` prints the version (the image build checks it)."""
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["--version"]:
        from importlib.metadata import version

        print(f"kedro-vertex-action {version('kedro-vertex-ci')}")
        sys.exit(0)
    sys.exit(run(os.environ))
