"""The build context shipped to Cloud Build: which project files go in, packed as a deterministic ``.tgz``.

Honours ``.dockerignore`` (Docker's rules: patterns anchored at the project root) and ``.gcloudignore``
(gitignore rules, including ``#!include:.gitignore``); a file either excludes stays out. Whatever they say,
these never leave the machine: ``.git``, credential files (``gha-creds-*.json`` written by
google-github-actions/auth, service-account keys, ADC files, ``.env``), ``conf/local`` (Kedro's place for
secrets), ``.kedro-vertex-ci`` (our own state: compiled specs and the action's pip cache) and local data
outside ``data/01_raw``.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path

ALWAYS_EXCLUDED_DIRS = (".git", "conf/local", ".kedro-vertex-ci")
CREDENTIAL_NAMES = re.compile(
    r"(gha-creds-[^/]*\.json|application_default_credentials\.json|credentials\.json|.*-key\.json|"
    r"service[-_]account.*\.json|\.env|\.env\..*|.*\.pem|.*\.p12)$"
)
DEFAULT_IGNORES = (".venv/", "venv/", "**/__pycache__/", "**/*.pyc", ".pytest_cache/", ".mypy_cache/",
                   ".ruff_cache/", "node_modules/", "mlruns/", ".kedro-vertex-ci/", "dist/", "build/")
_KEEP_DATA = "data/01_raw"
_SCAN_LIMIT = 64 * 1024


@dataclass(frozen=True)
class _Rule:
    itself: re.Pattern[str]  # the path is what the pattern names
    inside: re.Pattern[str]  # the path lies inside a folder the pattern names
    negate: bool
    dir_only: bool

    def matches(self, relative: str, is_dir: bool) -> bool:
        if self.inside.match(relative):
            return True
        return (is_dir or not self.dir_only) and bool(self.itself.match(relative))


def _to_regex(pattern: str, anchored: bool) -> tuple[re.Pattern[str], re.Pattern[str]]:
    out = ""
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if pattern.startswith("**/", index):
            out += "(?:.*/)?"
            index += 3
            continue
        if pattern.startswith("**", index):
            out += ".*"
            index += 2
            continue
        out += {"*": "[^/]*", "?": "[^/]"}.get(char, re.escape(char))
        index += 1
    prefix = "" if anchored else "(?:.*/)?"
    return re.compile(f"^{prefix}{out}$"), re.compile(f"^{prefix}{out}/.*$")


class IgnoreRules:
    """Ordered ignore patterns; the last matching pattern decides (``!`` re-includes)."""

    def __init__(self, lines: list[str], docker: bool):
        self.rules: list[_Rule] = []
        for raw in lines:
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            negate = line.startswith("!")
            line = line[1:].strip() if negate else line
            dir_only = line.endswith("/")
            line = line.strip("/") if docker else line.rstrip("/")
            anchored = docker or line.startswith("/") or "/" in line
            line = line.lstrip("/")
            if line.startswith("./"):
                line = line[2:]
            if line:
                self.rules.append(_Rule(*_to_regex(line, anchored), negate, dir_only))

    def excluded(self, relative: str, is_dir: bool) -> bool:
        verdict = False
        for rule in self.rules:
            if rule.matches(relative, is_dir):
                verdict = not rule.negate
        return verdict


def _read_ignore(project: Path, name: str) -> list[str] | None:
    path = project / name
    if not path.is_file():
        return None
    lines: list[str] = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        include = re.fullmatch(r"#!include:(.+)", line.strip())
        if include:
            lines.extend(_read_ignore(project, include.group(1).strip()) or [])
        else:
            lines.append(line)
    return lines


def _looks_like_credentials(path: Path) -> bool:
    """A small JSON file holding a private key, refresh token or external-account description."""
    if path.suffix != ".json" or path.stat().st_size > _SCAN_LIMIT:
        return False
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and (
        "private_key" in data or "refresh_token" in data
        or data.get("type") in {"service_account", "authorized_user", "external_account",
                                "impersonated_service_account"})


def _always_excluded(relative: str, is_dir: bool) -> bool:
    if any(relative == d or relative.startswith(f"{d}/") for d in ALWAYS_EXCLUDED_DIRS):
        return True
    if relative == "data" or not relative.startswith("data/"):
        return False
    keep = relative == _KEEP_DATA or relative.startswith(f"{_KEEP_DATA}/")
    return not keep and not (is_dir and _KEEP_DATA.startswith(f"{relative}/"))


def collect_files(project: Path) -> list[str]:
    """Project-relative POSIX paths of the files to ship, sorted."""
    docker = _read_ignore(project, ".dockerignore")
    gcloud = _read_ignore(project, ".gcloudignore")
    rules = []
    if docker is not None:
        rules.append(IgnoreRules(docker, docker=True))
    if gcloud is not None:
        rules.append(IgnoreRules(gcloud, docker=False))
    if not rules:
        rules.append(IgnoreRules(list(DEFAULT_IGNORES), docker=False))

    def excluded(relative: str, is_dir: bool) -> bool:
        return _always_excluded(relative, is_dir) or any(r.excluded(relative, is_dir) for r in rules)

    found: list[str] = []
    for folder, dirs, files in os.walk(project):
        base = Path(folder).relative_to(project).as_posix()
        base = "" if base == "." else f"{base}/"
        dirs[:] = sorted(d for d in dirs if not excluded(f"{base}{d}", True))
        for name in files:
            relative = f"{base}{name}"
            path = Path(folder) / name
            if CREDENTIAL_NAMES.search(name) or excluded(relative, False) or path.is_symlink():
                continue
            if _looks_like_credentials(path):
                continue
            found.append(relative)
    return sorted(found)


def make_tarball(project: Path, files: list[str]) -> bytes:
    """A gzip'd tar of ``files``: sorted, zero mtimes and owners, so the same tree gives the same bytes."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for relative in files:
            path = project / relative
            info = tarfile.TarInfo(relative)
            info.size = path.stat().st_size
            info.mode = 0o755 if os.access(path, os.X_OK) else 0o644
            info.mtime = 0
            with path.open("rb") as handle:
                tar.addfile(info, handle)
    packed = io.BytesIO()
    with gzip.GzipFile(fileobj=packed, mode="wb", mtime=0) as gz:
        gz.write(raw.getvalue())
    return packed.getvalue()
