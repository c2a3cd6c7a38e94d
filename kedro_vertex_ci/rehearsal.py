"""Rehearse the GitHub Action: a realistic event payload and runner environment from the local git state.

Pure: takes the git facts and the user's choices, returns the payload and the variables GitHub would give a
container action (``GITHUB_*``, ``INPUT_*`` with hyphens kept, file-command paths). The command in
``commands/rehearsal.py`` gathers the facts, runs the Action (in its container or in-process) and shows what
it printed. Every rehearsal is a dry run: the Action calls no cloud API and the GitHub API URL points at a
closed loopback port, so nothing leaves the machine even by mistake.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError

EVENTS = ("push", "pull_request", "merge", "schedule", "workflow_dispatch")
WORKSPACE = "/github/workspace"
FILE_COMMANDS = "/github/file_commands"
WORKFLOW_DIR = "/github/workflow"
UNREACHABLE_API = "http://127.0.0.1:9"  # the discard port: closed, so a stray API call fails at once
REHEARSAL_TOKEN = "rehearsal-token-not-a-secret"  # noqa: S105 - a stand-in the Action masks like a real one
ZERO_SHA = "0" * 40
_INPUT_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
_EXPRESSION = re.compile(r"\$\{\{.*?\}\}", re.DOTALL)
_FALLBACK = re.compile(r"^.*\|\|\s*'([^']*)'$")  # inputs.pipeline || '__default__'
_TOKEN_EXPRESSIONS = {"github.token", "secrets.github_token"}


@dataclass(frozen=True)
class GitFacts:
    """What the local clone says: its GitHub name, the commit, the branch and the default branch."""

    repository: str  # owner/name
    sha: str
    branch: str
    default_branch: str
    message: str = "local commit"


@dataclass(frozen=True)
class Rehearsal:
    """The payload and environment of one rehearsed event, plus notes for the user."""

    event_name: str  # GITHUB_EVENT_NAME (merge is a push to the default branch)
    payload: dict[str, Any]
    env: dict[str, str]
    notes: tuple[str, ...]


def github_repository(remote_url: str) -> str | None:
    """``owner/name`` from a GitHub remote URL (https, ssh or scp-like), else None."""
    match = re.search(r"github\.com[:/]+([^/\s]+)/([^/\s]+?)(?:\.git)?/?$", remote_url.strip())
    return f"{match.group(1)}/{match.group(2)}" if match else None


def parse_inputs(items: tuple[str, ...] | list[str]) -> dict[str, str]:
    """``--input name=value`` items (names as in a workflow's ``with:``)."""
    inputs: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not _INPUT_NAME.match(name):
            raise ConfigError(f"--input {item!r}: expected NAME=VALUE, NAME as in the workflow's `with:`")
        inputs[name.lower()] = value
    return inputs


def action_input_defaults(action_yml: Mapping[str, Any]) -> dict[str, str]:
    """Each input's default from a parsed action.yml (what GitHub passes when a workflow omits it)."""
    declared = action_yml.get("inputs") or {}
    if not isinstance(declared, Mapping):
        raise ConfigError("action.yml: inputs: expected a mapping")
    return {str(name).lower(): _text((spec or {}).get("default", "")) for name, spec in declared.items()}


def workflow_inputs(workflow: Mapping[str, Any], source: str) -> dict[str, str]:
    """The ``with:`` of the first step that uses the Action (``…/kedro-vertex-action@…`` or a local ``./``)."""
    jobs = workflow.get("jobs") if isinstance(workflow, Mapping) else None
    for job in (jobs or {}).values() if isinstance(jobs, Mapping) else []:
        for step in (job or {}).get("steps") or [] if isinstance(job, Mapping) else []:
            uses = str(step.get("uses", "")) if isinstance(step, Mapping) else ""
            if "kedro-vertex-action" in uses or uses.startswith("./"):
                given = step.get("with") or {}
                if not isinstance(given, Mapping):
                    raise ConfigError(f"{source}: the step using {uses} has a `with:` that is not a mapping")
                return {str(k).lower(): _text(v) for k, v in given.items()}
    raise ConfigError(f"{source}: no step uses the kedro-vertex-action (looked for `uses: …/kedro-vertex-action@…`)")


def resolve_expressions(inputs: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """Inputs with ``${{ … }}`` resolved where a rehearsal can: the token gets a stand-in, ``x || 'literal'``
    its literal; anything else (variables, secrets, dispatch inputs) is emptied, with a note."""
    resolved: dict[str, str] = {}
    notes: list[str] = []
    for name, value in inputs.items():
        unknown: list[str] = []

        def substitute(match: re.Match[str], unknown: list[str] = unknown) -> str:
            inner = match.group(0)[3:-2].strip()
            if inner.lower() in _TOKEN_EXPRESSIONS:
                return REHEARSAL_TOKEN
            fallback = _FALLBACK.match(inner)
            if fallback:
                return fallback.group(1)
            unknown.append(match.group(0))
            return ""

        resolved[name] = _EXPRESSION.sub(substitute, value).strip()
        if unknown:
            notes.append(f"input {name} is {value.strip()!r} in the workflow; a rehearsal cannot read it, so it "
                         f"is {resolved[name]!r} here: pass --input {name}=VALUE to set it")
    return resolved, notes


def rehearse(
    event: str,
    git: GitFacts,
    inputs: Mapping[str, str],
    *,
    branch: str | None = None,
    pr_number: int | None = None,
    paths: Mapping[str, str] | None = None,
) -> Rehearsal:
    """The payload and runner environment GitHub would give the Action for ``event`` on this clone.

    ``paths`` maps ``workspace``, ``file_commands`` and ``workflow`` to where the Action sees them (the
    container paths by default); ``inputs`` are final (defaults, workflow and ``--input`` merged).
    """
    if event not in EVENTS:
        raise ConfigError(f"--event {event!r}: expected one of {', '.join(EVENTS)}")
    where = {"workspace": WORKSPACE, "file_commands": FILE_COMMANDS, "workflow": WORKFLOW_DIR, **(paths or {})}
    notes: list[str] = []
    pushed = git.default_branch if event == "merge" else (branch or git.branch)
    if event == "pull_request" and pushed == git.default_branch:
        notes.append(f"{pushed} is the default branch; the pull request comes from branch 'rehearsal' instead "
                     "(pass --branch to name it)")
        pushed = "rehearsal"
    owner = git.repository.split("/")[0]
    repo = _repository(git)
    name = "push" if event == "merge" else event
    env = {
        "CI": "true", "GITHUB_ACTIONS": "true", "RUNNER_OS": "Linux", "RUNNER_ARCH": "X64",
        "GITHUB_EVENT_NAME": name, "GITHUB_EVENT_PATH": f"{where['workflow']}/event.json",
        "GITHUB_REPOSITORY": git.repository, "GITHUB_REPOSITORY_OWNER": owner,
        "GITHUB_WORKSPACE": where["workspace"], "GITHUB_OUTPUT": f"{where['file_commands']}/output",
        "GITHUB_STEP_SUMMARY": f"{where['file_commands']}/summary", "GITHUB_ENV": f"{where['file_commands']}/env",
        "GITHUB_SERVER_URL": "https://github.com", "GITHUB_API_URL": UNREACHABLE_API,
        "GITHUB_RUN_ID": "1", "GITHUB_RUN_NUMBER": "1", "GITHUB_RUN_ATTEMPT": "1", "GITHUB_ACTOR": owner,
        "GITHUB_WORKFLOW": "Kedro on Vertex AI (rehearsal)", "GITHUB_JOB": "vertex", "RUNNER_TEMP": "/tmp",
        "GITHUB_SHA": git.sha,
        # An OIDC endpoint as the runner gives a job with `id-token: write`; the dry run never calls it.
        "ACTIONS_ID_TOKEN_REQUEST_URL": f"{UNREACHABLE_API}/oidc?api-version=2.0",
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN": REHEARSAL_TOKEN,
    }
    if name == "pull_request":
        number = pr_number or 1
        env.update(GITHUB_REF=f"refs/pull/{number}/merge", GITHUB_REF_NAME=f"{number}/merge",
                   GITHUB_HEAD_REF=pushed, GITHUB_BASE_REF=git.default_branch)
        payload = _pull_request_payload(git, repo, pushed, number)
    else:
        ref_branch = pushed if name == "push" else (branch or git.default_branch)
        env.update(GITHUB_REF=f"refs/heads/{ref_branch}", GITHUB_REF_NAME=ref_branch)
        payload = _payload(name, git, repo, ref_branch)
    env.update({f"INPUT_{key.upper()}": value for key, value in inputs.items()})
    env["INPUT_DRY-RUN"] = "true"
    return Rehearsal(event_name=name, payload=payload, env=env, notes=tuple(notes))


def _repository(git: GitFacts) -> dict[str, Any]:
    owner, _, name = git.repository.partition("/")
    return {
        "id": 1, "name": name, "full_name": git.repository, "private": True, "fork": False,
        "default_branch": git.default_branch, "owner": {"login": owner, "type": "Organization"},
        "html_url": f"https://github.com/{git.repository}",
    }


def _payload(name: str, git: GitFacts, repo: dict[str, Any], branch: str) -> dict[str, Any]:
    sender = {"login": repo["owner"]["login"], "type": "User"}
    if name == "push":
        return {
            "ref": f"refs/heads/{branch}", "before": ZERO_SHA, "after": git.sha, "created": False,
            "deleted": False, "forced": False, "base_ref": None,
            "head_commit": {"id": git.sha, "message": git.message, "distinct": True},
            "commits": [{"id": git.sha, "message": git.message, "distinct": True}],
            "repository": repo, "pusher": {"name": sender["login"]}, "sender": sender,
        }
    if name == "schedule":
        return {"schedule": "0 0 * * *", "repository": repo, "sender": sender}
    return {"ref": f"refs/heads/{branch}", "inputs": {}, "repository": repo, "sender": sender,
            "workflow": ".github/workflows/kedro-vertex.yml"}


def _pull_request_payload(git: GitFacts, repo: dict[str, Any], branch: str, number: int) -> dict[str, Any]:
    sender = {"login": repo["owner"]["login"], "type": "User"}
    return {
        "action": "synchronize", "number": number, "repository": repo, "sender": sender,
        "pull_request": {
            "number": number, "state": "open", "draft": False, "title": git.message.splitlines()[0][:200],
            "html_url": f"https://github.com/{git.repository}/pull/{number}",
            "head": {"ref": branch, "sha": git.sha, "repo": repo, "label": f"{repo['owner']['login']}:{branch}"},
            "base": {"ref": git.default_branch, "sha": ZERO_SHA, "repo": repo},
        },
    }


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)
