"""Read a compiled KFP v2 ``PipelineSpec`` (the very dict that would be submitted) into a flat task graph.

Pure: takes the spec dict, returns values. Nested DAGs (the ``ExitHandler`` group ``comp-exit-handler-1``) are
flattened: a task inside a group inherits the group's dependencies, a task that depends on a group depends on
every task inside it, and each task input is traced through the enclosing groups down to a pipeline input, a
constant, or the final status of a group (``dsl.PipelineTaskFinalStatus``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from graphlib import CycleError, TopologicalSorter
from typing import Any

import yaml

from ..errors import ConfigError

ALL_UPSTREAM_COMPLETED = "ALL_UPSTREAM_TASKS_COMPLETED"
_KFP_UNITS = {
    "": 1,
    "K": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
}


@dataclass(frozen=True)
class PipelineInput:
    """A pipeline input parameter as declared in ``root.inputDefinitions`` (type name as in the spec)."""

    name: str
    type: str
    default: Any = None
    has_default: bool = False


@dataclass(frozen=True)
class FromPipeline:
    """A task input fed by a pipeline input."""

    name: str


@dataclass(frozen=True)
class Constant:
    """A task input with a value fixed in the spec."""

    value: Any


@dataclass(frozen=True)
class FinalStatus:
    """A ``PipelineTaskFinalStatus`` input: the outcome of the tasks inside ``group``."""

    group: str


@dataclass(frozen=True)
class FromTask:
    """A task input fed by another task's output parameter (``taskOutputParameter``)."""

    task: str
    key: str


InputSource = FromPipeline | Constant | FinalStatus | FromTask


@dataclass(frozen=True)
class Container:
    """What one executor runs: Kubernetes semantics (``command`` replaces ENTRYPOINT, ``args`` replace CMD)."""

    image: str
    command: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    cpu: float | None = None  # cores
    memory: int | None = None  # bytes


@dataclass(frozen=True)
class Task:
    """One runnable task of the flattened graph."""

    name: str
    container: Container
    depends_on: tuple[str, ...] = ()
    inputs: Mapping[str, InputSource] = field(default_factory=dict)
    input_types: Mapping[str, str] = field(default_factory=dict)
    run_after_failure: bool = False  # triggerPolicy ALL_UPSTREAM_TASKS_COMPLETED (exit handler)
    group: str | None = None  # the DAG task (exit handler) this task sits in
    outputs: tuple[str, ...] = ()  # output parameters the task writes to its output_file paths

    @property
    def nodes(self) -> tuple[str, ...]:
        """Kedro node names the step runs (its ``--node NAME`` args)."""
        return tuple(_values_after("--node", self.container.command + self.container.args))


@dataclass(frozen=True)
class TaskGraph:
    """The flat graph: tasks in a stable topological order, plus the pipeline's inputs."""

    pipeline_name: str
    tasks: tuple[Task, ...]
    inputs: Mapping[str, PipelineInput]
    groups: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # group task -> its tasks

    def task(self, name: str) -> Task:
        for task in self.tasks:
            if task.name == name:
                return task
        raise KeyError(name)


def parse_spec_text(text: str, source: str = "spec") -> dict[str, Any]:
    """Parse a spec file's text (JSON or YAML). A PipelineJob body (``pipelineSpec`` inside) is accepted too."""
    try:
        data = json.loads(text)
    except RecursionError:
        raise ConfigError(f"{source}: nested too deeply to be a spec") from None
    except ValueError:  # not JSON (or a number past Python's 4300 digits): try YAML
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise ConfigError(f"{source}: neither JSON nor YAML: {err}") from err
        except RecursionError:
            raise ConfigError(f"{source}: nested too deeply to be a spec") from None
        except (ValueError, KeyError, TypeError, AttributeError) as err:  # 5000 digits, !!float abc, !!bool maybe (KeyError)
            raise ConfigError(f"{source}: cannot read it: {(str(err).splitlines() or [type(err).__name__])[0][:200]}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a PipelineSpec mapping, got {type(data).__name__}")
    return data


