"""Run a task graph: independent tasks in parallel, a failure stops what has not started yet.

:class:`Scheduler` is the pure state machine (which task may start, which must be skipped);
:func:`execute` drives it with a thread pool around an injected ``launch`` function, so the scheduling rules
are tested without processes and the processes are started at the edge (``runners``).

Rules, as on Vertex: a task starts once all its dependencies succeeded. When a task fails its dependants are
skipped and every other task still runs (Vertex's default failure policy, "fail slow"); with ``fail_fast``
(``failure_policy='fast'``) nothing new starts after a failure. Tasks already running always finish, and
exit-handler tasks (``ALL_UPSTREAM_TASKS_COMPLETED``) run once their upstream tasks are over.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from enum import Enum
from pathlib import Path
from typing import Protocol

from .specgraph import Task, TaskGraph


class State(str, Enum):
    WAITING = "waiting"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"

    @property
    def terminal(self) -> bool:
        return self in (State.DONE, State.FAILED, State.SKIPPED)


@dataclass(frozen=True)
class StepOutcome:
    """How one task ended. ``started`` is seconds since the run began (None if it never ran)."""

    name: str
    state: State
    log: Path | None = None
    exit_code: int | None = None
    started: float | None = None
    duration: float | None = None
    reason: str = ""


class Observer(Protocol):
    """Told about every state change (progress display, tests)."""

    def step_started(self, name: str) -> None: ...

    def step_finished(self, outcome: StepOutcome) -> None: ...


class NullObserver:
    def step_started(self, name: str) -> None:
        pass

    def step_finished(self, outcome: StepOutcome) -> None:
        pass


class Scheduler:
    """Pure bookkeeping of task states. Call :meth:`advance` after every change."""

    def __init__(self, graph: TaskGraph, fail_fast: bool = False):
        self.graph = graph
        self.fail_fast = fail_fast
        self.states: dict[str, State] = {t.name: State.WAITING for t in graph.tasks}
        self.first_failure: str | None = None

    def advance(self) -> tuple[list[Task], list[tuple[str, str]]]:
        """(tasks that may start now, in graph order; tasks newly skipped with the reason)."""
        ready: list[Task] = []
        skipped: list[tuple[str, str]] = []
        for task in self.graph.tasks:  # topological: skips propagate within one pass
            if self.states[task.name] is not State.WAITING:
                continue
            deps = [self.states[d] for d in task.depends_on]
            if task.run_after_failure:
                if all(s.terminal for s in deps):
                    ready.append(task)
                continue
            reason = self._skip_reason(task)
            if reason:
                self.states[task.name] = State.SKIPPED
                skipped.append((task.name, reason))
            elif all(s is State.DONE for s in deps):
                ready.append(task)
        return ready, skipped

    def _skip_reason(self, task: Task) -> str:
        bad = [d for d in task.depends_on if self.states[d] in (State.FAILED, State.SKIPPED)]
        if bad:
            return f"upstream {bad[0]} {self.states[bad[0]].value}"
        if self.first_failure and self.fail_fast:
            return f"stopped after {self.first_failure} failed"
        return ""

    def start(self, name: str) -> None:
        self.states[name] = State.RUNNING

    def finish(self, name: str, ok: bool) -> None:
        self.states[name] = State.DONE if ok else State.FAILED
        if not ok and self.first_failure is None:
            self.first_failure = name

    def group_statuses(self) -> dict[str, str]:
        """For each exit-handler group: FAILED if any of its tasks failed or was skipped, else SUCCEEDED."""
        bad = (State.FAILED, State.SKIPPED)
        return {
            group: "FAILED" if any(self.states.get(m) in bad for m in members) else "SUCCEEDED"
            for group, members in self.graph.groups.items()
        }

    @property
    def finished(self) -> bool:
        return all(s.terminal for s in self.states.values())

    @property
    def succeeded(self) -> bool:
        return all(s is State.DONE for s in self.states.values())


Launch = Callable[[Task, Mapping[str, str]], int]


class Interrupted(BaseException):
    """run-local got SIGINT or SIGTERM (raised by its signal handler in the main thread).

    A BaseException like KeyboardInterrupt, so no ``except Exception`` on the way swallows it.
    """

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum

    @property
    def signal_name(self) -> str:
        import signal

        try:
            return signal.Signals(self.signum).name
        except ValueError:
            return f"signal {self.signum}"


class RunInterrupted(Exception):
    """:func:`execute` stopped on an interrupt: every step it started is over; ``outcomes`` says how."""

    def __init__(self, signum: int, outcomes: list[StepOutcome]):
        super().__init__(f"interrupted by signal {signum}")
        self.signum = signum
        self.outcomes = outcomes


def execute(
    graph: TaskGraph,
    launch: Launch,
    max_parallel: int | None = None,
    observer: Observer | None = None,
    fail_fast: bool = False,
    log_path: Callable[[str], Path] | None = None,
    on_interrupt: Callable[[], None] | None = None,
) -> list[StepOutcome]:
    """Run every task through ``launch(task, group_statuses) -> exit code``; outcomes in graph order.

    ``launch`` runs in worker threads; an exception from it fails that task (its message is the reason).
    On :class:`Interrupted` or KeyboardInterrupt (SIGINT), ``on_interrupt`` stops the running steps, nothing
    new starts, and once every started step is over :class:`RunInterrupted` carries the outcomes: steps that
    finished keep their state, stopped ones are failed, the rest skipped.
    """
    observer = observer or NullObserver()
    limit = max(1, max_parallel or os.cpu_count() or 1)
    scheduler = Scheduler(graph, fail_fast)
    outcomes: dict[str, StepOutcome] = {}
    begin = time.monotonic()

    def timed(task: Task, statuses: Mapping[str, str]) -> StepOutcome:
        start = time.monotonic()
        log = log_path(task.name) if log_path else None
        try:
            code: int | None = launch(task, statuses)
            reason = "" if code == 0 else f"exit code {code}"
        except Exception as err:  # noqa: BLE001 - any launch problem fails only this task
            code, reason = None, f"could not start: {err}"
        state = State.DONE if code == 0 else State.FAILED
        return StepOutcome(task.name, state, log, code, start - begin, time.monotonic() - start, reason)

    running: dict[Future[StepOutcome], str] = {}
    submitted: list[Future[StepOutcome]] = []
    with ThreadPoolExecutor(max_workers=limit, thread_name_prefix="kvc-step") as pool:
        try:
            while True:
                ready, skipped = scheduler.advance()
                for name, reason in skipped:
                    outcomes[name] = StepOutcome(name, State.SKIPPED, reason=reason)
                    observer.step_finished(outcomes[name])
                for task in ready[: limit - len(running)]:
                    scheduler.start(task.name)
                    observer.step_started(task.name)
                    future = pool.submit(timed, task, scheduler.group_statuses())
                    submitted.append(future)
                    running[future] = task.name
                if not running:
                    break
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    outcome = future.result()
                    del running[future]
                    scheduler.finish(outcome.name, outcome.state is State.DONE)
                    outcomes[outcome.name] = outcome
                    observer.step_finished(outcome)
        except (Interrupted, KeyboardInterrupt) as err:
            signum = err.signum if isinstance(err, Interrupted) else 2
            if on_interrupt:
                on_interrupt()
            stopped = _settle(graph, submitted, outcomes, signum, observer)
            raise RunInterrupted(signum, stopped) from None
    return [outcomes[t.name] for t in graph.tasks if t.name in outcomes]


def _settle(
    graph: TaskGraph,
    submitted: list[Future[StepOutcome]],
    outcomes: dict[str, StepOutcome],
    signum: int,
    observer: Observer,
) -> list[StepOutcome]:
    """After an interrupt: wait for every started step to end and give every task a final state."""
    why = f"run-local stopped by {Interrupted(signum).signal_name}"
    for future in submitted:
        outcome = future.result()  # the runner stopped it; waits at most its kill grace
        if outcome.name in outcomes and outcomes[outcome.name].state.terminal:
            continue
        if outcome.state is not State.DONE:
            outcome = replace(outcome, reason=f"{why} ({outcome.reason})")
        outcomes[outcome.name] = outcome
        observer.step_finished(outcome)
    for task in graph.tasks:
        if task.name not in outcomes:
            outcomes[task.name] = StepOutcome(task.name, State.SKIPPED, reason=f"not started: {why}")
    return [outcomes[t.name] for t in graph.tasks]
