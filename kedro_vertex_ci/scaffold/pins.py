"""Pinning the actions a scaffolded workflow uses: ``owner/repo@<full commit sha> # vX.Y.Z``.

A tag can be moved; a commit SHA cannot, so the workflow names the commit and keeps the release it was cut
from as a comment (what Dependabot updates). The SHA is read at scaffold time with ``git ls-remote`` of the
action's repository (a short timeout: offline, the workflow gets the major tag and the user one command to
pin it later). Nothing here ever invents a SHA.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass

# The published Action and the major tag users follow (moved by .github/workflows/release.yml).
ACTION_REPOSITORY = "getindata/kedro-vertex-action"
ACTION_MAJOR = "v1"
CHECKOUT_REPOSITORY = "actions/checkout"
# Offline, checkout keeps this known release (a real commit of actions/checkout, tag v5.0.0).
CHECKOUT_SHA, CHECKOUT_VERSION = "08c6903cd8c0fde910a37f88322edcfb5dd907a8", "v5.0.0"
CHECKOUT_MAJOR = "v5"
LS_REMOTE_TIMEOUT = 8.0

_SHA = re.compile(r"^[0-9a-f]{40}$")
_VERSION = re.compile(r"^v(\d+)\.(\d+)\.(\d+)$")

Runner = Callable[..., "subprocess.CompletedProcess[str]"]


@dataclass(frozen=True)
class Pin:
    """One ``uses:`` reference: ``ref`` is a full commit SHA (``version`` its release tag) or a tag."""

    repository: str
    ref: str
    version: str | None = None

    @property
    def pinned(self) -> bool:
        return bool(_SHA.match(self.ref))

    def uses(self) -> str:
        """The text after ``uses:``."""
        comment = f" # {self.version}" if self.version and self.pinned else ""
        return f"{self.repository}@{self.ref}{comment}"


def is_sha(ref: str) -> bool:
    return bool(_SHA.match(ref))


def remote_url(repository: str) -> str:
    """Where git fetches ``owner/name`` from (git's ``url.<base>.insteadOf`` may redirect it)."""
    return f"https://github.com/{repository}.git"


def parse_ls_remote(text: str) -> dict[str, str]:
    """``{tag: commit sha}`` from ``git ls-remote --tags`` output (annotated tags peeled to their commit)."""
    direct: dict[str, str] = {}
    peeled: dict[str, str] = {}
    for line in text.splitlines():
        sha, _, ref = line.partition("\t")
        if not ref.startswith("refs/tags/") or not _SHA.match(sha):
            continue
        name = ref.removeprefix("refs/tags/")
        if name.endswith("^{}"):
            peeled[name[:-3]] = sha
        else:
            direct[name] = sha
    return {**direct, **peeled}


def _version_key(tag: str) -> tuple[int, int, int]:
    match = _VERSION.match(tag)
    assert match is not None
    return int(match[1]), int(match[2]), int(match[3])


def pick_release(tags: dict[str, str], ref: str) -> Pin | None:
    """The commit ``ref`` (a major tag like ``v1`` or a full tag like ``v1.2.3``) names, with its release tag.

    A major tag resolves to its commit, labelled with the highest ``vMAJOR.x.y`` on that same commit; when
    the major tag does not exist the highest ``vMAJOR.x.y`` release is used.
    """
    if ref in tags:
        commit = tags[ref]
        if _VERSION.match(ref):
            return Pin("", commit, ref)
        same = sorted((t for t in tags if _VERSION.match(t) and tags[t] == commit and
                       t.startswith(f"{ref}.")), key=_version_key)
        return Pin("", commit, same[-1] if same else ref)
    releases = sorted((t for t in tags if _VERSION.match(t) and t.startswith(f"{ref}.")), key=_version_key)
    return Pin("", tags[releases[-1]], releases[-1]) if releases else None


def ls_remote_tags(url: str, *, timeout: float = LS_REMOTE_TIMEOUT, run: Runner = subprocess.run) -> dict[str, str] | None:
    """The remote's tags, or None when git cannot reach it in ``timeout`` seconds (offline, no git)."""
    try:
        result = run(
            ["git", "ls-remote", "--tags", url],
            capture_output=True, text=True, timeout=timeout, check=False,
            env=_non_interactive_env(),
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return parse_ls_remote(result.stdout) if result.returncode == 0 else None


def _non_interactive_env() -> dict[str, str]:
    # Never prompt for credentials (a private or missing repository must fail fast, not hang).
    return {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true", "SSH_ASKPASS": "true"}


def resolve(repository: str, ref: str, *, fallback: Pin | None = None, timeout: float = LS_REMOTE_TIMEOUT) -> Pin:
    """``repository@ref`` pinned to its commit; unresolvable: ``fallback``, else the ref itself (unpinned)."""
    if is_sha(ref):
        return Pin(repository, ref, None)
    tags = ls_remote_tags(remote_url(repository), timeout=timeout)
    found = pick_release(tags, ref) if tags else None
    if found is not None:
        return Pin(repository, found.ref, found.version)
    return fallback or Pin(repository, ref)


def resolve_action(action_ref: str | None = None, *, timeout: float = LS_REMOTE_TIMEOUT) -> Pin:
    """The Action: ``--action-ref`` (a SHA is taken as it is, a tag is resolved), else its major tag."""
    return resolve(ACTION_REPOSITORY, action_ref or ACTION_MAJOR, timeout=timeout)


def resolve_checkout(*, timeout: float = LS_REMOTE_TIMEOUT) -> Pin:
    return resolve(CHECKOUT_REPOSITORY, CHECKOUT_MAJOR, timeout=timeout,
                   fallback=Pin(CHECKOUT_REPOSITORY, CHECKOUT_SHA, CHECKOUT_VERSION))


_USES = re.compile(r"^(?P<lead>\s*(?:-\s+)?uses:\s*)(?P<repo>[\w.-]+/[\w.-]+)@(?P<ref>[^\s#]+)(?P<rest>.*)$")


def pin_workflow_text(text: str, resolver: Callable[[str, str], Pin]) -> tuple[str, list[str]]:
    """Rewrite every ``uses: owner/repo@TAG`` not yet pinned to a SHA; returns (text, what could not be pinned)."""
    lines, unresolved = [], []
    for line in text.splitlines(keepends=True):
        match = _USES.match(line.rstrip("\n"))
        if match and not is_sha(match["ref"]):
            pin = resolver(match["repo"], match["ref"])
            if pin.pinned:
                line = f"{match['lead']}{pin.uses()}\n"
            else:
                unresolved.append(f"{match['repo']}@{match['ref']}")
        lines.append(line)
    return "".join(lines), unresolved
