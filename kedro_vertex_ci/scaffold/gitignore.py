"""Keep run-local's folder out of git: it holds pickled intermediate data and step logs."""

from __future__ import annotations

from pathlib import Path

from ..fsutil import atomic_write

RUN_FOLDER_PATTERN = ".kedro-vertex-ci/"
_SAME = {b".kedro-vertex-ci", b".kedro-vertex-ci/", b"/.kedro-vertex-ci", b"/.kedro-vertex-ci/",
         b".kedro-vertex-ci/*", b"/.kedro-vertex-ci/*", b".kedro-vertex-ci/**"}


def ensure_run_folder_ignored(project: Path) -> Path | None:
    """Append ``.kedro-vertex-ci/`` to ``project/.gitignore`` (created if missing); None when already there.

    Read as bytes, so a .gitignore in any encoding is kept byte for byte.
    """
    path = project / ".gitignore"
    try:
        current = path.read_bytes()
    except FileNotFoundError:
        current = b""
    if any(line.strip() in _SAME for line in current.splitlines()):
        return None
    separator = b"" if not current or current.endswith(b"\n") else b"\n"
    block = b"# kedro-vertex-ci run-local: pickled intermediate data and logs\n" + RUN_FOLDER_PATTERN.encode() + b"\n"
    return atomic_write(path, current + separator + block)
