"""What a person sees during and after a local run: live step lines, a summary table, the failed log's tail."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from .executor import State, StepOutcome
from .run import RunResult

_STYLE = {
    State.WAITING: ("·", "dim"),
    State.RUNNING: ("▶", "cyan"),
    State.DONE: ("✔", "green"),
    State.FAILED: ("✘", "bold red"),
    State.SKIPPED: ("–", "yellow"),
}


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}m{rest:02d}s"


class LiveProgress:
    """An executor observer drawing one line per step (state, duration so far) with ``rich.live``."""

    def __init__(self, console: Console, steps: Sequence[str]):
        self.console = console
        self._lock = threading.Lock()
        self._states = {name: State.WAITING for name in steps}
        self._started: dict[str, float] = {}
        self._outcomes: dict[str, StepOutcome] = {}
        self._live = Live(self, console=console, refresh_per_second=4, transient=False)

    def __enter__(self) -> LiveProgress:
        self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._live.__exit__(None, None, None)

    def step_started(self, name: str) -> None:
        with self._lock:
            self._states[name] = State.RUNNING
            self._started[name] = time.monotonic()

    def step_finished(self, outcome: StepOutcome) -> None:
        with self._lock:
            self._states[outcome.name] = outcome.state
            self._outcomes[outcome.name] = outcome

    def __rich__(self) -> Group:
        with self._lock:
            lines = [self._line(name, state) for name, state in self._states.items()]
        return Group(*lines)

    def _line(self, name: str, state: State) -> Text:
        mark, style = _STYLE[state]
        outcome = self._outcomes.get(name)
        if state is State.RUNNING:
            extra = format_duration(time.monotonic() - self._started[name])
        elif outcome is not None:
            extra = format_duration(outcome.duration) if outcome.duration is not None else outcome.reason
        else:
            extra = ""
        text = Text(f" {mark} ", style=style)
        text.append(f"{name:<32} ", style="bold" if state is State.RUNNING else "")
        text.append(f"{state.value:<8} ", style=style)
        text.append(extra, style="dim")
        return text


class LineProgress:
    """For logs that are not a terminal (CI): one plain line per state change, printed as it happens."""

    def __init__(self, console: Console, steps: Sequence[str]):
        self.console = console
        self._lock = threading.Lock()

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def step_started(self, name: str) -> None:
        with self._lock:
            self.console.print(Text.assemble((f" {_STYLE[State.RUNNING][0]} ", "cyan"), f"{name} started"))

    def step_finished(self, outcome: StepOutcome) -> None:
        mark, style = _STYLE[outcome.state]
        extra = format_duration(outcome.duration) if outcome.duration is not None else outcome.reason
        with self._lock:
            self.console.print(
                Text.assemble((f" {mark} ", style), f"{outcome.name} {outcome.state.value} ", (extra, "dim"))
            )


def progress_for(console: Console, steps: Sequence[str]) -> LiveProgress | LineProgress:
    """Live lines on a terminal, plain lines elsewhere (a CI log cannot redraw)."""
    return LiveProgress(console, steps) if console.is_terminal else LineProgress(console, steps)


def summary_table(result: RunResult) -> Table:
    """The final table: one row per step with state, duration and log file."""
    verdict = {"succeeded": "[green]succeeded[/]", "interrupted": "[yellow]interrupted[/]"}.get(
        result.state, "[bold red]failed[/]"
    )
    table = Table(
        title=f"run-local {result.pipeline}: {verdict} in {format_duration(result.duration)}",
        title_justify="left",
    )
    table.add_column("step", no_wrap=True)
    table.add_column("state", no_wrap=True)
    table.add_column("duration", justify="right", no_wrap=True)
    table.add_column("log / reason", overflow="fold")
    for step in result.steps:
        mark, style = _STYLE[step.state]
        detail = (
            _relative(step.log, result.run_dir)
            if step.state is not State.SKIPPED and step.log
            else step.reason
        )
        table.add_row(
            step.name, Text(f"{mark} {step.state.value}", style=style), format_duration(step.duration), detail
        )
    return table


def print_summary(console: Console, result: RunResult) -> None:
    """The summary table, then where everything is (not as a caption: long paths must not wrap)."""
    console.print(summary_table(result))
    console.print(f"run id {result.run_id} · job {result.job_name} · {result.runner} runner", soft_wrap=True)
    console.print(f"logs: {result.run_dir / 'logs'}", soft_wrap=True)


def _relative(path: Path, base: Path) -> str:
    try:
        return str(path.relative_to(base))
    except ValueError:
        return str(path)


def log_tail(path: Path | None, lines: int = 30) -> str:
    """The last ``lines`` lines of a step log (empty if it was never written)."""
    if path is None or not path.is_file():
        return ""
    with open(path, "rb") as handle:
        handle.seek(0, 2)
        size = handle.tell()
        handle.seek(max(0, size - 64 * 1024))
        text = handle.read().decode("utf-8", errors="replace")
    return "\n".join(text.splitlines()[-lines:])


def print_failures(console: Console, result: RunResult, lines: int = 30) -> None:
    """For each failed step: its name, why, where the full log is, and the tail of that log."""
    for step in result.failed:
        console.print(
            f"[bold red]Step {step.name} failed[/] ({step.reason}); full log: {step.log}", soft_wrap=True
        )
        tail = log_tail(step.log, lines)
        if tail:
            console.rule(f"last {lines} lines of {step.name}.log", style="red")
            console.print(Text(tail))
            console.rule(style="red")
