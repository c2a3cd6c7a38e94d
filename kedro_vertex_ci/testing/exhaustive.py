"""The optimum plan by exhaustive search: the yardstick ``auto`` is measured against (tests and bench).

Every partition of the units into steps that the rules allow (equal placement; fixed groups alone) is scored
with the same cost model as ``auto`` (:func:`kedro_vertex_ci.autogroup.score`, which rejects partitions whose
steps form a cycle). Restricted-growth enumeration: Bell(n) partitions, so only for small graphs (n <= 12,
fewer when placements split the nodes).
"""

from __future__ import annotations

from ..autogroup import Partition, Score, UnitGraph, score
from ..costmodel import CostParams

MAX_UNITS = 12


def optimum(units: UnitGraph, cost: CostParams) -> tuple[Score, Partition]:
    """The best (wall, steps) over all allowed partitions, and one partition reaching it."""
    if len(units) > MAX_UNITS:
        raise ValueError(f"{len(units)} units: exhaustive search is for at most {MAX_UNITS}")
    best: list[tuple[Score, Partition]] = []
    steps: Partition = []

    def visit(u: int) -> None:
        if u == len(units):
            result = score(units, steps, cost)
            if result is not None and (not best or result < best[0][0]):
                best[:] = [(result, [list(s) for s in steps])]
            return
        if units.mergeable[u]:
            for step in steps:
                first = step[0]
                if units.mergeable[first] and units.placement[first] == units.placement[u]:
                    step.append(u)
                    visit(u + 1)
                    step.pop()
        steps.append([u])
        visit(u + 1)
        steps.pop()

    visit(0)
    return best[0]
