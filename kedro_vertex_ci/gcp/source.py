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
import posixpath
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


_DOCKER_ESCAPED = frozenset(".+()|{}$")  # regexp characters with no meaning in Go's filepath.Match


def _go_clean(pattern: str) -> str:
    """Go's ``filepath.Clean`` (Docker cleans each pattern): ``./a/`` → ``a``, ``a/../b`` → ``b``."""
    cleaned = posixpath.normpath(pattern)
    return cleaned[1:] if cleaned.startswith("//") else cleaned


def _docker_regex(pattern: str) -> str:
    """Docker's translation of one cleaned pattern to a regexp (moby/patternmatcher ``Pattern.compile``)."""
    out = "^"
    index = 0
    while index < len(pattern):
        char = pattern[index]
        index += 1
        if char == "*" and pattern.startswith("*", index):
            index += 1
            if pattern.startswith("/", index):
                index += 1  # "**/" is "**"
            out += ".*" if index == len(pattern) else "(?:.*/)?"
        elif char == "*":
            out += "[^/]*"
        elif char == "?":
            out += "[^/]"
        elif char in _DOCKER_ESCAPED:
            out += "\\" + char
        elif char == "\\":
            out += re.escape(pattern[index]) if index < len(pattern) else "\\\\"
            index += 1
        else:
            out += char  # "[", "]", ranges and the rest go to the regexp as they are, as in Docker
    return out + "$"


@dataclass(frozen=True)
class DockerPattern:
    """One ``.dockerignore`` line after Docker's preprocessing: trimmed, cleaned, anchored at the root."""

    text: str  # cleaned, without "!" and leading "/"
    exception: bool  # a "!" line: re-includes what earlier lines excluded
    line: int


def read_docker_patterns(text: str, source: str = ".dockerignore") -> list[DockerPattern]:
    """Docker's reading of a .dockerignore: BOM dropped, ``#`` lines skipped (only at column 0), both ends
    trimmed, ``!`` for exceptions, ``filepath.Clean`` applied and a leading ``/`` dropped."""
    patterns = []
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.removesuffix("\r")
        if number == 1:
            line = line.removeprefix("\ufeff")
        if line.startswith("#"):
            continue
        line = line.strip()
        if not line:
            continue
        exception = line.startswith("!")
        line = line[1:].strip() if exception else line
        if not line:
            continue
        line = _go_clean(line)
        if len(line) > 1 and line.startswith("/"):
            line = line[1:]
        patterns.append(DockerPattern(line, exception, number))
    return patterns


class DockerIgnore:
    """Docker's ``.dockerignore`` matching, as ``docker build`` packs the context (moby/patternmatcher).

    Each pattern is Docker's own regexp for it, kept as a :class:`pathspec.pattern.RegexPattern` (Docker's
    rules are not gitignore's, so pathspec's gitwildmatch cannot express them). A path is matched level by
    level with its parent folder's results (``MatchesUsingParentResults``): a pattern a folder matched holds
    for everything inside it, and the last matching pattern decides. An excluded folder is entered only when
    an exception line starts with its path (``!data/keep`` re-includes ``data/keep``; ``!**/keep`` cannot).
    """

    def __init__(self, patterns: list[DockerPattern], source: str = ".dockerignore"):
        from pathspec.pattern import RegexPattern

        from ..errors import ConfigError, Problem

        self.patterns = patterns
        self.regexes: list[RegexPattern] = []
        for pattern in patterns:
            _check_go_pattern(pattern, source)
            try:
                regex = re.compile(_docker_regex(pattern.text)[:-1] + "\\Z")
            except re.error as err:
                raise ConfigError([Problem(source, "", f"syntax error in pattern {pattern.text!r} ({err})",
                                           pattern.line)]) from None
            self.regexes.append(RegexPattern(regex, include=not pattern.exception))

    def match(self, relative: str, parent: tuple[bool, ...] | None) -> tuple[bool, tuple[bool, ...]]:
        """(excluded?, per-pattern results to hand to the children) for ``relative`` given its folder's."""
        matched = False
        results = []
        for index, (pattern, regex) in enumerate(zip(self.patterns, self.regexes, strict=True)):
            hit = bool(parent and parent[index])
            if not hit:
                if pattern.exception != matched:  # Docker skips a pattern that cannot change the verdict
                    results.append(False)
                    continue
                hit = regex.match_file(relative) is not None
                if not hit and parent is None:
                    parts = relative.split("/")[:-1]
                    hit = any(regex.match_file("/".join(parts[: i + 1])) is not None for i in range(len(parts)))
            results.append(hit)
            if hit:
                matched = not pattern.exception
        return matched, tuple(results)

    def enters(self, folder: str) -> bool:
        """Whether ``docker build`` walks into an excluded ``folder`` (an exception may re-include inside)."""
        prefix = f"{folder}/"
        return any(p.exception and f"{p.text}/".startswith(prefix) for p in self.patterns)


def _check_go_pattern(pattern: DockerPattern, source: str) -> None:
    """Go's ``filepath.Match`` rejects an unclosed ``[`` or a trailing ``\\``: so does ``docker build``."""
    from ..errors import ConfigError, Problem

    text, depth, index = pattern.text, 0, 0
    while index < len(text):
        char = text[index]
        if char == "\\":
            index += 1
            if index == len(text):
                raise ConfigError([Problem(source, "", f"syntax error in pattern {text!r} (trailing \\)",
                                           pattern.line)])
        elif char == "[":
            depth += 1
        elif char == "]" and depth:
            depth -= 1
        index += 1
    if depth:
        raise ConfigError([Problem(source, "", f"syntax error in pattern {text!r} (unclosed [)", pattern.line)])


def _read_ignore(project: Path, name: str, seen: frozenset[str] = frozenset()) -> list[str] | None:
    path = project / name
    if not path.is_file() or name in seen:
        return None
    lines: list[str] = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        include = re.fullmatch(r"#!include:(.+)", line.strip())
        if include:
            lines.extend(_read_ignore(project, include.group(1).strip(), seen | {name}) or [])
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
    from pathspec import GitIgnoreSpec

    docker_path = project / ".dockerignore"
    docker = None
    if docker_path.is_file():
        text = docker_path.read_text(encoding="utf-8", errors="replace")
        docker = DockerIgnore(read_docker_patterns(text, str(docker_path)), str(docker_path))
    gcloud_lines = _read_ignore(project, ".gcloudignore")
    gitignore = GitIgnoreSpec.from_lines(gcloud_lines) if gcloud_lines is not None else None
    if docker is None and gitignore is None:
        gitignore = GitIgnoreSpec.from_lines(DEFAULT_IGNORES)

    docker_results: dict[str, tuple[bool, ...]] = {}

    def excluded(relative: str, is_dir: bool) -> bool:
        if _always_excluded(relative, is_dir):
            return True
        if gitignore is not None and gitignore.match_file(f"{relative}/" if is_dir else relative):
            return True
        if docker is None:
            return False
        hit, results = docker.match(relative, docker_results.get(posixpath.dirname(relative)))
        if is_dir:
            docker_results[relative] = results
        return hit and (not is_dir or not docker.enters(relative))

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
