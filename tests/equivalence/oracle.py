"""Kedro as the oracle: compare kedro-vertex-ci's step graphs and runs with Kedro's own objects and runs.

Used by ``test_kedro_oracle.py`` (a fixed and a rotating seed in ``make test``) and ``fuzz_kedro.py``
(``make fuzz-kedro``: thousands of cases). Every check returns a list of problems (empty: agreed), each
naming the case and the grouping, so one report shows every disagreement of a seed at once.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kedro_vertex_ci.testing.featuregen import GROUPINGS, FeatureProject

VENV_BIN = Path(sys.executable).parent
CLI = str(VENV_BIN / "kedro-vertex-ci")
_VERSION_DIR = re.compile(r"^\d{4}-\d\d-\d\dT\d\d\.\d\d\.\d\d\.\d{3}Z$")
_LOGGING_ERRORS = ("--- Logging error ---", "Bad file descriptor")


@dataclass(frozen=True)
class StepGraph:
    """The steps of one compiled pipeline as the spec run-local executes has them."""

    node_step: Mapping[str, str]  # Kedro node -> task name
    depends_on: Mapping[str, frozenset[str]]  # task -> tasks it waits for
    order: tuple[str, ...]  # topological (the spec's)
    graph: Any  # the TaskGraph, for selections

    def ancestors(self, task: str) -> set[str]:
        found: set[str] = set()
        todo = list(self.depends_on[task])
        while todo:
            item = todo.pop()
            if item not in found:
                found.add(item)
                todo.extend(self.depends_on[item])
        return found


def kedro_edges(pipeline: Any) -> set[tuple[str, str]]:
    """(parent, child) node pairs, exactly as Kedro orders them (``Pipeline.node_dependencies``)."""
    return {
        (parent.name, child.name)
        for child, parents in pipeline.node_dependencies.items()
        for parent in parents
    }


@contextmanager
def opened(project: Path, env: str) -> Iterator[Any]:
    from kedro_vertex_ci.kedro_io import open_project

    with open_project(project, env) as kedro_project:
        yield kedro_project


def project_config(kedro_project: Any) -> Any:
    """The project's parsed vertexai config (read once: the config loader re-reads files on every access)."""
    from kedro_vertex_ci.config import parse_config

    return parse_config(kedro_project.config_raw(), kedro_project.config_sources()).config


def compile_steps(graph: Any, config: Any, grouping: str, through_spec: bool = True) -> StepGraph:
    """Compile ``graph`` in-process as ``compile`` does (plan, then spec), and read the steps back as
    run-local reads the spec. ``through_spec=False`` stops at the plan (same steps; the spec's JSON
    conversion is most of the cost when a case reads ``parameters`` whole)."""
    from kedro_vertex_ci.compiler import build_plan
    from kedro_vertex_ci.local.specgraph import Container, Task, TaskGraph, build_graph
    from kedro_vertex_ci.spec import emit, spec_to_dict

    chosen = config.run_config.grouping.model_copy(update={"cls": grouping})
    config = config.model_copy(
        update={"run_config": config.run_config.model_copy(update={"grouping": chosen})}
    )
    plan = build_plan(graph=graph, config=config, project_name="p", env=None)
    if through_spec:
        tasks = build_graph(spec_to_dict(emit(plan)))
    else:
        tasks = TaskGraph(
            pipeline_name=plan.pipeline_name,
            tasks=tuple(
                Task(
                    name=step.name,
                    container=Container(image="", args=tuple(a for n in step.nodes for a in ("--node", n))),
                    depends_on=step.depends_on,
                )
                for step in plan.steps
            ),
            inputs={},
        )
    node_step = {node: task.name for task in tasks.tasks for node in task.nodes}
    depends = {task.name: frozenset(task.depends_on) for task in tasks.tasks}
    return StepGraph(node_step, depends, tuple(t.name for t in tasks.tasks), tasks)


