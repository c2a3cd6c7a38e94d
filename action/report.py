"""Render what a run did: the sticky PR comment, the job summary and the mermaid DAG (pure functions).

Both renderings take one :class:`Report` value, so the comment, the summary and the dry-run printout say the
same thing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from kedro_vertex_ci.model import Step

from .events import COMPILE, SCHEDULE, ActionPlan, Event

_MERMAID_ID = re.compile(r"[^A-Za-z0-9_]")
MAX_DAG_STEPS = 200  # beyond this mermaid renders slowly on github.com and the comment limit nears


@dataclass(frozen=True)
class Report:
    """Everything known about this run so far; fields fill in as the run proceeds."""

    plan: ActionPlan
    event: Event
    pipeline: str
    steps: Sequence[Step] = ()
    image: str | None = None
    image_digest: str | None = None
    build_id: str | None = None
    build_log_url: str | None = None
    job_id: str | None = None
    run_url: str | None = None
    schedule_name: str | None = None
    cron: str | None = None
    state: str | None = None  # Vertex state: final when waited for, else as last seen
    waited: bool = False
    image_reused: bool = False  # the commit's image already existed: not rebuilt
    run_reused: bool = False  # the commit's run already existed: not resubmitted
    cancelled: tuple[str, ...] = ()  # superseded runs of older commits this job cancelled
    schedule_skipped: str | None = None  # why nothing was scheduled
    spec_path: str | None = None
    params: dict[str, str] = field(default_factory=dict)
    dry_run: bool = False
    platform: str = "Vertex AI"  # or "Kubeflow Pipelines": names the heading and the run link
    target: str | None = None  # where runs go, in words (vertexai.yml + the target inputs)
    estimate: str | None = None  # the compile's estimate on Vertex: steps, wall, billed, lower bound

    @property
    def run_label(self) -> str:
        return "KFP run" if self.platform == "Kubeflow Pipelines" else "Vertex run"

    def with_(self, **changes: object) -> Report:
        return replace(self, **changes)  # type: ignore[arg-type]


def mermaid_dag(steps: Sequence[Step]) -> str:
    """A ``flowchart TD`` of the compiled steps (node ids sanitised; labels show the step name and size)."""
    lines = ["flowchart TD"]
    shown = list(steps[:MAX_DAG_STEPS])
    ids = {step.name: f"s{index}_{_MERMAID_ID.sub('_', step.name)}"[:60] for index, step in enumerate(shown)}
    for step in shown:
        size = f"{len(step.nodes)} node{'s' if len(step.nodes) != 1 else ''}"
        label = step.name.replace('"', "'")
        lines.append(f'  {ids[step.name]}["{label}<br/><small>{size}</small>"]')
    for step in shown:
        for upstream in step.depends_on:
            if upstream in ids:
                lines.append(f"  {ids[upstream]} --> {ids[step.name]}")
    if len(steps) > MAX_DAG_STEPS:
        lines.append(f'  more["… {len(steps) - MAX_DAG_STEPS} more steps"]')
    return "\n".join(lines)


def _what(report: Report) -> str:
    if report.dry_run:
        return "Dry run (no cloud API called)"
    if report.plan.operation == COMPILE:
        return "Compiled and validated"
    if report.plan.operation == SCHEDULE:
        return "Nothing scheduled" if report.schedule_skipped else "Scheduled"
    if report.run_reused:
        return "Reused this commit's run"
    return "Submitted a run"


def _facts(report: Report) -> list[tuple[str, str]]:
    facts: list[tuple[str, str]] = [("Why", report.plan.reason)]
    commit = report.event.head_sha[:12] if report.event.head_sha else ""
    if commit:
        facts.append(("Commit", f"`{commit}`"))
    if report.image:
        facts.append(("Image", f"`{report.image}`"))
    if report.plan.build:
        reused = " (already built for this commit)" if report.image_reused else ""
        facts.append(("Image digest", f"`{report.image_digest}`{reused}" if report.image_digest else "_to be built_"))
    if report.build_log_url:
        facts.append(("Cloud Build", f"[build log]({report.build_log_url})"))
    facts.append(("Steps", str(len(report.steps))))
    if report.target and report.platform != "Vertex AI":
        facts.append(("Target", report.target))
    if report.estimate:
        facts.append(("Estimate", report.estimate))
    reused = " (this commit's existing run, not resubmitted)" if report.run_reused else ""
    if report.run_url:
        facts.append((report.run_label, f"[{report.job_id or 'run'}]({report.run_url}){reused}"))
    elif report.job_id:
        facts.append((report.run_label, f"`{report.job_id}`{reused}"))
    if report.cancelled:
        facts.append(("Superseded runs cancelled", ", ".join(f"`{job}`" for job in report.cancelled)))
    if report.schedule_skipped:
        facts.append(("Schedule", f"nothing scheduled: {report.schedule_skipped}"))
    if report.schedule_name:
        cron = f" (`{report.cron}`)" if report.cron else ""
        facts.append(("Schedule", f"`{report.schedule_name}`{cron}"))
    if report.params:
        facts.append(("Params", ", ".join(f"`{k}={v}`" for k, v in sorted(report.params.items()))))
    if report.state and report.waited:
        facts.append(("Final state", f"**{report.state}**"))
    elif report.plan.operation not in (COMPILE, SCHEDULE) and report.job_id:
        facts.append(("State", (report.state or "submitted").replace("PIPELINE_STATE_", "").lower()))
    if report.spec_path:
        facts.append(("Spec", f"`{report.spec_path}`"))
    if report.event.run_url:
        facts.append(("Workflow run", f"[logs]({report.event.run_url})"))
    return facts


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _table(facts: list[tuple[str, str]]) -> str:
    rows = ["| | |", "|---|---|"] + [f"| {key} | {_cell(value)} |" for key, value in facts]
    return "\n".join(rows)


def _body(report: Report, heading: str, dag_open: bool) -> list[str]:
    """Heading, facts table and the step DAG as a mermaid diagram in a details block."""
    return [
        f"{heading} Kedro → {report.platform}: `{report.pipeline}` — {_what(report)}",
        "",
        _table(_facts(report)),
        "",
        f"<details{' open' if dag_open else ''}><summary>Step DAG</summary>",
        "",
        "```mermaid",
        mermaid_dag(report.steps),
        "```",
        "",
        "</details>",
        "",
    ]


def render_summary(report: Report) -> str:
    """The job summary: heading, facts table, the step DAG."""
    return "\n".join(_body(report, "##", dag_open=True))


def render_comment(report: Report, marker: str) -> str:
    """The sticky PR comment body: the marker first (hidden), then the same facts and a collapsed DAG."""
    return "\n".join([marker, *_body(report, "###", dag_open=False)])


def render_dry_run(report: Report, *, project: str, requirements: str | None) -> str:
    """The plain-text plan a dry run prints: what would be built, submitted, scheduled."""
    plan = report.plan
    lines = [f"Dry run for pipeline {report.pipeline!r} in {project} — no cloud API is called.", f"  why: {plan.reason}"]
    if requirements:
        lines.append(f"  install: pip install -r {requirements} (the project's own dependencies, for compiling)")
    lines.append(f"  compile: {len(report.steps)} steps")
    if report.target:
        lines.append(f"  target: {report.target}")
    if report.estimate:
        lines.append(f"  estimate on Vertex: {report.estimate}")
    if plan.build:
        lines.append(f"  would build: {report.image or '(image from vertexai.yml)'} with Cloud Build, tagged with the commit")
    if plan.operation == SCHEDULE and report.schedule_skipped:
        lines.append(f"  would schedule nothing: {report.schedule_skipped}")
    elif plan.operation == SCHEDULE:
        what = "recurring run" if report.platform == "Kubeflow Pipelines" else "schedule"
        lines.append(f"  would schedule: cron {report.cron or '(from vertexai.yml)'} (replacing the current {what})")
    elif plan.operation != COMPILE:
        lines.append(f"  would submit: one run with labels {dict(plan.labels)} and params {report.params or '{}'}")
    if plan.comment:
        lines.append("  would comment: one sticky comment on the pull request")
    for step in report.steps:
        after = f" after {', '.join(step.depends_on)}" if step.depends_on else ""
        lines.append(f"    step {step.name}: {len(step.nodes)} node(s){after}")
    return "\n".join(lines)
