"""``network.host_aliases``: hosts-file lines a step writes before Kedro starts.

Vertex AI offers no ``hostAliases`` for pipeline steps, so the step writes them itself, into ``/etc/hosts``
(``KEDRO_VERTEX_CI_HOSTS_FILE`` names another file: tests, non-root dry runs). The lines sit in one marked
block that is replaced on every run, so a rerun or a retried step never appends them twice.

Docker and Kubernetes bind-mount ``/etc/hosts`` into the container: it cannot be replaced by a rename, so
the file is rewritten in place when the atomic rename is refused.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from ..model import HostAlias

HOSTS_FILE_ENV = "KEDRO_VERTEX_CI_HOSTS_FILE"
DEFAULT_HOSTS_FILE = "/etc/hosts"
BEGIN_MARKER = "# BEGIN kedro-vertex-ci host aliases"
END_MARKER = "# END kedro-vertex-ci host aliases"


def hosts_file(environ: Mapping[str, str]) -> Path:
    """The hosts file this step writes: the override from the environment, else ``/etc/hosts``."""
    return Path(environ.get(HOSTS_FILE_ENV) or DEFAULT_HOSTS_FILE)


def with_host_aliases(text: str, aliases: Iterable[HostAlias]) -> str:
    """``text`` (a hosts file) with our marked block replaced by ``aliases`` (pure; no block when empty)."""
    kept: list[str] = []
    inside = False
    for line in text.splitlines():
        if line.strip() == BEGIN_MARKER:
            inside = True
        elif line.strip() == END_MARKER and inside:
            inside = False
        elif not inside:
            kept.append(line)
    while kept and not kept[-1].strip():
        kept.pop()
    lines = [f"{alias.ip}\t{' '.join(alias.hostnames)}" for alias in aliases]
    if lines:
        kept += ([""] if kept else []) + [BEGIN_MARKER, *lines, END_MARKER]
    return "\n".join(kept) + "\n" if kept else ""


class HostsError(Exception):
    """The hosts file cannot be written (one line naming the file and the fix)."""


def apply_host_aliases(aliases: Iterable[HostAlias], environ: Mapping[str, str]) -> None:
    """Write ``aliases`` into this step's hosts file. Raises :class:`HostsError`."""
    path = hosts_file(environ)
    try:
        write_host_aliases(aliases, path)
    except OSError as err:
        raise HostsError(
            f"cannot write network.host_aliases to {path}: {err.strerror or err} (the step must run as root "
            f"to change /etc/hosts; {HOSTS_FILE_ENV} names another file)"
        ) from err


def write_host_aliases(aliases: Iterable[HostAlias], path: Path) -> bool:
    """Put ``aliases`` into the hosts file at ``path``; returns whether the file changed. Raises ``OSError``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    current = path.read_text(encoding="utf-8") if path.exists() else ""
    updated = with_host_aliases(current, aliases)
    if updated == current:
        return False
    try:
        _replace_atomically(path, updated)
    except OSError:
        with open(path, "r+" if path.exists() else "w", encoding="utf-8") as handle:
            handle.write(updated)
            handle.truncate()
    return True


def _replace_atomically(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        if path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o7777)
        else:
            os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
