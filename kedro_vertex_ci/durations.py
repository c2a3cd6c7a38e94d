"""Measured node durations: gathered into a run-local run's folder, read back by the compile.

Each step of a ``run-local`` run writes the durations of its nodes under the pipeline root
(:mod:`kedro_vertex_ci.runtime.timing`); at the end of the run they are merged into the run folder as
``<runs>/<run id>/node-durations.json``. The compile reads the project's run folders under the default
``run-local`` root (``<project>/.kedro-vertex-ci/runs``): each node's duration comes from the latest
successful run that ran it (by the time its ``result.json`` was written); nodes no run measured get the
default duration of the cost model.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

FILE = "node-durations.json"
RUNS = Path(".kedro-vertex-ci") / "runs"


@dataclass(frozen=True)
class Measured:
    """Seconds per node and the run id each number came from."""

    seconds: dict[str, float] = field(default_factory=dict)
    run: dict[str, str] = field(default_factory=dict)


def collect_run_durations(pipeline_root: str, run_id: str, run_dir: Path) -> Path | None:
    """Merge the steps' duration files of run ``run_id`` into ``run_dir``; None when there are none."""
    from .runtime.timing import durations_folder

    if "://" in pipeline_root and not pipeline_root.startswith("file://"):
        return None
    folder = Path(durations_folder(pipeline_root.removeprefix("file://"), run_id))
    seconds: dict[str, float] = {}
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else ():
        try:
            nodes = json.loads(path.read_text(encoding="utf-8"))["nodes"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        seconds.update({str(k): float(v) for k, v in nodes.items() if isinstance(v, int | float)})
    if not seconds:
        return None
    target = run_dir / FILE
    _write_json(target, {"run_id": run_id, "nodes": dict(sorted(seconds.items()))})
    return target


def measured_durations(project: Path) -> Measured:
    """Each node's duration from the latest successful run of the project that measured it."""
    runs_dir = project / RUNS
    if not runs_dir.is_dir():
        return Measured()
    runs: list[tuple[float, str, Path]] = []
    for run_dir in runs_dir.iterdir():
        result, durations = run_dir / "result.json", run_dir / FILE
        if result.is_file() and durations.is_file() and _succeeded(result):
            runs.append((result.stat().st_mtime, run_dir.name, durations))
    measured = Measured()
    for _, run_id, path in sorted(runs, reverse=True):
        try:
            nodes = json.loads(path.read_text(encoding="utf-8"))["nodes"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        for node, value in nodes.items():
            if node not in measured.seconds and isinstance(value, int | float) and value >= 0:
                measured.seconds[node] = float(value)
                measured.run[node] = run_id
    return measured


def _succeeded(result: Path) -> bool:
    try:
        return json.loads(result.read_text(encoding="utf-8")).get("state") == "succeeded"
    except (OSError, ValueError, AttributeError):
        return False


def _write_json(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(data, out, indent=2)
            out.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
