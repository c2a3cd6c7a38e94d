"""Names Vertex accepts, built from names users write (spaces, capitals, underscores) — pure functions.

Vertex rules: pipeline job ids match ``[a-z0-9][a-z0-9-]{0,127}``; label keys and values are lowercase letters,
digits, ``_`` and ``-``, at most 63 characters, keys starting with a letter; schedule display names should stay
short (64 characters is what users report as safe). Git metadata comes from the GitHub Actions environment or
from ``git`` itself, and becomes labels so that runs can be traced back to a commit, branch and pull request.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

from ..names import sanitize_label_value, sanitize_name

JOB_ID_MAX = 128
LABEL_MAX = 63
SCHEDULE_NAME_MAX = 64


def slug(text: str, limit: int = JOB_ID_MAX) -> str:
    """Lowercase letters, digits and single dashes, starting with a letter; at most ``limit`` characters."""
    return sanitize_name(text, max_length=limit)


def _shorten(value: str, limit: int) -> str:
    """Cut ``value`` to ``limit`` keeping it unique: long values end with a short hash of the whole."""
    if len(value) <= limit:
        return value
    digest = hashlib.sha256(value.encode()).hexdigest()[:6]
    return f"{value[: limit - 7].rstrip('-_')}-{digest}"


def job_id(base: str, now: datetime, suffix: str) -> str:
    """``<slug>-<UTC timestamp>-<suffix>``: unique per submission, sortable, readable in the console."""
    stamp = now.strftime("%Y%m%d%H%M%S")
    tail = f"-{stamp}-{re.sub(r'[^a-z0-9]', '', suffix.lower())[:8] or '0'}"
    return f"{slug(base, JOB_ID_MAX - len(tail))}{tail}"


def label_value(text: str) -> str:
    return sanitize_label_value(str(text))


def label_key(text: str) -> str:
    key = label_value(text)
    return key if key[:1].isalpha() else f"k-{key}"[:LABEL_MAX]


def labels(values: Mapping[str, object]) -> dict[str, str]:
    """Sanitise a mapping into valid Vertex labels (empty values dropped)."""
    out: dict[str, str] = {}
    for key, value in values.items():
        if value is None or str(value) == "":
            continue
        out[label_key(key)] = label_value(str(value))
    return out


def schedule_display_name(identity: str, pipeline: str) -> str:
    """The stable identity of a project's schedule for one pipeline: no commit, no timestamp in it."""
    pipeline_part = "default" if pipeline == "__default__" else pipeline
    return _shorten(f"kvc-{slug(identity)}-{slug(pipeline_part)}", SCHEDULE_NAME_MAX)


def docker_tag(text: str) -> str:
    """A valid image tag (``[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}``) from a branch name."""
    value = re.sub(r"[^A-Za-z0-9_.-]+", "-", text).lstrip(".-") or "latest"
    return value[:128]


def console_run_url(project: str, region: str, job: str) -> str:
    return f"https://console.cloud.google.com/vertex-ai/locations/{region}/pipelines/runs/{job}?project={project}"


def console_pipelines_url(project: str, region: str) -> str:
    return f"https://console.cloud.google.com/vertex-ai/pipelines?project={project}&region={region}"


def git_context(environ: Mapping[str, str], project: Path | None = None) -> dict[str, str]:
    """``{sha, branch, pr}`` as far as known: GitHub Actions variables first, then ``git`` in ``project``."""
    info: dict[str, str] = {}
    sha = environ.get("GITHUB_SHA")
    branch = environ.get("GITHUB_HEAD_REF") or environ.get("GITHUB_REF_NAME")
    match = re.fullmatch(r"refs/pull/(\d+)/(?:merge|head)", environ.get("GITHUB_REF", ""))
    if match:
        info["pr"] = match.group(1)
        if branch and branch.endswith(("/merge", "/head")):
            branch = environ.get("GITHUB_HEAD_REF") or None
    if (not sha or not branch) and project is not None:
        sha = sha or _git(project, "rev-parse", "HEAD")
        branch = branch or _git(project, "rev-parse", "--abbrev-ref", "HEAD")
    if sha:
        info["sha"] = sha
    if branch and branch != "HEAD":
        info["branch"] = branch
    return info


def _git(project: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=project, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None


def git_labels(context: Mapping[str, str]) -> dict[str, str]:
    return labels({"git-sha": context.get("sha"), "git-branch": context.get("branch"),
                   "github-pr": context.get("pr")})
