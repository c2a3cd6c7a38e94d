"""The optimiser behind grouping ``auto``: choose steps that minimise the estimated wall time.

Pure and integer-based: :mod:`kedro_vertex_ci.grouping` reduces the pipeline to a :class:`UnitGraph` (a
*unit* is one node, or a ``group.<name>`` tag group the user fixed) and gets back a partition of the units
into steps. Choosing the best partition is NP-hard, so it builds a handful of candidate plans and keeps the
one with the lowest estimated wall time under :mod:`kedro_vertex_ci.costmodel`, then the fewest steps
(which, at equal node work, is also the least billed time):

- one step per unit (``identity``; with tag groups that is the ``tag`` plan);
- greedy list clustering (:func:`_cluster`) for several *pretend* step overheads from 0 to infinity (where
  it fuses everything that may share a step: the single-step plan, split only where placement or tag
  groups force it), each with and without the rule that keeps a step's other readers from waiting on a
  node that could have run in parallel.

Whatever the candidate, these rules hold: units of different placement (resources, machine, accelerator,
Spot, image) never share a step; a fixed unit never shares its step; the step graph is acyclic (a step
only grows by a unit whose other producers are already upstream of it). The result depends only on the
graph, the durations and the settings.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterator, Sequence
from dataclasses import dataclass

from .costmodel import CostParams, makespan

_MAX_LANES = 32  # join candidates per unit: the tails of at most this many lanes
_FULL_SWEEP = 300  # units up to which every pretend overhead is tried (beyond: every other one)
_TRIAL_WORK = 60_000  # local search: at most this many units + edges scored in total
_MAX_TRIALS = 1_500
_STARTS = 4  # the best candidates each improved by local search
_FUSE_ALL = 1e12  # a pretend overhead so large that every allowed join wins (finite: inf + x == inf)


@dataclass(frozen=True)
class UnitGraph:
    """Units in topological order: ``preds[u]`` are unit indices < u."""

    preds: tuple[tuple[int, ...], ...]
    seconds: tuple[float, ...]  # the unit's node durations, summed
    mergeable: tuple[bool, ...]  # False: a fixed group, alone in its step
    placement: tuple[Hashable, ...]  # units may share a step only with equal placement
    first: tuple[int, ...] = ()  # position of the unit's first node in the node order (ties in the model)

    def __len__(self) -> int:
        return len(self.preds)


Partition = list[list[int]]
Score = tuple[float, int]  # (estimated wall, number of steps): lower is better


def best_partition(units: UnitGraph, cost: CostParams) -> Partition:
    """The candidate plan with the best :func:`score` (ties: the earlier candidate)."""
    candidates: list[Partition] = [[[u] for u in range(len(units))]]
    overhead = cost.step_overhead
    reach = _reach(units)
    pretends = (0.0, overhead / 2, overhead, 2 * overhead, _FUSE_ALL)
    for pretend in pretends if len(units) <= _FULL_SWEEP else pretends[::2]:
        for strict in (True, False):
            candidates.append(_cluster(units, cost, pretend, strict, reach))
    levels = _levels(units)
    depth = max(levels, default=0) + 1
    band = 1
    while True:
        candidates.append(_banded(units, cost, levels, band))
        if band >= depth:
            break
        band *= 2
    scored: dict[tuple[tuple[int, ...], ...], Score] = {}
    for partition in candidates:
        key = tuple(sorted(tuple(sorted(step)) for step in partition))
        if key not in scored:
            result = score(units, partition, cost)
            if result is not None:
                scored[key] = result
    starts = sorted(scored.items(), key=lambda item: (item[1], item[0]))  # the identity always scores
    size = len(units) + sum(len(p) for p in units.preds)
    budget = [min(_MAX_TRIALS, _TRIAL_WORK // (size + 1))]
    best = starts[0][1], [list(step) for step in starts[0][0]]
    for key, result in starts[:_STARTS]:
        improved = _improved(units, cost, result, [list(step) for step in key], budget)
        if improved[0] < best[0]:
            best = improved
    return best[1]


def _levels(units: UnitGraph) -> list[int]:
    """Each unit's depth: 0 for units reading no other unit, else 1 + the deepest unit it reads."""
    levels: list[int] = []
    for unit_preds in units.preds:
        levels.append(1 + max((levels[p] for p in unit_preds), default=-1))
    return levels


