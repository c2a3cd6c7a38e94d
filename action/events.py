"""What happened (the event payload and ``GITHUB_*`` variables) and what to do about it (a pure plan).

:func:`read_event` is the only function here that reads files; :func:`decide` is a pure function of the
inputs and the event, table-tested in ``tests/action/test_events.py``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kedro_vertex_ci.errors import AuthError, ConfigError
from kedro_vertex_ci.names import sanitize_label_value

from .inputs import Inputs

RUN_ONCE, SCHEDULE, COMPILE = "run-once", "schedule", "compile"
UNSCHEDULE = "unschedule"


@dataclass(frozen=True)
class Event:
    """The facts about the triggering event the action needs, normalised across event types."""

    name: str  # GITHUB_EVENT_NAME
    repository: str  # owner/name
    sha: str  # the commit that was checked out (for PRs: the merge commit)
    head_sha: str  # the commit the user pushed (for PRs: the PR head)
    ref: str
    branch: str | None  # the branch pushed (push) or the PR's head branch
    default_branch: str | None
    pr_number: int | None = None
    fork: bool = False  # a PR whose head lives in another repository
    credentials: bool = True  # an OIDC token (or a credentials file) is available to this job
    server_url: str = "https://github.com"
    api_url: str = "https://api.github.com"
    run_id: str | None = None
    run_attempt: str | None = None
    actor: str | None = None

    @property
    def run_url(self) -> str | None:
        if not self.run_id:
            return None
        return f"{self.server_url}/{self.repository}/actions/runs/{self.run_id}"


@dataclass(frozen=True)
class ActionPlan:
    """What this run does: build or not, which operation, whether to keep a PR comment, and why."""

    operation: str  # RUN_ONCE | SCHEDULE | COMPILE
    build: bool
    comment: bool  # keep the sticky PR comment for this pipeline up to date
    reason: str  # one sentence shown in the log and the summary
    labels: Mapping[str, str] = field(default_factory=dict)
    reuse: bool = False  # reuse this commit's run instead of submitting again
    reuse_image: bool = True  # use the image already tagged with this commit instead of building again
    cancel_superseded: bool = False  # cancel still-running runs of older commits of this PR/branch


def _load_payload(path: str | None) -> dict[str, Any]:
    if not path:
        return {}
    try:
        loaded = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise ConfigError(f"GITHUB_EVENT_PATH {path} does not exist") from err
    except json.JSONDecodeError as err:
        raise ConfigError(f"GITHUB_EVENT_PATH {path} is not JSON: {err.msg} at line {err.lineno}") from err
    return loaded if isinstance(loaded, dict) else {}


def _repo_name(repo: Any) -> str | None:
    return repo.get("full_name") if isinstance(repo, dict) else None


def read_event(environ: Mapping[str, str]) -> Event:
    """Build the :class:`Event` from the payload file and the runner's ``GITHUB_*`` variables."""
    payload = _load_payload(environ.get("GITHUB_EVENT_PATH"))
    name = environ.get("GITHUB_EVENT_NAME", "") or "workflow_dispatch"
    repository = environ.get("GITHUB_REPOSITORY") or _repo_name(payload.get("repository")) or ""
    ref = environ.get("GITHUB_REF", "") or payload.get("ref", "")
    sha = environ.get("GITHUB_SHA", "") or payload.get("after", "")
    default_branch = (payload.get("repository") or {}).get("default_branch")
    pr = payload.get("pull_request") if name.startswith("pull_request") else None
    if isinstance(pr, dict):
        head, base = pr.get("head") or {}, pr.get("base") or {}
        head_repo, base_repo = _repo_name(head.get("repo")), _repo_name(base.get("repo")) or repository
        branch = environ.get("GITHUB_HEAD_REF") or head.get("ref")
        pr_number = pr.get("number") or payload.get("number")
        # A deleted fork has head.repo = null: treat it as a fork (no secrets, read-only token).
        fork = head_repo is None or head_repo != base_repo
        head_sha = head.get("sha") or sha
    else:
        branch = ref.removeprefix("refs/heads/") if ref.startswith("refs/heads/") else None
        pr_number, fork, head_sha = None, False, sha
    credentials = bool(
        (environ.get("ACTIONS_ID_TOKEN_REQUEST_URL") and environ.get("ACTIONS_ID_TOKEN_REQUEST_TOKEN"))
        or environ.get("GOOGLE_APPLICATION_CREDENTIALS")
    )
    return Event(
        name=name,
        repository=repository,
        sha=sha,
        head_sha=head_sha,
        ref=ref,
        branch=branch,
        default_branch=default_branch,
        pr_number=int(pr_number) if pr_number else None,
        fork=fork,
        credentials=credentials,
        server_url=environ.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/"),
        api_url=environ.get("GITHUB_API_URL", "https://api.github.com").rstrip("/"),
        run_id=environ.get("GITHUB_RUN_ID"),
        run_attempt=environ.get("GITHUB_RUN_ATTEMPT"),
        actor=environ.get("GITHUB_ACTOR"),
    )


