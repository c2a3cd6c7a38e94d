"""Node durations measured inside a step, for grouping ``auto``'s cost model.

A session-local hook notes, per node, the first moment it touches anything (loading an input, or starting
when it has none) and the last (its run ending, or saving an output): load + run + save, which is what the
node adds to its step. Written at the end of the step as one small JSON file beside the run's intermediate
data, only when the pipeline root is a local folder (``run-local``): on Vertex it would cost every step a
Cloud Storage round trip (and a gcsfs import) for numbers nothing reads yet.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from kedro.framework.hooks import hook_impl

from .intermediate import FOLDER, escape_name

DURATIONS = "_node-durations"  # no run id starts with "_", so this never meets a run's data folder


def durations_folder(root: str, run_id: str) -> str:
    """Where the steps of run ``run_id`` put their node durations (one file per step), beside its data."""
    return f"{root.rstrip('/')}/{FOLDER}/{DURATIONS}/{escape_name(run_id)}"


class NodeTimer:
    """Collects ``{node name: seconds}`` for the nodes this step runs."""

    def __init__(self) -> None:
        self._first: dict[str, float] = {}
        self._last: dict[str, float] = {}

    def _touch(self, node: Any) -> None:
        now = time.perf_counter()
        self._first.setdefault(node.name, now)
        self._last[node.name] = now

    @hook_impl
    def before_dataset_loaded(self, dataset_name: str, node: Any) -> None:
        self._touch(node)

    @hook_impl
    def before_node_run(self, node: Any) -> None:
        self._touch(node)

    @hook_impl
    def after_node_run(self, node: Any) -> None:
        self._touch(node)

    @hook_impl
    def after_dataset_saved(self, dataset_name: str, node: Any) -> None:
        self._touch(node)

    def seconds(self) -> dict[str, float]:
        return {name: round(self._last[name] - start, 6) for name, start in sorted(self._first.items())}


def write_durations(root: str, run_id: str, nodes: tuple[str, ...], seconds: dict[str, float]) -> Path | None:
    """Save the step's measured nodes (atomically) when ``root`` is local; None when nothing was written."""
    if not nodes or not seconds or ("://" in root and not root.startswith("file://")):
        return None
    folder = Path(durations_folder(root.removeprefix("file://"), run_id))
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{escape_name(nodes[0])}.json"
    fd, tmp = tempfile.mkstemp(prefix=".durations.", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump({"nodes": seconds}, out, sort_keys=True)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
