"""Scheduling rules: parallel when independent, stop after a failure, exit handlers run anyway."""

from __future__ import annotations

import threading
import time

import pytest

from kedro_vertex_ci.local.executor import Scheduler, State, execute
from kedro_vertex_ci.local.specgraph import Container, Task, TaskGraph

C = Container("img")


def _graph(deps: dict[str, list[str]], after_failure=(), groups=None) -> TaskGraph:
    tasks = tuple(Task(n, C, tuple(d), run_after_failure=n in after_failure) for n, d in deps.items())
    return TaskGraph("p", tasks, {}, groups or {})


DIAMOND = {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"], "e": []}


@pytest.mark.parametrize(
    ("failing", "fail_fast", "expected"),
    [
        (set(), False, {"a": "done", "b": "done", "c": "done", "d": "done", "e": "done"}),
        ({"b"}, False, {"a": "done", "b": "failed", "c": "done", "d": "skipped", "e": "done"}),
        ({"a"}, False, {"a": "failed", "b": "skipped", "c": "skipped", "d": "skipped", "e": "done"}),
        ({"a"}, True, {"a": "failed", "b": "skipped", "c": "skipped", "d": "skipped", "e": "done"}),
    ],
)
def test_failure_skips_dependants(failing, fail_fast, expected):
    outcomes = execute(
        _graph(DIAMOND), lambda t, s: 1 if t.name in failing else 0, max_parallel=4, fail_fast=fail_fast
    )
    assert {o.name: o.state.value for o in outcomes} == expected


def test_fail_fast_starts_nothing_new_after_a_failure():
    """One worker: ``a`` fails first; ``e`` (independent, not started yet) is skipped, not run."""
    started: list[str] = []

    def launch(task, statuses):
        started.append(task.name)
        return 1 if task.name == "a" else 0

    outcomes = {o.name: o for o in execute(_graph(DIAMOND), launch, max_parallel=1, fail_fast=True)}
    assert started == ["a"]
    assert outcomes["e"].state is State.SKIPPED and outcomes["e"].reason == "stopped after a failed"
    assert outcomes["b"].reason == "upstream a failed"
    assert outcomes["d"].reason == "upstream b skipped"


def test_by_default_independent_branches_still_run_after_a_failure_as_on_vertex():
    outcomes = {
        o.name: o.state
        for o in execute(_graph(DIAMOND), lambda t, s: 1 if t.name == "a" else 0, max_parallel=1)
    }
    assert outcomes["e"] is State.DONE


@pytest.mark.parametrize(("fail_fast", "after"), [(False, State.DONE), (True, State.SKIPPED)])
def test_a_running_step_is_not_cut_short_by_a_failure_elsewhere(fail_fast, after):
    release = threading.Event()

    def launch(task, statuses):
        if task.name == "slow":
            release.wait(5)
            return 0
        release.set()
        return 1 if task.name == "bad" else 0

    graph = _graph({"slow": [], "bad": [], "after": ["slow"]})
    outcomes = {o.name: o.state for o in execute(graph, launch, 2, fail_fast=fail_fast)}
    assert outcomes == {"slow": State.DONE, "bad": State.FAILED, "after": after}


def test_independent_tasks_overlap_in_time():
    def launch(task, statuses):
        time.sleep(0.3)
        return 0

    begin = time.monotonic()
    outcomes = execute(_graph({"a": [], "b": [], "c": [], "d": []}), launch, max_parallel=4)
    assert time.monotonic() - begin < 0.9  # serial would take 1.2 s
    assert all(o.started is not None and o.started < 0.2 for o in outcomes)


def test_max_parallel_is_respected():
    live, peak, lock = [0], [0], threading.Lock()

    def launch(task, statuses):
        with lock:
            live[0] += 1
            peak[0] = max(peak[0], live[0])
        time.sleep(0.05)
        with lock:
            live[0] -= 1
        return 0

    execute(_graph({n: [] for n in "abcdef"}), launch, max_parallel=2)
    assert peak[0] == 2


@pytest.mark.parametrize(("failing", "status"), [(set(), "SUCCEEDED"), ({"m2"}, "FAILED")])
def test_exit_handler_runs_whatever_happened_and_sees_the_group_status(failing, status):
    graph = _graph(
        {"m1": [], "m2": ["m1"], "m3": ["m2"], "exit": ["m1", "m2", "m3"]},
        after_failure={"exit"},
        groups={"exit-handler-1": ("m1", "m2", "m3")},
    )
    seen = {}

    def launch(task, statuses):
        seen[task.name] = dict(statuses)
        return 1 if task.name in failing else 0

    outcomes = {o.name: o.state for o in execute(graph, launch)}
    assert outcomes["exit"] is State.DONE
    assert seen["exit"] == {"exit-handler-1": status}


def test_a_launch_that_raises_fails_only_its_task():
    def launch(task, statuses):
        if task.name == "a":
            raise FileNotFoundError("no such program: kedro-vertex-ci")
        return 0

    outcomes = {o.name: o for o in execute(_graph({"a": [], "b": ["a"]}), launch)}
    assert outcomes["a"].state is State.FAILED and "no such program" in outcomes["a"].reason
    assert outcomes["a"].exit_code is None and outcomes["b"].state is State.SKIPPED


def test_scheduler_is_pure_bookkeeping():
    scheduler = Scheduler(_graph({"a": [], "b": ["a"]}))
    ready, skipped = scheduler.advance()
    assert [t.name for t in ready] == ["a"] and skipped == []
    scheduler.start("a")
    assert scheduler.advance() == ([], [])
    scheduler.finish("a", ok=True)
    assert [t.name for t in scheduler.advance()[0]] == ["b"]
    assert not scheduler.finished