def run_labels(event: Event) -> dict[str, str]:
    """Vertex labels that tie a run to its commit, branch and PR (values: lowercase, <= 63 chars).

    ``git-sha`` is the full commit the user pushed: the Action finds "this commit's run" by it.
    """
    labels = {"git-sha": event.head_sha.lower(), "github-event": sanitize_label_value(event.name)}
    if event.branch:
        labels["git-branch"] = sanitize_label_value(event.branch)
    if event.pr_number:
        labels["github-pr"] = str(event.pr_number)
    if event.run_id and event.run_id.isdigit():
        labels["github-run"] = event.run_id  # run ids grow: they order runs of one branch
    return {key: value for key, value in labels.items() if value}


def _auto(event: Event) -> tuple[str, str]:
    """The operation ``mode: auto`` picks for this event, with the reason in words."""
    if event.name.startswith("pull_request"):
        return RUN_ONCE, f"pull request #{event.pr_number}: build the image and run the pipeline once"
    if event.name == "push":
        if event.branch and event.branch == event.default_branch:
            return SCHEDULE, f"push to the default branch {event.branch}: build the image and update the schedule"
        if event.ref.startswith("refs/tags/"):
            return RUN_ONCE, f"tag {event.ref.removeprefix('refs/tags/')}: build the image and run the pipeline once"
        return RUN_ONCE, f"push to branch {event.branch}: build the image and run the pipeline once"
    if event.name in ("workflow_dispatch", "schedule", "repository_dispatch"):
        return RUN_ONCE, f"{event.name}: run the pipeline once with the given params"
    return COMPILE, f"event {event.name} has no automatic action: compile and validate only"


MISSING_TOKEN = (
    "this job has no OIDC token (ACTIONS_ID_TOKEN_REQUEST_URL is not set), so nothing can be built, run or "
    "scheduled: add `permissions: id-token: write` to the job (with `contents: read`), or set "
    "`mode: compile` for jobs that should only validate (e.g. Dependabot runs, which never get a token)"
)
_SUPERSEDING_EVENTS = ("push", "pull_request")


def decide(inputs: Inputs, event: Event) -> ActionPlan:
    """The plan for this run. Fork PRs (and ``mode: compile``) compile and validate only, and succeed.

    Anywhere else a job without credentials is an error: compiling only and exiting 0 would let the user
    believe the pipeline ran or was scheduled.
    """
    is_pr = event.name.startswith("pull_request")
    if inputs.mode == "compile":
        return ActionPlan(COMPILE, False, False, "mode: compile: compile and validate only")
    if is_pr and event.fork:
        return ActionPlan(
            COMPILE,
            False,
            False,
            "pull request from a fork: GitHub gives it no OIDC token and a read-only token, so the pipeline "
            "is compiled and validated only (nothing is built, run or commented)",
        )
    if not event.credentials and not inputs.dry_run:
        raise AuthError(MISSING_TOKEN)
    if inputs.mode == "auto":
        operation, reason = _auto(event)
    else:
        operation, reason = inputs.mode, f"mode: {inputs.mode}"
    if operation == COMPILE:
        return ActionPlan(COMPILE, False, False, reason)
    comment = operation == RUN_ONCE and (is_pr or (event.name == "push" and event.branch is not None))
    # A manual run means "run it again"; automatic events reuse what this commit already has.
    reuse = not inputs.force and event.name in _SUPERSEDING_EVENTS
    cancel = inputs.cancel_superseded and operation == RUN_ONCE and event.name in _SUPERSEDING_EVENTS
    build = inputs.build and operation != UNSCHEDULE  # deleting a schedule needs no image
    return ActionPlan(operation, build, comment, reason, run_labels(event), reuse=reuse,
                      reuse_image=not inputs.force, cancel_superseded=cancel and bool(event.branch or event.pr_number))
