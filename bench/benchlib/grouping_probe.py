"""Print, as one JSON line, what each grouping of a project's default pipeline costs under the cost model.

Run by ``measures.measure_grouping`` in its own process (Kedro's project state is global):
``python grouping_probe.py PROJECT [--no-measurements] [--tag-width W]``. Uses the public entry points:
``compiler.compare_groupings`` (identity / tag / auto, the lower bound, each node's duration and source), plus
the single-step plan, and the exhaustive optimum (``kedro_vertex_ci.testing.exhaustive``) when the graph is
small enough. ``--tag-width W``: the ``tag`` plan tags node ``i`` with ``group.layer_<i // W>`` (the layered
graphs carry no tags, so ``auto`` sees them untagged).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
from pathlib import Path

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")


def main() -> None:
    from kedro_vertex_ci import grouping
    from kedro_vertex_ci.compiler import compare_groupings, compile_pipeline
    from kedro_vertex_ci.costmodel import estimate, node_seconds
    from kedro_vertex_ci.settings import node_placements
    from kedro_vertex_ci.testing.exhaustive import MAX_UNITS, optimum

    parser = argparse.ArgumentParser()
    parser.add_argument("project", type=Path)
    parser.add_argument("--no-measurements", action="store_true")
    parser.add_argument("--tag-width", type=int, default=0)
    args = parser.parse_args()
    started = time.perf_counter()
    comparison = compare_groupings(args.project, None, "__default__", None, not args.no_measurements)
    seconds = time.perf_counter() - started
    cost, durations = comparison.cost, comparison.durations
    loaded = compile_pipeline(args.project, None, "__default__", use_measurements=not args.no_measurements)
    graph = loaded.graph
    assert graph is not None
    order, preds = grouping.node_dependencies(graph)
    position = {n: i for i, n in enumerate(order)}

    def wall(step_nodes, step_preds):
        first = [min(position[n] for n in nodes) for nodes in step_nodes]
        return estimate(step_nodes, step_preds, durations.seconds, cost, tiebreak=first)

    plans = {p.strategy: {"steps": p.estimate.steps, "wall": p.estimate.wall, "billed": p.estimate.billed}
             for p in comparison.plans}
    if args.tag_width:
        tagged = dataclasses.replace(graph, nodes=tuple(
            dataclasses.replace(n, tags=n.tags | {f"group.layer_{position[n.name] // args.tag_width}"})
            for n in graph.nodes))
        steps = grouping.group_steps(tagged, "tag")
        index = {s.name: i for i, s in enumerate(steps)}
        est = wall([s.nodes for s in steps], [[index[d] for d in s.depends_on] for s in steps])
        plans["tag"] = {"steps": est.steps, "wall": est.wall, "billed": est.billed}
    single = wall([tuple(order)], [[]])
    plans["single"] = {"steps": 1, "wall": single.wall, "billed": single.billed}
    placements = node_placements(loaded.config.run_config, graph.nodes)
    result = {
        "nodes": len(graph.nodes),
        "single_valid": len(set(placements.values())) <= 1,  # one step for all breaks no placement
        "measured": durations.measured_count,
        "model": {"S": cost.step_overhead, "P": cost.parallelism, "default": cost.default_node_duration},
        "plans": plans,
        "bound": {"wall": comparison.lower.wall, "path": comparison.lower.path, "work": comparison.lower.work,
                  "placed_wall": comparison.lower.placed_wall},
        "plan_seconds": round(seconds, 3),
    }
    if len(order) <= MAX_UNITS:
        index = grouping._NodeIndex.build(graph, frozenset())
        units = grouping._units(index, "group.")
        unit_graph = grouping._unit_graph(units, index, node_seconds(order, {}, cost).seconds if
                                          args.no_measurements else durations.seconds, placements)
        best, _ = optimum(unit_graph, cost)
        result["optimum"] = {"wall": best[0], "steps": best[1]}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
