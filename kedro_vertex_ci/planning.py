"""What a plan costs on Vertex: estimates for ``kedro-vertex-ci plan``, the compile and the Action summary.

Pure: a :class:`~kedro_vertex_ci.model.Plan` plus node durations in, numbers out (the model is in
:mod:`kedro_vertex_ci.costmodel`). Durations carry their source: ``measured (run <id>)`` when a ``run-local``
run measured the node, ``default`` otherwise.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass

from .costmodel import COST_PARAMS, CostParams, Estimate, LowerBound, estimate, lower_bound, node_seconds
from .model import PipelineGraph, Plan


@dataclass(frozen=True)
class Durations:
    """The seconds the model uses per node, and where each number came from."""

    seconds: Mapping[str, float]
    source: Mapping[str, str]

    @property
    def measured_count(self) -> int:
        return sum(1 for s in self.source.values() if s != "default")


@dataclass(frozen=True)
class StepCost:
    name: str
    nodes: tuple[str, ...]
    depends_on: tuple[str, ...]
    machine: str
    seconds: float  # S + the nodes' durations


@dataclass(frozen=True)
class PlanEstimate:
    """One grouping's steps and the model's wall and billed time for them."""

    strategy: str
    steps: tuple[StepCost, ...]
    estimate: Estimate


def cost_params(grouping_params: Mapping[str, object], overrides: Mapping[str, object] | None = None) -> CostParams:
    """The model's settings: ``run_config.grouping.params`` (its cost keys), then ``overrides``."""
    merged = {k: v for k, v in grouping_params.items() if k in COST_PARAMS}
    merged.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return CostParams.from_params(merged)


def durations_for(
    graph: PipelineGraph, measured: Mapping[str, float], runs: Mapping[str, str], cost: CostParams
) -> Durations:
    """Every node's modelled seconds (measured × scale, else the default) with its source."""
    modelled = node_seconds([n.name for n in graph.nodes], measured, cost)
    source = {
        node: f"measured (run {runs[node]})" if kind == "measured" and node in runs else kind
        for node, kind in modelled.source.items()
    }
    return Durations(modelled.seconds, source)


def estimate_plan(
    plan: Plan, graph: PipelineGraph, durations: Durations, cost: CostParams, strategy: str
) -> PlanEstimate:
    """The main steps of ``plan`` (the on-exit step is left out: it runs after the pipeline, whatever happens)."""
    from .grouping import node_dependencies
    from .settings import machine_label

    position = {node: i for i, node in enumerate(node_dependencies(graph)[0])}

    index = {step.name: i for i, step in enumerate(plan.steps)}
    machines = [machine_label(plan.resources[step.name]) for step in plan.steps]
    result = estimate(
        [step.nodes for step in plan.steps],
        [[index[d] for d in step.depends_on] for step in plan.steps],
        durations.seconds,
        cost,
        machines,
        [min(position.get(n, len(position)) for n in step.nodes) for step in plan.steps],
    )
    steps = tuple(
        StepCost(
            name=step.name,
            nodes=step.nodes,
            depends_on=step.depends_on,
            machine=machines[i],
            seconds=cost.step_overhead + sum(durations.seconds[n] for n in step.nodes),
        )
        for i, step in enumerate(plan.steps)
    )
    return PlanEstimate(strategy, steps, result)


def graph_lower_bound(
    graph: PipelineGraph,
    durations: Durations,
    cost: CostParams,
    placements: Mapping[str, Hashable] | None = None,
) -> LowerBound:
    """No grouping of ``graph`` beats this wall; with ``placements``, no allowed grouping beats its
    ``placed_wall`` (see :class:`~kedro_vertex_ci.costmodel.LowerBound`)."""
    from .grouping import node_dependencies

    order, preds = node_dependencies(graph)
    return lower_bound(order, preds, durations.seconds, cost, placements)


def format_seconds(seconds: float) -> str:
    """``95.4`` → ``1m 35s``; under a minute with one decimal."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {rest:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def summary_line(chosen: PlanEstimate, bound: LowerBound, durations: Durations) -> str:
    """One line for the Action's summary and the compile output."""
    total = len(durations.source)
    placed = ""
    if bound.placed_wall > bound.wall:
        placed = f", {format_seconds(bound.placed_wall)} with these placements"
    return (
        f"{chosen.estimate.steps} steps, wall ≈ {format_seconds(chosen.estimate.wall)}, billed ≈ "
        f"{format_seconds(chosen.estimate.billed)} (lower bound {format_seconds(bound.wall)}{placed}; "
        f"{durations.measured_count}/{total} node durations measured)"
    )