def split_job(data: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(pipeline spec, runtime parameter values) from either a bare spec or a PipelineJob body."""
    if "pipelineSpec" in data:
        runtime = data.get("runtimeConfig") or {}
        return dict(data["pipelineSpec"]), dict(runtime.get("parameterValues") or {})
    return dict(data), {}


def build_graph(spec: Mapping[str, Any]) -> TaskGraph:
    """Flatten ``spec`` into a :class:`TaskGraph`; a spec run-local cannot run raises :class:`ConfigError`."""
    try:
        root = spec["root"]
        components = spec.get("components", {})
        executors = spec.get("deploymentSpec", {}).get("executors", {})
        name = spec.get("pipelineInfo", {}).get("name", "pipeline")
    except (KeyError, AttributeError, TypeError) as err:
        raise ConfigError(f"spec: not a KFP PipelineSpec (missing {err})") from err
    inputs = _pipeline_inputs(root)
    flattener = _Flattener(components, executors)
    scope = {n: FromPipeline(n) for n in inputs}
    flattener.flatten_dag(root.get("dag", {}).get("tasks", {}), scope, inherited=(), group=None)
    flattener.expand_groups()
    _check_task_outputs(flattener.tasks)
    tasks = _topological(flattener.tasks)
    return TaskGraph(pipeline_name=name, tasks=tasks, inputs=inputs, groups=flattener.group_members)


def _pipeline_inputs(root: Mapping[str, Any]) -> dict[str, PipelineInput]:
    params = (root.get("inputDefinitions") or {}).get("parameters") or {}
    return {
        n: PipelineInput(
            name=n,
            type=d.get("parameterType", "STRING"),
            default=d.get("defaultValue"),
            has_default="defaultValue" in d,
        )
        for n, d in sorted(params.items())
    }


class _Flattener:
    """Walks nested DAGs once, collecting leaf tasks with resolved inputs and dependencies."""

    def __init__(self, components: Mapping[str, Any], executors: Mapping[str, Any]):
        self.components = components
        self.executors = executors
        self.tasks: dict[str, Task] = {}
        self.group_members: dict[str, tuple[str, ...]] = {}

    def flatten_dag(
        self,
        dag_tasks: Mapping[str, Any],
        scope: Mapping[str, InputSource],
        inherited: tuple[str, ...],
        group: str | None,
    ) -> list[str]:
        """Add the leaf tasks of one DAG; returns their names. ``inherited`` are the DAG task's dependencies.

        Dependencies may name group tasks; :meth:`expand_groups` replaces them by the groups' leaves at the end.
        """
        leaves: list[str] = []
        for task_name, body in dag_tasks.items():
            component = self._component(task_name, body)
            sources = {k: self._source(task_name, k, v, scope) for k, v in _task_inputs(body).items()}
            deps = inherited + tuple(body.get("dependentTasks") or ())
            if "dag" in component:
                inner_scope = dict(sources)
                for k, d in ((component.get("inputDefinitions") or {}).get("parameters") or {}).items():
                    if k not in inner_scope and "defaultValue" in d:
                        inner_scope[k] = Constant(d["defaultValue"])
                members = self.flatten_dag(component["dag"].get("tasks", {}), inner_scope, deps, task_name)
                self.group_members[task_name] = tuple(members)
                leaves.extend(members)
            else:
                self._add_leaf(task_name, body, component, sources, list(deps), group)
                leaves.append(task_name)
        return leaves

    def expand_groups(self) -> None:
        """Replace dependencies on group tasks by dependencies on every task inside the group."""
        for name, task in list(self.tasks.items()):
            deps: list[str] = []
            for dep in task.depends_on:
                deps.extend(self.group_members.get(dep, (dep,)))
            self.tasks[name] = replace(task, depends_on=tuple(dict.fromkeys(deps)))

    def _component(self, task_name: str, body: Mapping[str, Any]) -> Mapping[str, Any]:
        ref = (body.get("componentRef") or {}).get("name")
        component = self.components.get(ref) if isinstance(ref, str) else None
        if not isinstance(component, Mapping):
            raise ConfigError(f"spec: task {task_name!r} refers to unknown component {ref!r}")
        return component

    def _source(
        self, task: str, name: str, wiring: Mapping[str, Any], scope: Mapping[str, InputSource]
    ) -> InputSource:
        if "componentInputParameter" in wiring:
            ref = wiring["componentInputParameter"]
            if ref not in scope:
                raise ConfigError(f"spec: task {task!r} input {name!r} refers to unknown input {ref!r}")
            return scope[ref]
        if "runtimeValue" in wiring:
            return Constant(_constant(wiring["runtimeValue"]))
        if "taskFinalStatus" in wiring:
            return FinalStatus(wiring["taskFinalStatus"].get("producerTask", ""))
        if "taskOutputParameter" in wiring:
            produced = wiring["taskOutputParameter"]
            return FromTask(produced.get("producerTask", ""), produced.get("outputParameterKey", ""))
        kind = next(iter(wiring), "nothing")
        raise ConfigError(
            f"spec: task {task!r} input {name!r} is fed by {kind}, which run-local does not interpret "
            "(kedro-vertex-ci specs wire inputs from pipeline parameters and task outputs only)"
        )

    def _add_leaf(
        self,
        name: str,
        body: Mapping[str, Any],
        component: Mapping[str, Any],
        sources: dict[str, InputSource],
        deps: list[str],
        group: str | None,
    ) -> None:
        label = component.get("executorLabel")
        executor = self.executors.get(label) if isinstance(label, str) else None
        if not isinstance(executor, Mapping) or "container" not in executor:
            raise ConfigError(f"spec: task {name!r} has no container executor ({label!r})")
        if name in self.tasks:
            raise ConfigError(f"spec: task name {name!r} appears twice; run-local needs unique task names")
        definitions = (component.get("inputDefinitions") or {}).get("parameters") or {}
        for key, d in definitions.items():
            if key not in sources and "defaultValue" in d:
                sources[key] = Constant(d["defaultValue"])
        policy = (body.get("triggerPolicy") or {}).get("strategy")
        self.tasks[name] = Task(
            name=name,
            container=parse_container(_step_container(name, executor["container"], sources)),
            depends_on=tuple(dict.fromkeys(deps)),
            inputs=sources,
            input_types={k: d.get("parameterType", "STRING") for k, d in definitions.items()},
            run_after_failure=policy == ALL_UPSTREAM_COMPLETED,
            group=group,
            outputs=tuple(sorted((component.get("outputDefinitions") or {}).get("parameters") or {})),
        )


def _step_container(task: str, body: Mapping[str, Any], sources: Mapping[str, InputSource]) -> Mapping[str, Any]:
    """The container the step runs: for a CustomJob launcher task, the one inside its worker pool spec."""
    from ..customjob import inner_container, is_launcher

    if not is_launcher(body):
        return body
    return inner_container(task, body, {k: s.value for k, s in sources.items() if isinstance(s, Constant)})


def _check_task_outputs(tasks: Mapping[str, Task]) -> None:
    """Each ``taskOutputParameter`` names a task that declares that output and runs before the consumer."""
    for task in tasks.values():
        for name, source in task.inputs.items():
            if not isinstance(source, FromTask):
                continue
            producer = tasks.get(source.task)
            if producer is None or source.key not in producer.outputs:
                raise ConfigError(
                    f"spec: task {task.name!r} input {name!r} (taskOutputParameter) reads output {source.key!r} of task "
                    f"{source.task!r}, which has no such output parameter"
                )
            if source.task not in task.depends_on:
                raise ConfigError(
                    f"spec: task {task.name!r} reads an output of {source.task!r} without depending on it"
                )


def _task_inputs(body: Mapping[str, Any]) -> Mapping[str, Any]:
    inputs = body.get("inputs") or {}
    if inputs.get("artifacts"):
        raise ConfigError(
            f"spec: task {body.get('taskInfo', {}).get('name')!r} takes artifacts; not supported"
        )
    return inputs.get("parameters") or {}


def _constant(runtime_value: Mapping[str, Any]) -> Any:
    if "constant" in runtime_value:
        return runtime_value["constant"]
    legacy = runtime_value.get("constantValue") or {}
    for key in ("stringValue", "intValue", "doubleValue"):
        if key in legacy:
            return legacy[key]
    return None


def parse_container(body: Mapping[str, Any]) -> Container:
    """Executor container → :class:`Container` (resources normalised to cores and bytes)."""
    resources = body.get("resources") or {}
    cpu = resources.get("resourceCpuLimit")
    memory = resources.get("resourceMemoryLimit")
    return Container(
        image=body.get("image", ""),
        command=tuple(str(a) for a in body.get("command") or ()),
        args=tuple(str(a) for a in body.get("args") or ()),
        env=tuple((e["name"], str(e.get("value", ""))) for e in body.get("env") or ()),
        cpu=parse_cpu(cpu) if cpu else _number(resources.get("cpuLimit")),
        memory=parse_memory(memory) if memory else _gigabytes(resources.get("memoryLimit")),
    )


def parse_cpu(text: str) -> float:
    """KFP/Kubernetes CPU quantity ("2", "0.5", "500m") in cores."""
    text = str(text).strip()
    try:
        return float(text[:-1]) / 1000 if text.endswith("m") else float(text)
    except ValueError as err:
        raise ConfigError(f"spec: CPU limit {text!r} is not a quantity like '2' or '500m'") from err


def parse_memory(text: str) -> int:
    """KFP/Kubernetes memory quantity ("4G", "512Mi", "1000") in bytes."""
    match = re.fullmatch(r"\s*([0-9.]+)\s*([KMGTPE]i?)?\s*", str(text))
    if not match:
        raise ConfigError(f"spec: memory limit {text!r} is not a quantity like '4G' or '512Mi'")
    return int(float(match.group(1)) * _KFP_UNITS[match.group(2) or ""])


def _number(value: Any) -> float | None:
    return float(value) if value else None


def _gigabytes(value: Any) -> int | None:
    return int(float(value) * 10**9) if value else None


def _topological(tasks: Mapping[str, Task]) -> tuple[Task, ...]:
    """Tasks in dependency order, ties broken by spec order, so every run lists them the same way."""
    for task in tasks.values():
        missing = [d for d in task.depends_on if d not in tasks]
        if missing:
            raise ConfigError(f"spec: task {task.name!r} depends on unknown task(s) {missing}")
    sorter = TopologicalSorter({t.name: t.depends_on for t in tasks.values()})
    order = {name: i for i, name in enumerate(tasks)}
    result: list[Task] = []
    try:
        sorter.prepare()
    except CycleError as err:
        raise ConfigError(f"spec: tasks depend on each other in a cycle: {err.args[1]}") from err
    while sorter.is_active():
        ready = sorted(sorter.get_ready(), key=order.__getitem__)
        result.extend(tasks[n] for n in ready)
        sorter.done(*ready)
    return tuple(result)


def _values_after(flag: str, argv: Iterable[str]) -> list[str]:
    items = list(argv)
    values = []
    for i, item in enumerate(items):
        if item == flag and i + 1 < len(items):
            values.append(items[i + 1])
        elif item.startswith(flag + "="):
            values.append(item[len(flag) + 1 :])
    return values


def descendants(graph: TaskGraph, names: Iterable[str]) -> set[str]:
    """``names`` and every task that (transitively) depends on one of them."""
    found = set(names)
    for task in graph.tasks:  # topological order: one pass suffices
        if found.intersection(task.depends_on):
            found.add(task.name)
    return found


def ancestors(graph: TaskGraph, names: Iterable[str]) -> set[str]:
    """``names`` and every task they (transitively) depend on."""
    found = set(names)
    for task in reversed(graph.tasks):
        if task.name in found:
            found.update(task.depends_on)
    return found


def select_tasks(graph: TaskGraph, from_nodes: Iterable[str] = (), to_nodes: Iterable[str] = ()) -> TaskGraph:
    """Keep the tasks holding ``from_nodes`` and their descendants, and/or ``to_nodes`` and their ancestors.

    Exit-handler tasks (run whatever happened) and the producers of output parameters the kept tasks read
    are always kept. Dependencies on dropped tasks are removed: their outputs are expected under the run
    folder already (rerun with the same ``--run-id``).
    """
    from_nodes, to_nodes = list(from_nodes), list(to_nodes)
    if not from_nodes and not to_nodes:
        return graph
    keep = {t.name for t in graph.tasks}
    if from_nodes:
        keep &= descendants(graph, _tasks_holding(graph, from_nodes, "--from-nodes"))
    if to_nodes:
        keep &= ancestors(graph, _tasks_holding(graph, to_nodes, "--to-nodes"))
    return keep_tasks(graph, keep | _output_producers(graph, keep))


def _output_producers(graph: TaskGraph, names: set[str]) -> set[str]:
    """Tasks whose output parameters the ``names`` tasks read (e.g. the MLflow run id): they run too."""
    return {
        source.task
        for task in graph.tasks
        if task.name in names
        for source in task.inputs.values()
        if isinstance(source, FromTask)
    }


def skip_tasks(graph: TaskGraph, done: Iterable[str]) -> TaskGraph:
    """The graph without ``done`` tasks (``--resume``); exit-handler tasks always stay."""
    return keep_tasks(graph, {t.name for t in graph.tasks} - set(done))


def keep_tasks(graph: TaskGraph, keep: set[str]) -> TaskGraph:
    """Only the ``keep`` tasks (plus exit-handler tasks); dependencies on dropped tasks count as met."""
    keep = keep | {t.name for t in graph.tasks if t.run_after_failure}
    tasks = tuple(
        replace(t, depends_on=tuple(d for d in t.depends_on if d in keep))
        for t in graph.tasks
        if t.name in keep
    )
    groups = {g: tuple(m for m in members if m in keep) for g, members in graph.groups.items()}
    return replace(graph, tasks=tasks, groups=groups)


def _tasks_holding(graph: TaskGraph, nodes: list[str], option: str) -> set[str]:
    holders = {t.name for t in graph.tasks if set(nodes) & set(t.nodes)}
    known = {n for t in graph.tasks for n in t.nodes}
    unknown = [n for n in nodes if n not in known]
    if unknown:
        raise ConfigError(f"{option}: no step runs node(s) {unknown}; known nodes: {sorted(known)}")
    return holders
