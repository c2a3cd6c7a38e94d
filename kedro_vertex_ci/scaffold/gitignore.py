"""Keep run-local's folder out of git: it holds pickled intermediate data and step logs."""

from __future__ import annotations

from pathlib import Path

from ..errors import OutputError
from ..fsutil import atomic_write

RUN_FOLDER_PATTERN = ".kedro-vertex-ci/"
_SAME = {b".kedro-vertex-ci", b".kedro-vertex-ci/", b"/.kedro-vertex-ci", b"/.kedro-vertex-ci/",
         b".kedro-vertex-ci/*", b"/.kedro-vertex-ci/*", b".kedro-vertex-ci/**"}


def ensure_run_folder_ignored(project: Path) -> Path | None:
    """Append ``.kedro-vertex-ci/`` to ``project/.gitignore`` (created if missing); None when already there."""
    update = planned_gitignore(project)
    return atomic_write(*update) if update else None


def planned_gitignore(project: Path) -> tuple[Path, bytes] | None:
    """The .gitignore path and its new bytes, None when the run folder is already ignored; nothing written.

    Read as bytes, so a .gitignore in any encoding is kept byte for byte.
    """
    path = project / ".gitignore"
    try:
        is_file = path.is_file()
        current = path.read_bytes() if is_file else b""
    except OSError as err:
        raise OutputError(f"{path}: cannot read it ({err.strerror})") from err
    if not is_file and (path.exists() or path.is_symlink()):
        raise OutputError(f"{path}: is not a regular file; cannot add {RUN_FOLDER_PATTERN} to it")
    if any(line.strip() in _SAME for line in current.splitlines()):
        return None
    separator = b"" if not current or current.endswith(b"\n") else b"\n"
    block = b"# kedro-vertex-ci run-local: pickled intermediate data and logs\n" + RUN_FOLDER_PATTERN.encode() + b"\n"
    return path, current + separator + block
