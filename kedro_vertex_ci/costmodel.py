"""The cost model of a Vertex pipeline run, used by grouping ``auto`` and by ``kedro-vertex-ci plan``.

Pure: values in, values out. On Vertex every step pays a fixed start cost ``S`` (scheduling a VM or pod,
pulling the image, starting Python and Kedro) before its first node runs; its nodes then run one after the
other. So:

- a step's time = ``S`` + the sum of its nodes' durations;
- the wall time = the finish of the last step when every step starts as soon as all steps it depends on
  have finished and fewer than ``P`` steps are running (list scheduling, ready steps in topological order);
- the billed time = the sum over steps of ``S`` + its nodes' durations, also reported per machine.

A node's duration is its measured time (``run-local`` records them) times ``duration_scale``, or
``default_node_duration`` when it was never measured.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from .errors import GroupingError, Problem

# kedro-vertexai's documentation puts a step's start on Vertex at 1-2 minutes (VM/pod scheduling, image
# pull, Python + Kedro start): the middle of that range.
DEFAULT_STEP_OVERHEAD = 90.0
# Vertex itself starts every ready task; quotas and the project's VM budget are what bound it in practice.
DEFAULT_PARALLELISM = 8
DEFAULT_NODE_DURATION = 10.0
DEFAULT_DURATION_SCALE = 1.0

COST_PARAMS = ("step_overhead", "parallelism", "duration_scale", "default_node_duration")
_PARAMS_KEY = "run_config.grouping.params"


@dataclass(frozen=True)
class CostParams:
    """``S``, ``P``, the scale applied to measured durations and the duration of a never-measured node."""

    step_overhead: float = DEFAULT_STEP_OVERHEAD
    parallelism: int = DEFAULT_PARALLELISM
    duration_scale: float = DEFAULT_DURATION_SCALE
    default_node_duration: float = DEFAULT_NODE_DURATION

    @classmethod
    def from_params(cls, params: Mapping[str, object]) -> CostParams:
        """The cost keys of ``run_config.grouping.params`` (others are ignored here), checked."""
        values: dict[str, float | int] = {}
        for key in COST_PARAMS:
            if key not in params:
                continue
            value = params[key]
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise _bad(key, value, "a number")
            if key == "parallelism":
                if not isinstance(value, int) or value < 1:
                    raise _bad(key, value, "a whole number >= 1")
                values[key] = value
            elif value < 0 or (key == "duration_scale" and value == 0):
                raise _bad(key, value, "a number > 0" if key == "duration_scale" else "a number >= 0")
            else:
                values[key] = float(value)
        return cls(**values)  # type: ignore[arg-type]


def _bad(key: str, value: object, expected: str) -> GroupingError:
    message = f"{value!r} is not valid: expected {expected}"
    return GroupingError([Problem("vertexai.yml", f"{_PARAMS_KEY}.{key}", message)])


@dataclass(frozen=True)
class NodeSeconds:
    """Every node's modelled duration and where it came from (``measured`` or ``default``)."""

    seconds: Mapping[str, float]
    source: Mapping[str, str]


def node_seconds(nodes: Sequence[str], measured: Mapping[str, float], cost: CostParams) -> NodeSeconds:
    """The duration the model uses for each node: measured × scale, else the default."""
    seconds: dict[str, float] = {}
    source: dict[str, str] = {}
    for node in nodes:
        if node in measured:
            seconds[node] = max(0.0, float(measured[node])) * cost.duration_scale
            source[node] = "measured"
        else:
            seconds[node] = cost.default_node_duration
            source[node] = "default"
    return NodeSeconds(seconds, source)


