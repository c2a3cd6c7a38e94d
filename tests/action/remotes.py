"""Local bare git repositories standing in for github.com/<owner>/<name>, reached by the real `git ls-remote`
through git's own ``url.<base>.insteadOf`` rewriting (so the code under test runs unchanged)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path


def git(folder: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "init.defaultBranch=main", *args],
        cwd=folder, capture_output=True, text=True, check=True,
    )
    return result.stdout.strip()


@dataclass(frozen=True)
class Remote:
    repository: str
    tags: dict[str, str]  # tag -> commit sha


def make_remote(base: Path, repository: str, releases: list[str], major_on: str | None) -> Remote:
    """A bare repository at ``base/<owner>/<name>.git``: one commit per release (annotated tags), plus the
    major tag (lightweight, like the ones actions move) on ``major_on``'s commit."""
    work = base / "work" / repository
    work.mkdir(parents=True)
    git(work, "init", "-q")
    tags: dict[str, str] = {}
    for release in releases:
        git(work, "commit", "-q", "--allow-empty", "-m", release)
        git(work, "tag", "-a", release, "-m", release)
        tags[release] = git(work, "rev-parse", "HEAD")
    if major_on:
        git(work, "tag", major_on.split(".")[0], tags[major_on])
        tags[major_on.split(".")[0]] = tags[major_on]
    bare = base / f"{repository}.git"
    bare.parent.mkdir(parents=True, exist_ok=True)
    git(base, "clone", "-q", "--bare", str(work), str(bare))
    return Remote(repository, tags)


def point_github_at(gitconfig: Path, base: Path) -> None:
    """Make `git` fetch https://github.com/X from ``base/X`` (written into the test's global git config)."""
    with gitconfig.open("a") as handle:
        handle.write(f'[url "file://{base}/"]\n\tinsteadOf = https://github.com/\n')


def standard_remotes(base: Path) -> dict[str, Remote]:
    """The Action (v1 = v1.2.0, a newer v2.0.0 exists) and actions/checkout (v5 = v5.0.1)."""
    return {
        "action": make_remote(base, "getindata/kedro-vertex-action", ["v1.0.0", "v1.2.0", "v2.0.0"], "v1.2.0"),
        "checkout": make_remote(base, "actions/checkout", ["v5.0.0", "v5.0.1"], "v5.0.1"),
    }
