"""Print, as one JSON line, the steps and critical path of a project's default pipeline per grouping strategy.

Run by ``measures.measure_grouping`` in its own process (Kedro's project state is global):
``python grouping_probe.py PROJECT``. Uses the public entry points: ``kedro_io.open_project(...).graph``,
``grouping.group_steps`` and ``grouping.critical_path_length``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")


def main() -> None:
    from kedro_vertex_ci.grouping import critical_path_length, group_steps
    from kedro_vertex_ci.kedro_io import open_project

    project = Path(sys.argv[1])
    with open_project(project, None) as kedro_project:
        graph = kedro_project.graph("__default__")
    result: dict[str, object] = {"nodes": len(graph.nodes)}
    for strategy in ("identity", "tag", "auto"):
        steps = group_steps(graph, strategy)
        result[strategy] = {"steps": len(steps), "critical_path": critical_path_length(steps)}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