def makespan(
    times: Sequence[float],
    preds: Sequence[Sequence[int]],
    parallelism: int,
    tiebreak: Sequence[int] | None = None,
) -> float:
    """Finish of the last of ``times`` (steps in topological order, ``preds`` by index) on ``parallelism`` slots.

    A ready step starts as soon as a slot is free; among ready steps the one with the longest remaining path
    goes first, then the lowest ``tiebreak`` (default: the index), so the result does not depend on how the
    caller happened to order steps that are equal for the model.
    """
    succs: list[list[int]] = [[] for _ in times]
    waiting = [len(p) for p in preds]
    for i, step_preds in enumerate(preds):
        for p in step_preds:
            succs[p].append(i)
    remaining = [0.0] * len(times)
    for i in range(len(times) - 1, -1, -1):
        remaining[i] = times[i] + max((remaining[j] for j in succs[i]), default=0.0)
    keys = tiebreak if tiebreak is not None else range(len(times))
    ready = [(-remaining[i], keys[i], i) for i, count in enumerate(waiting) if count == 0]
    heapq.heapify(ready)
    running: list[tuple[float, int]] = []
    now = 0.0
    while ready or running:
        while ready and len(running) < parallelism:
            i = heapq.heappop(ready)[2]
            heapq.heappush(running, (now + times[i], i))
        now, done = heapq.heappop(running)
        for j in succs[done]:
            waiting[j] -= 1
            if waiting[j] == 0:
                heapq.heappush(ready, (-remaining[j], keys[j], j))
    return now


@dataclass(frozen=True)
class Estimate:
    """The model's verdict on one plan."""

    steps: int
    wall: float
    billed: float
    billed_by_machine: Mapping[str, float]


def estimate(
    step_nodes: Sequence[Sequence[str]],
    step_preds: Sequence[Sequence[int]],
    seconds: Mapping[str, float],
    cost: CostParams,
    machines: Sequence[str] | None = None,
    tiebreak: Sequence[int] | None = None,
) -> Estimate:
    """Wall and billed time of steps given as node lists in topological order with their predecessors.

    ``tiebreak``: see :func:`makespan`; grouping ``auto`` and ``plan`` both pass the position of each step's
    first node in the pipeline's topological order, so they agree on every plan's wall time."""
    times = [cost.step_overhead + sum(seconds[n] for n in nodes) for nodes in step_nodes]
    by_machine: dict[str, float] = {}
    for i, time in enumerate(times):
        label = machines[i] if machines is not None else "default"
        by_machine[label] = by_machine.get(label, 0.0) + time
    wall = makespan(times, step_preds, cost.parallelism, tiebreak) if times else 0.0
    return Estimate(len(times), wall, sum(times), dict(sorted(by_machine.items())))


@dataclass(frozen=True)
class LowerBound:
    """No plan beats ``max(path, work)``: ``path`` = S + the longest chain of node durations; ``work`` = all
    node durations spread evenly over P slots.

    ``placed_path`` is the same chain bound under the placement rule: along any chain of nodes, each change of
    placement starts another step (two nodes of one placement with a node of another between them on a chain
    cannot share a step: that step would wait for itself), and each step pays S. So no *allowed* plan beats
    ``max(placed_path, work)`` either; it equals ``path`` when every node has one placement."""

    path: float
    work: float
    placed_path: float | None = None

    @property
    def wall(self) -> float:
        return max(self.path, self.work)

    @property
    def placed_wall(self) -> float:
        return max(self.path if self.placed_path is None else self.placed_path, self.work)


def lower_bound(
    order: Sequence[str],
    preds: Mapping[str, Iterable[str]],
    seconds: Mapping[str, float],
    cost: CostParams,
    placements: Mapping[str, Hashable] | None = None,
) -> LowerBound:
    """The bound for nodes in topological ``order`` with their predecessors (and their placements, if given:
    nodes missing from ``placements`` share one default placement)."""
    finish: dict[str, float] = {}
    placed: dict[str, float] = {}  # S for each placement run on the heaviest chain ending here, plus durations
    overhead = cost.step_overhead
    where = placements or {}
    for node in order:
        before = list(preds[node])
        finish[node] = seconds[node] + max((finish[p] for p in before), default=0.0)
        here = where.get(node)
        placed[node] = seconds[node] + max(
            (placed[p] + (overhead if where.get(p) != here else 0.0) for p in before), default=overhead
        )
    longest = max(finish.values(), default=0.0)
    work = sum(seconds[n] for n in order) / cost.parallelism
    placed_path = max(placed.values(), default=overhead) if placements is not None else None
    return LowerBound(path=overhead + longest, work=work, placed_path=placed_path)