def check_step_dag(case: str, grouping: str, kedro_pipeline: Any, steps: StepGraph) -> list[str]:
    """Every Kedro edge implied by the step graph; every direct step edge explained by a Kedro edge."""
    where = f"{case} [{grouping}]"
    problems = []
    nodes = {n.name for n in kedro_pipeline.nodes}
    if set(steps.node_step) != nodes:
        problems.append(f"{where}: steps run {sorted(steps.node_step)}, Kedro has {sorted(nodes)}")
        return problems
    edges = kedro_edges(kedro_pipeline)
    for parent, child in sorted(edges):
        upstream, downstream = steps.node_step[parent], steps.node_step[child]
        if upstream != downstream and upstream not in steps.ancestors(downstream):
            problems.append(
                f"{where}: Kedro runs {parent} before {child}, step {downstream} need not wait for {upstream}"
            )
    explained = {(steps.node_step[p], steps.node_step[c]) for p, c in edges}
    for task, before in steps.depends_on.items():
        for upstream in sorted(before):
            if (upstream, task) not in explained:
                problems.append(
                    f"{where}: step {task} waits for {upstream}, no Kedro edge between their nodes"
                )
    return problems


def check_selection(case: str, grouping: str, kedro_pipeline: Any, steps: StepGraph, node: str) -> list[str]:
    """``--from-nodes``/``--to-nodes node`` keep every node Kedro's ``from_nodes``/``to_nodes`` keeps; for
    one node per step (identity), exactly those."""
    from kedro_vertex_ci.local.specgraph import select_tasks

    problems = []
    for option, kedro_selected in (
        ("--from-nodes", kedro_pipeline.from_nodes(node)),
        ("--to-nodes", kedro_pipeline.to_nodes(node)),
    ):
        kwargs = {"from_nodes": [node]} if option == "--from-nodes" else {"to_nodes": [node]}
        chosen = select_tasks(steps.graph, **kwargs)
        ours = {n for task in chosen.tasks for n in task.nodes}
        theirs = {n.name for n in kedro_selected.nodes}
        if not theirs <= ours:
            problems.append(
                f"{case} [{grouping}] {option} {node}: misses Kedro's nodes {sorted(theirs - ours)}"
            )
        if grouping == "identity" and ours != theirs:
            problems.append(
                f"{case} [{grouping}] {option} {node}: runs {sorted(ours - theirs)} Kedro does not"
            )
    return problems


def group_error_is_a_real_cycle(case: str, kedro_pipeline: Any, prefix: str = "group.",
                                grouping: str = "tag") -> list[str]:
    """Grouping refused the case: the tag groups (kept as written by tag and auto) must really form a cycle in
    Kedro's node graph."""
    import graphlib

    group_of = {}
    for n in kedro_pipeline.nodes:
        tags = [t for t in n.tags if t.startswith(prefix)]
        group_of[n.name] = tags[0] if tags else n.name
    sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
    for parent, child in kedro_edges(kedro_pipeline):
        if group_of[parent] != group_of[child]:
            sorter.add(group_of[child], group_of[parent])
    try:
        sorter.prepare()
    except graphlib.CycleError:
        return []
    return [f"{case} [{grouping}]: grouping refused the pipeline, but its tag groups form no cycle"]


# --- whole runs -----------------------------------------------------------------------------------------


def kedro_run(project: Path, pipeline: str) -> None:
    """``kedro run --pipeline`` in-process (what the CLI command does), from the project folder."""
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    cwd = os.getcwd()
    os.chdir(project)
    try:
        bootstrap_project(project)
        with KedroSession.create(project_path=project) as session:
            session.run(pipeline_names=[pipeline])
    finally:
        os.chdir(cwd)


RUN_TIMEOUT = 900  # seconds for one run-local of a 25-case project (a few tens of seconds on an idle machine)