def _banded(units: UnitGraph, cost: CostParams, levels: Sequence[int], band: int) -> Partition:
    """Cut the graph into bands of ``band`` levels; inside a band, the weakly connected parts of one placement
    are packed (longest first) into at most P steps, which run in parallel."""
    parent = list(range(len(units)))

    def find(u: int) -> int:
        while parent[u] != u:
            parent[u] = parent[parent[u]]
            u = parent[u]
        return u

    for u, unit_preds in enumerate(units.preds):
        for p in unit_preds:
            if levels[p] // band == levels[u] // band and units.mergeable[u] and units.mergeable[p]:
                if units.placement[p] == units.placement[u]:
                    parent[find(u)] = find(p)
    parts: dict[int, list[int]] = {}
    for u in range(len(units)):
        parts.setdefault(find(u), []).append(u)
    by_bin: dict[tuple[int, Hashable, bool], list[list[int]]] = {}
    for root in sorted(parts):
        members = parts[root]
        first = members[0]
        key = (levels[first] // band, units.placement[first], units.mergeable[first])
        by_bin.setdefault(key, []).append(members)
    partition: Partition = []
    for (_, _, mergeable), groups in by_bin.items():
        if not mergeable:
            partition.extend(groups)
            continue
        work = [(-sum(units.seconds[u] for u in g), g[0], g) for g in groups]
        bins: list[tuple[float, list[int]]] = []
        for load, _, group in sorted(work):
            if len(bins) < cost.parallelism:
                bins.append((-load, list(group)))
            else:
                lightest = min(range(len(bins)), key=lambda i: (bins[i][0], i))
                total, members = bins[lightest]
                bins[lightest] = (total - load, members + group)
        partition.extend(sorted(sorted(members) for _, members in bins))
    return partition


def _improved(
    units: UnitGraph, cost: CostParams, best: Score, partition: Partition, budget: list[int]
) -> tuple[Score, Partition]:
    """Steepest descent while it helps: merge two steps, or move one unit to another step or a step of its
    own (equal placement, mergeable units only), within a budget of scored plans that keeps large graphs
    fast."""
    current = sorted(sorted(step) for step in partition)
    while budget[0] > 0:
        found: tuple[Score, Partition] | None = None
        for trial in _neighbours(units, current):
            budget[0] -= 1
            result = score(units, trial, cost)
            if result is not None and result < (found[0] if found else best):
                found = (result, trial)
            if budget[0] <= 0:
                break
        if found is None:
            break
        best, current = found[0], sorted(sorted(step) for step in found[1])
    return best, current


def _neighbours(units: UnitGraph, current: Partition) -> Iterator[Partition]:
    def compatible(a: int, b: int) -> bool:
        return units.mergeable[a] and units.mergeable[b] and units.placement[a] == units.placement[b]

    for i in range(len(current)):
        for j in range(i + 1, len(current)):
            if compatible(current[i][0], current[j][0]):
                yield [s for k, s in enumerate(current) if k not in (i, j)] + [current[i] + current[j]]
    for i, step in enumerate(current):
        if len(step) < 2:
            continue
        others = [s for k, s in enumerate(current) if k != i]
        for cut in range(1, len(step)):
            yield [*others, step[:cut], step[cut:]]
        for u in step:
            rest = [v for v in step if v != u]
            yield [*others, rest, [u]]
            for j, other in enumerate(others):
                if compatible(u, other[0]):
                    yield [*others[:j], others[j] + [u], *others[j + 1 :], rest]


def score(units: UnitGraph, partition: Partition, cost: CostParams) -> Score | None:
    """(wall, steps) of ``partition`` under the cost model; None when its steps would form a cycle."""
    step_of = [0] * len(units)
    for s, members in enumerate(partition):
        for u in members:
            step_of[u] = s
    preds: list[set[int]] = [set() for _ in partition]
    for u, unit_preds in enumerate(units.preds):
        for p in unit_preds:
            if step_of[p] != step_of[u]:
                preds[step_of[u]].add(step_of[p])
    order = _topological(preds)
    if order is None:
        return None
    rank = {s: i for i, s in enumerate(order)}
    times = [cost.step_overhead + sum(units.seconds[u] for u in partition[s]) for s in order]
    ordered_preds = [[rank[p] for p in preds[s]] for s in order]
    first = units.first or tuple(range(len(units)))
    tiebreak = [min(first[u] for u in partition[s]) for s in order]
    return round(makespan(times, ordered_preds, cost.parallelism, tiebreak), 6), len(partition)


def _topological(preds: Sequence[set[int]]) -> list[int] | None:
    """Kahn's order, lowest index first among the ready; None on a cycle."""
    import heapq

    succs: list[list[int]] = [[] for _ in preds]
    waiting = [len(p) for p in preds]
    for s, step_preds in enumerate(preds):
        for p in step_preds:
            succs[p].append(s)
    ready = [s for s, count in enumerate(waiting) if count == 0]
    heapq.heapify(ready)
    order: list[int] = []
    while ready:
        s = heapq.heappop(ready)
        order.append(s)
        for t in succs[s]:
            waiting[t] -= 1
            if waiting[t] == 0:
                heapq.heappush(ready, t)
    return order if len(order) == len(preds) else None


def _reach(units: UnitGraph) -> tuple[list[int], list[int]]:
    """Per unit, bitsets of the units reading it directly and of all units downstream of it."""
    n = len(units)
    succ_mask = [0] * n
    succs: list[list[int]] = [[] for _ in range(n)]
    for u, unit_preds in enumerate(units.preds):
        for p in unit_preds:
            succ_mask[p] |= 1 << u
            succs[p].append(u)
    descendants = [0] * n
    for u in range(n - 1, -1, -1):
        mask = succ_mask[u]
        for v in succs[u]:
            mask |= descendants[v]
        descendants[u] = mask
    return succ_mask, descendants


def _cluster(
    units: UnitGraph, cost: CostParams, pretend: float, strict: bool, reach: tuple[list[int], list[int]]
) -> Partition:
    """Greedy list clustering: units in topological order join the step that finishes them earliest.

    Steps are laid on ``P`` lanes (at most P steps at once). A unit may join the last step of a lane when that
    step is open (no other step reads it yet), has the unit's placement, and already waits for every other
    step the unit reads (so the step graph stays acyclic and the step's start does not move); it does when
    that finishes the unit no later than a new step would, which pays ``pretend`` seconds of overhead.
    ``strict``: also refuse a join that would make another reader of the step, one that need not come after
    the unit, wait for it.
    """
    n = len(units)
    bit = [1 << u for u in range(n)]
    succ_mask, descendants = reach
    lanes = max(1, min(cost.parallelism, n, _MAX_LANES))
    lane_free = [0.0] * lanes
    lane_tail = [-1] * lanes
    step_of = [0] * n
    members: list[list[int]] = []
    finish: list[float] = []
    ancestors: list[int] = []  # bitset over steps
    closed: list[bool] = []
    readers: list[int] = []  # bitset over units outside the step that read it
    lane_of: list[int] = []
    for u in range(n):
        pred_steps = {step_of[p] for p in units.preds[u]}
        pred_mask = 0
        for h in pred_steps:
            pred_mask |= 1 << h
        ready = max((finish[h] for h in pred_steps), default=0.0)
        free = min(lane_free)
        lane = lane_free.index(free)
        new_finish = max(ready, free) + pretend + units.seconds[u]
        target, join_finish = -1, math.inf
        if units.mergeable[u]:
            for x in lane_tail:
                if x < 0 or closed[x] or units.placement[members[x][0]] != units.placement[u]:
                    continue
                if not units.mergeable[members[x][0]] or pred_mask & ~(ancestors[x] | (1 << x)):
                    continue
                if strict and (readers[x] & ~bit[u]) & ~descendants[u]:
                    continue
                candidate = finish[x] + units.seconds[u]
                if target < 0 or candidate < join_finish:
                    target, join_finish = x, candidate
        if target >= 0 and (join_finish <= new_finish or pretend >= _FUSE_ALL):
            step = target
            members[step].append(u)
            finish[step] = join_finish
            lane_free[lane_of[step]] = join_finish
            readers[step] = (readers[step] | succ_mask[u]) & ~bit[u]
        else:
            step = len(members)
            members.append([u])
            finish.append(new_finish)
            mask = pred_mask
            for h in pred_steps:
                mask |= ancestors[h]
            ancestors.append(mask)
            closed.append(False)
            readers.append(succ_mask[u])
            lane_of.append(lane)
            lane_free[lane] = new_finish
            lane_tail[lane] = step
        step_of[u] = step
        for h in pred_steps:
            if h != step:
                closed[h] = True
    return members
