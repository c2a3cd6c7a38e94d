"""``plan``: what each grouping would cost on Vertex, before anything runs (offline)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from ..compiler import Comparison


@click.command("plan")
@click.option("-p", "--pipeline", default="__default__", show_default=True, help="Kedro pipeline to plan.")
@click.option("--step-overhead", type=click.FloatRange(min=0), default=None, metavar="SECONDS",
              help="Start cost of one step on Vertex (S) [default: run_config.grouping.params, else 90].")
@click.option("--parallelism", type=click.IntRange(min=1), default=None, metavar="N",
              help="Steps running at once (P) [default: run_config.grouping.params, else 8].")
@click.option("--no-measurements", is_flag=True,
              help="Ignore durations measured by earlier run-local runs: every node at the default duration.")
@click.option("--json", "as_json", is_flag=True, help="Print the plans as JSON.")
@click.pass_obj
def plan_command(ctx, pipeline: str, step_overhead: float | None, parallelism: int | None,  # type: ignore[no-untyped-def]
                 no_measurements: bool, as_json: bool) -> None:
    """Steps, estimated wall and billed time for identity, tag and auto grouping, and the lower bound."""
    from ..compiler import compare_groupings

    overrides = {"step_overhead": step_overhead, "parallelism": parallelism}
    comparison = compare_groupings(ctx.project, ctx.env, pipeline, overrides, not no_measurements)
    if as_json:
        click.echo(json.dumps(comparison_json(comparison), indent=2))
    else:
        click.echo(render_comparison(comparison))


def comparison_json(comparison: Comparison) -> dict[str, Any]:
    cost = comparison.cost
    return {
        "pipeline": comparison.pipeline,
        "configured": comparison.configured,
        "model": {
            "step_overhead": cost.step_overhead,
            "parallelism": cost.parallelism,
            "duration_scale": cost.duration_scale,
            "default_node_duration": cost.default_node_duration,
        },
        "lower_bound": {
            "wall_seconds": comparison.lower.wall,
            "critical_path_seconds": comparison.lower.path,
            "work_over_parallelism_seconds": comparison.lower.work,
            "with_placements": {
                "wall_seconds": comparison.lower.placed_wall,
                "critical_path_seconds": comparison.lower.placed_path,
            },
        },
        "plans": [
            {
                "strategy": plan.strategy,
                "steps": plan.estimate.steps,
                "wall_seconds": plan.estimate.wall,
                "billed_seconds": plan.estimate.billed,
                "billed_seconds_by_machine": dict(plan.estimate.billed_by_machine),
                "step_list": [
                    {
                        "name": step.name,
                        "nodes": list(step.nodes),
                        "depends_on": list(step.depends_on),
                        "machine": step.machine,
                        "seconds": step.seconds,
                    }
                    for step in plan.steps
                ],
            }
            for plan in comparison.plans
        ],
        "nodes": {
            node: {"seconds": comparison.durations.seconds[node], "source": source}
            for node, source in comparison.durations.source.items()
        },
    }


def render_comparison(comparison: Comparison) -> str:
    from ..planning import format_seconds as fmt

    cost, lower = comparison.cost, comparison.lower
    lines = [
        f"Pipeline {comparison.pipeline!r} on Vertex (model: step start S = {fmt(cost.step_overhead)}, "
        f"{cost.parallelism} steps at once, durations × {cost.duration_scale:g}, "
        f"unmeasured node {fmt(cost.default_node_duration)}); configured grouping: {comparison.configured}",
        "",
        f"{'grouping':<10} {'steps':>6} {'wall':>10} {'billed':>10}",
    ]
    for plan in comparison.plans:
        est = plan.estimate
        lines.append(f"{plan.strategy:<10} {est.steps:>6} {fmt(est.wall):>10} {fmt(est.billed):>10}")
    lines.append(f"{'bound':<10} {'':>6} {fmt(lower.wall):>10}   (S + critical path {fmt(lower.path)}; "
                 f"work / P {fmt(lower.work)})")
    if lower.placed_wall > lower.wall:
        lines.append(f"{'placed':<10} {'':>6} {fmt(lower.placed_wall):>10}   (with these placements: each "
                     "change of placement along a chain starts another step, which pays S)")
    for plan in comparison.plans:
        lines += ["", f"{plan.strategy}:"]
        for step in plan.steps:
            after = f"  after {', '.join(step.depends_on)}" if step.depends_on else ""
            lines.append(f"  {step.name} [{fmt(step.seconds)}, {step.machine}]{after}")
            lines.append(f"      {', '.join(step.nodes)}")
    durations = comparison.durations
    lines += ["", f"Node durations ({durations.measured_count} of {len(durations.source)} measured):"]
    for node, source in durations.source.items():
        lines.append(f"  {node}: {fmt(durations.seconds[node])} ({source})")
    return "\n".join(lines)