def run_local(project: Path, grouping: str, pipeline: str, *extra: str) -> dict[str, Any]:
    """``kedro-vertex-ci --env <grouping> run-local --json`` as a user runs it; the parsed result."""
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1"}
    argv = [
        CLI,
        "--project",
        str(project),
        "--env",
        grouping,
        "run-local",
        "--pipeline",
        pipeline,
        "--json",
        *extra,
    ]
    try:
        proc = subprocess.run(argv, cwd=project, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired as err:  # a hang is a finding of its case, not the end of a long fuzz run
        stderr = err.stderr.decode(errors="replace") if isinstance(err.stderr, bytes) else err.stderr or ""
        return {"_exit": "timeout", "_stderr": f"no result after {RUN_TIMEOUT} s: {stderr[-2000:]}", "steps": []}
    try:
        result: dict[str, Any] = json.loads(proc.stdout)
    except json.JSONDecodeError:
        raise AssertionError(
            f"run-local printed no result (exit {proc.returncode}): {proc.stderr[-3000:]}"
        ) from None
    result["_exit"] = proc.returncode
    result["_stderr"] = proc.stderr
    return result


def failed_steps(result: Mapping[str, Any]) -> list[str]:
    """Names and log tails of the steps that did not finish."""
    found = []
    for step in result["steps"]:
        if step["state"] != "done":
            tail = ""
            if step.get("log") and Path(step["log"]).is_file():
                tail = "\n".join(Path(step["log"]).read_text(errors="replace").splitlines()[-15:])
            found.append(f"{step['name']} {step['state']} (exit {step['exit_code']}): {tail}")
    return found


def data_files(project: Path) -> dict[str, bytes]:
    """Every file a run wrote under ``data/``; a Kedro version folder becomes ``<version>`` (latest kept)."""
    found: dict[str, tuple[str, bytes]] = {}
    data = project / "data"
    for path in sorted(data.rglob("*")):
        if not path.is_file():
            continue
        parts = path.relative_to(data).parts
        key = "/".join("<version>" if _VERSION_DIR.match(p) else p for p in parts)
        version = "/".join(p for p in parts if _VERSION_DIR.match(p))
        if key not in found or version > found[key][0]:
            found[key] = (version, path.read_bytes())
    return {key: content for key, (_, content) in found.items()}


def hook_calls(project: Path, nodes: Iterable[str] | None = None) -> dict[str, list[str]]:
    """The recorded hook calls per node (sorted: steps run in parallel, order within a node is Kedro's)."""
    folder = project / "hooklog"
    calls = {}
    for path in sorted(folder.glob("*.jsonl")) if folder.is_dir() else []:
        calls[path.stem] = sorted(path.read_text().splitlines())
    if nodes is not None:
        wanted = set(nodes)
        calls = {k: v for k, v in calls.items() if k in wanted}
    return calls


def logging_errors(result: Mapping[str, Any], label: str | Labeller = "") -> list[str]:
    """Logging errors (``--- Logging error ---``, ``Bad file descriptor``) in any step log."""
    label_of = _as_labeller(label)
    problems = []
    for step in result["steps"]:
        log = step.get("log")
        if log and Path(log).is_file():
            text = Path(log).read_text(errors="replace")
            if any(marker in text for marker in _LOGGING_ERRORS):
                problems.append(f"{label_of(step['name'])}: step {step['name']}: logging error in {log}")
    return problems


Labeller = Callable[[str], str]  # a file key, node or step name -> the label of the case it belongs to


def _as_labeller(label: str | Labeller) -> Labeller:
    return label if callable(label) else (lambda _name: label)


def compare_files(
    label: str | Labeller, expected: Mapping[str, bytes], actual: Mapping[str, bytes]
) -> list[str]:
    """Every file one side wrote and the other did not, or wrote differently; ``label`` names its case."""
    label_of = _as_labeller(label)
    problems = []
    for key in sorted(set(expected) | set(actual)):
        if key not in actual:
            problems.append(f"{label_of(key)}: kedro run wrote {key}, run-local did not")
        elif key not in expected:
            problems.append(f"{label_of(key)}: run-local wrote {key}, kedro run did not")
        elif expected[key] != actual[key]:
            problems.append(
                f"{label_of(key)}: {key} differs: kedro {expected[key][:80]!r} run-local {actual[key][:80]!r}"
            )
    return problems


def compare_hooks(
    label: str | Labeller, expected: Mapping[str, list[str]], actual: Mapping[str, list[str]]
) -> list[str]:
    label_of = _as_labeller(label)
    problems = []
    for node in sorted(set(expected) | set(actual)):
        if expected.get(node) != actual.get(node):
            problems.append(
                f"{label_of(node)}: hook calls of {node}: kedro {expected.get(node)} run-local {actual.get(node)}"
            )
    return problems


def info_log_nodes(project: Path) -> set[str]:
    """Nodes the project's own file log (conf/logging.yml → info.log) saw completing."""
    path = project / "info.log"
    if not path.is_file():
        return set()
    return set(re.findall(r"Completed node: (\S+)", path.read_text(errors="replace")))


def check_dag_project(fp: FeatureProject, rng: Any) -> list[str]:
    """Every case of ``fp`` with every grouping: step DAG and node selections against Kedro's pipeline."""
    from kedro_vertex_ci.errors import GroupingError

    problems: list[str] = []
    with opened(fp.path, "local") as kedro_project:
        from kedro.framework.project import pipelines

        config = project_config(kedro_project)
        for i, case in enumerate(fp.cases):
            kedro_pipeline = pipelines[case.name]
            graph = kedro_project.graph(case.name)
            node = rng.choice(sorted(n.name for n in kedro_pipeline.nodes))
            for grouping in GROUPINGS:
                try:
                    steps = compile_steps(graph, config, grouping, through_spec=i % 10 == 0)
                except GroupingError as err:
                    if grouping in ("tag", "auto"):  # both keep group.* tags as the user wrote them
                        problems += group_error_is_a_real_cycle(case.name, kedro_pipeline, grouping=grouping)
                    else:
                        problems.append(f"{case.name} [{grouping}]: {err}")
                    continue
                problems += check_step_dag(case.name, grouping, kedro_pipeline, steps)
                problems += check_selection(case.name, grouping, kedro_pipeline, steps, node)
    return problems


# --- whole runs of generated projects: the check make test and make fuzz-kedro share -------------------

RUN_PROJECT_SIZE = 25  # cases per run project: one Kedro start per step reads the whole project's config
RERUN_CASES = 8  # cases per run project whose --from-nodes rerun is checked (one node each, one rerun)
_CASE_NAME = re.compile(r"(?<![A-Za-z0-9])(c\d{3})(?![0-9])")
REPLAY_CASE = "python -m tests.equivalence.fuzz_kedro --replay"


@dataclass(frozen=True)
class RunProject:
    """One project of the whole-run comparison: its generated cases are a function of (seed, catch_all)."""

    seed: int
    catch_all: bool
    size: int = RUN_PROJECT_SIZE

    @property
    def package(self) -> str:
        return f"kvc_run_{self.seed}{'_ca' if self.catch_all else ''}"

    def case_token(self, case: str) -> str:
        """What ``fuzz_kedro --replay`` takes to run exactly this case again."""
        return f"{self.seed}:{case}{':catchall' if self.catch_all else ''}"

    def cases(self) -> tuple[Any, ...]:
        from kedro_vertex_ci.testing.featuregen import generate_cases

        return generate_cases(
            self.seed,
            self.size,
            self.package,
            catch_all=self.catch_all,
            allow_unrunnable=False,
            acyclic_tags=True,
        )

    def write(self, root: Path, only: str | None = None) -> FeatureProject:
        """The project on disk; ``only``: just that case (cases never share a dataset, parameter or node)."""
        from kedro_vertex_ci.testing.featuregen import write_feature_project

        cases = [c for c in self.cases() if only is None or c.name == only]
        if not cases:
            raise ValueError(f"seed {self.seed} generates no case {only!r} (cases c000..c{self.size - 1:03d})")
        return write_feature_project(
            root, self.package, cases, catch_all=self.catch_all, batch_size=len(cases)
        )


def parse_case_token(token: str) -> tuple[RunProject, str]:
    """``SEED:cNNN[:catchall]`` (as failure messages print it) -> the project and the case name."""
    seed, case, *rest = token.split(":")
    if not seed.lstrip("-").isdigit() or not _CASE_NAME.fullmatch(case) or rest not in ([], ["catchall"]):
        raise ValueError(f"--replay {token!r}: expected SEED:cNNN or SEED:cNNN:catchall")
    return RunProject(int(seed), bool(rest), size=int(case[1:]) + 1), case


@dataclass(frozen=True)
class Reference:
    """What ``kedro run`` of a run project wrote and which hook calls it made, per node."""

    files: Mapping[str, bytes]
    hooks: Mapping[str, list[str]]


def fresh_copy(source: Path, target: Path) -> Path:
    """The generated project without anything a run left: a new place for one run."""
    ignore_run = ("data", "hooklog", "info.log*", ".kedro-vertex-ci", "__pycache__")
    import shutil

    shutil.copytree(source, target, ignore=shutil.ignore_patterns(*ignore_run))
    (target / "data").mkdir()
    return target


def kedro_reference(fp: FeatureProject, work: Path) -> Reference:
    """Run the project with ``kedro run`` (in-process, as the CLI does) in a copy; what it wrote."""
    reference = fresh_copy(fp.path, work / "kedro-run" / fp.path.name)
    kedro_run(reference, "__default__")
    found = Reference(data_files(reference), hook_calls(reference))
    if len(found.files) < len(fp.cases) or len(found.hooks) < 2 * len(fp.cases):
        raise AssertionError(f"{fp.package}: kedro run wrote too little to compare with: the oracle did not run")
    return found


def check_run(
    project_spec: RunProject,
    fp: FeatureProject,
    reference: Reference,
    grouping: str,
    work: Path,
    rerun: bool,
) -> list[str]:
    """``run-local`` with ``grouping`` in a fresh copy writes exactly ``reference``'s files, makes the same
    hook calls per node, logs no logging error and reaches the project's own ``info.log``; with ``rerun``, a
    ``--from-nodes`` rerun (one random node of each of :data:`RERUN_CASES` cases) into the same run id
    leaves the files as they were. Every problem starts with the case it belongs to and how to replay it."""
    project = fresh_copy(fp.path, work / grouping / fp.path.name)
    label_of = case_labeller(project_spec, grouping)
    result = run_local(project, grouping, "__default__")
    if result["_exit"] != 0:
        failed = failed_steps(result)
        return [f"{label_of(f)}: run-local failed: {f}" for f in failed] or [
            f"{label_of('')}: run-local exit {result['_exit']}: {result['_stderr'][-2000:]}"
        ]
    problems = compare_files(label_of, reference.files, data_files(project))
    problems += compare_hooks(label_of, reference.hooks, hook_calls(project))
    problems += logging_errors(result, label_of)
    problems += [
        f"{label_of(node)}: info.log (conf/logging.yml) lacks node {node}"
        for node in sorted(set(reference.hooks) - info_log_nodes(project))
    ]
    if not rerun or problems:
        return problems
    nodes = rerun_nodes(project_spec, reference.hooks)
    again = run_local(
        project, grouping, "__default__", "--run-id", result["run_id"], "--from-nodes", ",".join(nodes)
    )
    if again["_exit"] != 0:
        return [f"{label_of(f)}: --from-nodes {','.join(nodes)} failed: {f}" for f in failed_steps(again)] or [
            f"{label_of('')}: --from-nodes rerun exit {again['_exit']}: {again['_stderr'][-2000:]}"
        ]
    after = compare_files(label_of, reference.files, data_files(project))
    return [f"{p} (after --from-nodes {','.join(nodes)})" for p in after]


def case_labeller(project_spec: RunProject, grouping: str) -> Labeller:
    """A file key, node or step name -> ``SEED:cNNN[:catchall] [grouping]``, the token ``--replay`` takes
    (the project when the name holds no case)."""

    def label_of(name: str) -> str:
        found = _CASE_NAME.search(name)
        if found:
            return f"{project_spec.case_token(found.group(1))} [{grouping}]"
        return f"{project_spec.package} (seed {project_spec.seed}) [{grouping}]"

    return label_of


def rerun_nodes(project_spec: RunProject, hooks: Mapping[str, Sequence[str]]) -> list[str]:
    """One node of each of :data:`RERUN_CASES` cases, chosen by the project's seed; a case's node depends on
    its own token only, so a case replayed alone reruns the same node."""
    import random

    by_case: dict[str, list[str]] = {}
    for node in sorted(hooks):
        found = _CASE_NAME.search(node)
        if found:
            by_case.setdefault(found.group(1), []).append(node)
    chosen = random.Random(project_spec.seed).sample(sorted(by_case), k=min(RERUN_CASES, len(by_case)))
    return [random.Random(project_spec.case_token(c)).choice(by_case[c]) for c in sorted(chosen)]
