"""Atomic file writes: a reader never sees half a file, a crash never leaves one.

The file gets the mode any other tool would give it: an existing file keeps its mode, a new one gets
``0o666 & ~umask`` (``mkstemp`` alone would make every spec, workflow and Dockerfile ``0600``). A symlink is
written through, as ``cp`` and editors do; devices, FIFOs and sockets are refused rather than replaced.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from .errors import OutputError


def current_umask() -> int:
    """The process umask, read without changing it where Linux allows (``/proc/self/status``)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def check_target(path: Path) -> Path:
    """Raise :class:`OutputError` now if ``path`` cannot be a file we write (checked before long work)."""
    _resolve_target(Path(path))
    return path


def _resolve_target(path: Path) -> tuple[Path, int | None]:
    """The file to replace (a symlink's target) and its current mode, None when it does not exist yet."""
    if not path.name or path.name in {".", ".."}:
        raise OutputError(f"{str(path)!r}: names no file; give a file name such as pipeline.json")
    try:
        _check_no_file_in_the_way(path.parent, path)
        target = Path(os.path.realpath(path)) if path.is_symlink() else path
        info = target.stat()
    except FileNotFoundError:
        return target, None
    except (OSError, ValueError) as err:  # ValueError: a NUL byte in the name
        raise OutputError(f"{path!s}: cannot write it ({_reason(err)})") from err
    if stat.S_ISDIR(info.st_mode):
        raise OutputError(f"{path}: is a folder; give a file name inside it")
    if not stat.S_ISREG(info.st_mode):
        raise OutputError(f"{path}: is not a regular file (a device, FIFO or socket); refusing to replace it")
    return target, stat.S_IMODE(info.st_mode)


def _check_no_file_in_the_way(folder: Path, shown: Path) -> None:
    """The nearest existing ancestor of ``folder`` must be a folder (``-o spec.json/x.json`` is a typo)."""
    for ancestor in (folder, *folder.parents):
        if ancestor.exists() or ancestor.is_symlink():
            if not ancestor.is_dir():
                raise OutputError(f"{shown}: {ancestor} is a file, not a folder")
            return


def _make_parent(folder: Path, shown: Path) -> None:
    try:
        _check_no_file_in_the_way(folder, shown)
        folder.mkdir(parents=True, exist_ok=True)
    except (OSError, ValueError) as err:
        raise OutputError(f"{shown}: cannot create the folder {folder} ({_reason(err)})") from err


def _reason(err: Exception) -> str:
    return getattr(err, "strerror", None) or str(err)


def check_folder(folder: Path, what: str) -> Path:
    """``folder`` resolved, once it is sure a run can create and write it; nothing is left behind.

    Raises :class:`OutputError` naming ``what`` (the option) for a file in the way, a symlink loop, or a place
    where nothing can be created (read-only, /proc). The probe is a temporary folder, removed at once.
    """
    try:
        folder = folder.resolve()
        _check_no_file_in_the_way(folder, Path(what))
        existing = next(p for p in (folder, *folder.parents) if p.exists())
        probe = tempfile.mkdtemp(prefix=".kvc-probe-", dir=existing)
        os.rmdir(probe)
    except RuntimeError as err:  # pathlib's "Symlink loop from ..."
        raise OutputError(f"{what}: cannot use the folder {folder} ({err})") from err
    except (OSError, ValueError) as err:  # ValueError: a NUL byte in the name
        raise OutputError(f"{what}: cannot create the folder {folder} ({_reason(err)})") from err
    return folder


def atomic_write(path: Path, data: bytes | str, *, mode: int | None = None) -> Path:
    """Write ``data`` to a temp file next to ``path`` and rename it over ``path``; return ``path``.

    ``mode`` forces a mode (e.g. 0o600 for credentials); otherwise see the module docstring. Problems with
    the place (a file where a folder should be, read-only, /proc) raise :class:`OutputError` naming ``path``.
    """
    path = Path(path)
    target, existing_mode = _resolve_target(path)
    _make_parent(target.parent, path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    final_mode = mode if mode is not None else existing_mode
    if final_mode is None:
        final_mode = 0o666 & ~current_umask()
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as err:
        raise OutputError(f"{path}: cannot write in {target.parent} ({err.strerror})") from err
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), final_mode)
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError):
            raise OutputError(f"{path}: cannot write it ({err.strerror})") from err
        raise
    return path
