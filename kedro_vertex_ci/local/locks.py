"""Who else is running: one lock per run folder, one registration per active run-local in a project.

Both are ``flock`` locks held on an open file for as long as run-local lives, so the kernel releases them
when the process ends in any way (exit, crash, SIGKILL): a lock is never stale, and no pid is trusted.

- **Run lock** ``<root>/<run id>/.lock``: exclusive. A second run-local with the same run id (same root) is
  refused; it would interleave logs and overwrite the first one's intermediate files.
- **Project registration** ``<project>/.kedro-vertex-ci/active/<random>.json``: each run-local holds a lock
  on its own file (written, locked, then renamed into place, so a reader never sees an unlocked new file).
  A new run lists the files whose lock is held to warn that another run-local shares the project's catalog
  files; files whose lock is free belong to ended runs and are removed.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ..errors import ConfigError

try:
    import fcntl
except ImportError:  # Windows: no flock; run-local runs without these checks there
    fcntl = None  # type: ignore[assignment]

RUN_LOCK = ".lock"
ACTIVE_DIR = Path(".kedro-vertex-ci") / "active"


class RunInUse(ConfigError):
    """Another run-local holds this run id's folder (exit code 2: choose another id or wait)."""


@dataclass(frozen=True)
class ActiveRun:
    """Another run-local working in the same project."""

    run_id: str
    pid: int
    run_dir: str


def _try_lock(handle: IO[Any]) -> bool:
    if fcntl is None:
        return True
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def is_run_active(run_dir: Path) -> bool:
    """Whether some run-local holds ``run_dir``'s lock right now."""
    try:
        handle = open(run_dir / RUN_LOCK, "rb")  # noqa: SIM115 - closed below, releasing the probe lock
    except FileNotFoundError:
        return False
    with handle:
        return not _try_lock(handle)


@contextlib.contextmanager
def hold_run(run_dir: Path, run_id: str) -> Iterator[None]:
    """Hold the run folder's lock for the ``with`` block; :class:`RunInUse` if another run-local has it."""
    run_dir.mkdir(parents=True, exist_ok=True)
    handle = open(run_dir / RUN_LOCK, "a+", encoding="utf-8")  # noqa: SIM115 - held for the whole run
    try:
        if not _try_lock(handle):
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise RunInUse(
                f"--run-id {run_id}: another run-local is running it right now (pid {holder}, folder "
                f"{run_dir}); wait for it to end, stop it, or choose another --run-id"
            )
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        yield
    finally:
        handle.close()  # releases the lock


@contextlib.contextmanager
def register_active(project: Path, run_id: str, run_dir: Path) -> Iterator[list[ActiveRun]]:
    """Announce this run in ``project`` for the ``with`` block; yields the other runs active there now."""
    folder = project / ACTIVE_DIR
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:  # a read-only project: nothing to announce, nothing to compare with
        yield []
        return
    others = _active_runs(folder)
    name = f"{uuid.uuid4().hex}.json"
    staging = folder / f".{name}.tmp"
    handle = open(staging, "w+", encoding="utf-8")  # noqa: SIM115 - held for the whole run
    try:
        _try_lock(handle)
        json.dump({"run_id": run_id, "pid": os.getpid(), "run_dir": str(run_dir)}, handle)
        handle.flush()
        os.replace(staging, folder / name)  # visible only once locked
        yield others
    finally:
        with contextlib.suppress(OSError):
            (folder / name).unlink()
        with contextlib.suppress(OSError):
            staging.unlink()
        handle.close()


def _active_runs(folder: Path) -> list[ActiveRun]:
    """The registrations whose lock is held; free ones (ended runs) are removed on the way."""
    found = []
    for path in sorted(folder.glob("*.json")):
        try:
            handle = open(path, "r+", encoding="utf-8")  # noqa: SIM115 - closed below
        except OSError:
            continue
        with handle:
            if _try_lock(handle):  # nobody holds it: that run is over
                with contextlib.suppress(OSError):
                    path.unlink()
                continue
            try:
                info = json.loads(handle.read())
                found.append(ActiveRun(str(info["run_id"]), int(info["pid"]), str(info["run_dir"])))
            except (ValueError, KeyError, TypeError):
                found.append(ActiveRun("unknown", 0, ""))
    return found
