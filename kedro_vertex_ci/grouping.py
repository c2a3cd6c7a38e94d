"""Nodes → steps: decide which Kedro nodes run together in one Vertex task.

Pure: takes a :class:`~kedro_vertex_ci.model.PipelineGraph` and returns :class:`~kedro_vertex_ci.model.Step`
values; never calls Kedro. Output is a function of the graph's content only (not of the order the nodes
come in, nor of ``PYTHONHASHSEED``), so compiling twice gives identical steps with identical names.

Strategies (``run_config.grouping.cls``):

``identity``
    One step per node.
``tag``
    Nodes sharing a ``group.<name>`` tag (prefix configurable with ``tag_prefix``) fuse into step ``<name>``;
    a node with two such tags is an error; untagged nodes are their own step.
``auto``
    Chooses the steps that minimise the estimated wall time of the run on Vertex (each step pays a start
    cost, see :mod:`kedro_vertex_ci.costmodel`), then the fewest steps; fuses across any dataset, never
    across placement, keeps ``group.<name>`` tag groups as written (:mod:`kedro_vertex_ci.autogroup`).
``pkg.mod.Class``
    A user class built with ``**params`` whose ``group(graph)`` returns ``{group name: [node names]}``.

For every strategy the step graph must be a DAG, checked with :mod:`graphlib`: ``tag`` and user classes raise
:class:`GroupingError` naming the groups, nodes and datasets of a cycle (``auto`` never builds one).
"""

from __future__ import annotations

import graphlib
import hashlib
import importlib
import re
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from .autogroup import UnitGraph
from .costmodel import COST_PARAMS, CostParams, node_seconds
from .errors import GroupingError, Problem
from .model import DatasetKind, NodeInfo, PipelineGraph, Step, strip_transcoding

STRATEGIES = ("identity", "tag", "auto")
PREDECESSOR_CLASSES = {
    "kedro_vertexai.grouping.IdentityNodeGrouper": "identity",
    "kedro_vertexai.grouping.TagNodeGrouper": "tag",
}
DEFAULT_TAG_PREFIX = "group."
MAX_NAME_LENGTH = 60
_HASH_LENGTH = 6
_CONFIG_FILE = "vertexai.yml"
_CLS_KEY = "run_config.grouping.cls"
_PARAMS_KEY = "run_config.grouping.params"
_NODE, _GROUP, _AUTO = 0, 1, 2  # kinds of group; lower wins a name collision
_K = TypeVar("_K", str, int)


def group_steps(
    graph: PipelineGraph,
    strategy: str = "identity",
    params: Mapping[str, Any] | None = None,
    on_exit_nodes: frozenset[str] = frozenset(),
    durations: Mapping[str, float] | None = None,
    placements: Mapping[str, Hashable] | None = None,
) -> tuple[Step, ...]:
    """Group ``graph``'s nodes into steps, returned in a deterministic topological order.

    Nodes named in ``on_exit_nodes`` belong to the on-exit pipeline: they get no step here, but intermediate
    datasets they read are in the producing step's ``writes``. ``auto`` only: ``durations`` are measured
    seconds per node (missing nodes get the default), ``placements`` a value per node that must be equal
    for two nodes to share a step (see :func:`kedro_vertex_ci.settings.node_placements`).
    """
    index = _NodeIndex.build(graph, on_exit_nodes)
    options = dict(params or {})
    resolved = PREDECESSOR_CLASSES.get(strategy, strategy)
    if resolved == "identity":
        _expect_params(resolved, options, allowed=())
        groups = [_single(name) for name in index.order]
    elif resolved == "tag":
        _expect_params(resolved, options, allowed=("tag_prefix",))
        groups = _tag_groups(index, str(options.get("tag_prefix", DEFAULT_TAG_PREFIX)))
    elif resolved == "auto":
        _expect_params(resolved, options, allowed=("tag_prefix", *COST_PARAMS))
        groups = _auto_groups(index, options, durations or {}, placements or {})
    elif _looks_like_class_path(resolved):
        groups = _user_groups(index, graph, resolved, options)
    else:
        raise GroupingError([Problem(_CONFIG_FILE, _CLS_KEY, _unknown_strategy_message(strategy))])
    _raise_on_cycle(groups, index)
    return _build_steps(groups, index)


def critical_path_length(steps: Sequence[Step]) -> int:
    """Number of steps on the longest dependency path (0 for no steps); ``steps`` in topological order."""
    depth: dict[str, int] = {}
    for step in steps:
        depth[step.name] = 1 + max((depth[d] for d in step.depends_on), default=0)
    return max(depth.values(), default=0)


def sanitise_name(text: str) -> str:
    """``text`` as a Vertex task name: lowercase letters, digits and single dashes, starting with a letter.

    Long names are cut and get a short hash of the full text, so two long names sharing a prefix stay apart.
    """
    name = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "step"
    if not name[0].isalpha():
        name = f"n-{name}"
    if len(name) > MAX_NAME_LENGTH:
        name = _with_hash(name, text)
    return name


# --- the node graph -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _NodeIndex:
    """Lookups over the grouped nodes, built once: producers, consumers, neighbours, a topological order."""

    graph: PipelineGraph
    nodes: Mapping[str, NodeInfo]
    order: tuple[str, ...]  # topological, ties broken by name: independent of the input order
    position: Mapping[str, int]  # node -> index in ``order``
    producer: Mapping[str, str]  # dataset (transcoding suffix stripped) -> the node writing it
    consumers: Mapping[str, tuple[str, ...]]  # dataset (transcoding suffix stripped) -> nodes reading it
    preds: Mapping[str, frozenset[str]]
    succs: Mapping[str, frozenset[str]]
    exit_reads: frozenset[str]  # datasets the on-exit pipeline reads (transcoding suffix stripped)

    @classmethod
    def build(cls, graph: PipelineGraph, on_exit_nodes: frozenset[str]) -> _NodeIndex:
        nodes = {n.name: n for n in graph.nodes if n.name not in on_exit_nodes}
        producer: dict[str, str] = {}
        for node in nodes.values():
            for dataset in map(strip_transcoding, node.outputs):
                if dataset in producer:
                    message = (
                        f"dataset '{dataset}' is written by two nodes: '{producer[dataset]}', '{node.name}'"
                    )
                    raise GroupingError([Problem(_CONFIG_FILE, _CLS_KEY, message)])
                producer[dataset] = node.name
        consumers: dict[str, list[str]] = {}
        preds: dict[str, set[str]] = {name: set() for name in nodes}
        succs: dict[str, set[str]] = {name: set() for name in nodes}
        for node in nodes.values():
            for dataset in map(strip_transcoding, node.inputs):
                consumers.setdefault(dataset, []).append(node.name)
                source = producer.get(dataset)
                if source is not None and source != node.name:
                    preds[node.name].add(source)
                    succs[source].add(node.name)
        exit_reads = frozenset(
            strip_transcoding(d) for n in graph.nodes if n.name in on_exit_nodes for d in n.inputs
        )
        order = _toposort({name: preds[name] for name in nodes}, _node_cycle_error)
        return cls(
            graph=graph,
            nodes=nodes,
            order=tuple(order),
            position={name: i for i, name in enumerate(order)},
            producer=producer,
            consumers={d: tuple(sorted(c)) for d, c in consumers.items()},
            preds={k: frozenset(v) for k, v in preds.items()},
            succs={k: frozenset(v) for k, v in succs.items()},
            exit_reads=exit_reads,
        )

    def is_intermediate(self, dataset: str) -> bool:
        return self.graph.kind(dataset) is DatasetKind.INTERMEDIATE

    def producer_of(self, dataset: str) -> str | None:
        """The node writing ``dataset`` under any transcoding suffix, or None for a pipeline input."""
        return self.producer.get(strip_transcoding(dataset))

    def ordered(self, names: Iterable[str]) -> list[str]:
        return sorted(names, key=self.position.__getitem__)


def _toposort(preds: Mapping[_K, Iterable[_K]], on_cycle: Callable[[list[_K]], Exception]) -> list[_K]:
    """Kahn's algorithm in rounds, each round sorted: the order depends only on the graph, not on input order."""
    sorter: graphlib.TopologicalSorter[_K] = graphlib.TopologicalSorter()
    for name in sorted(preds):
        sorter.add(name, *sorted(preds[name]))
    try:
        sorter.prepare()
    except graphlib.CycleError as err:
        raise on_cycle(err.args[1]) from err
    order: list[_K] = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready())
        order.extend(ready)
        sorter.done(*ready)
    return order


def _node_cycle_error(cycle: Sequence[str]) -> GroupingError:
    path = " -> ".join(cycle)
    return GroupingError([Problem(_CONFIG_FILE, _CLS_KEY, f"the pipeline's nodes form a cycle: {path}")])


# --- strategies -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Group:
    """A set of nodes that becomes one step, plus what its name is derived from."""

    members: frozenset[str]
    label: str  # readable text the step name comes from
    identity: str  # unique text hashed when names collide
    kind: int  # _NODE, _GROUP or _AUTO
    group: str | None = None  # the user's group name (tag grouping, user classes)


def _single(node: str) -> _Group:
    return _Group(frozenset([node]), node, f"node\0{node}", _NODE)


def _named(name: str, members: Iterable[str]) -> _Group:
    return _Group(frozenset(members), name, f"group\0{name}", _GROUP, group=name)


def _auto(members: Iterable[str], index: _NodeIndex) -> _Group:
    ordered = index.ordered(members)
    if len(ordered) == 1:
        return _single(ordered[0])
    return _Group(
        frozenset(ordered), f"{ordered[0]}-{len(ordered)}-nodes", "auto\0" + "\0".join(ordered), _AUTO
    )


def _expect_params(strategy: str, params: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        accepted = ", ".join(allowed) if allowed else "none"
        message = (
            f"unknown parameter(s) {', '.join(unknown)} for grouping '{strategy}' (accepted: {accepted})"
        )
        raise GroupingError([Problem(_CONFIG_FILE, _PARAMS_KEY, message)])


def _tag_groups(index: _NodeIndex, prefix: str) -> list[_Group]:
    """One group per ``<prefix><name>`` tag; nodes without such a tag stay alone."""
    members: dict[str, list[str]] = {}
    groups: list[_Group] = []
    for name in index.order:
        tags = sorted(t for t in index.nodes[name].tags if t.startswith(prefix) and len(t) > len(prefix))
        if len(tags) > 1:
            quoted = " and ".join(f"'{t}'" for t in tags)
            message = (
                f"node '{name}' has {len(tags)} group tags {quoted}; a node belongs to one group only, "
                "remove all but one"
            )
            raise GroupingError([Problem(_CONFIG_FILE, _CLS_KEY, message)])
        if tags:
            members.setdefault(tags[0][len(prefix) :], []).append(name)
        else:
            groups.append(_single(name))
    groups.extend(_named(group, nodes) for group, nodes in members.items())
    return groups


def _auto_groups(
    index: _NodeIndex,
    options: Mapping[str, Any],
    durations: Mapping[str, float],
    placements: Mapping[str, Hashable],
) -> list[_Group]:
    """Cost-aware fusion (:mod:`kedro_vertex_ci.autogroup`) over units: single nodes, and the user's tag groups
    kept exactly as written."""
    from .autogroup import best_partition

    cost = CostParams.from_params(options)
    units = _units(index, str(options.get("tag_prefix", DEFAULT_TAG_PREFIX)))
    unit_graph = _unit_graph(units, index, node_seconds(index.order, durations, cost).seconds, placements)
    partition = best_partition(unit_graph, cost)
    return [_merged([units[u] for u in step], index) for step in partition]


def _units(index: _NodeIndex, prefix: str) -> list[_Group]:
    """Tag groups and single nodes in a topological order of their own graph (a cycle is an error)."""
    units = _tag_groups(index, prefix)
    order = _toposort(
        _group_preds(units, index), lambda cycle: _group_cycle_error([units[i] for i in cycle], index)
    )
    return [units[i] for i in order]


def _unit_graph(
    units: Sequence[_Group],
    index: _NodeIndex,
    seconds: Mapping[str, float],
    placements: Mapping[str, Hashable],
) -> UnitGraph:
    preds = _group_preds(units, index)
    # Equal placements as one small int each: the optimiser compares them tens of thousands of times, and
    # comparing two resolved-settings dataclasses field by field dominated its run time on large graphs.
    ids: dict[Hashable, int] = {}
    return UnitGraph(
        preds=tuple(tuple(sorted(preds[u])) for u in range(len(units))),
        seconds=tuple(sum(seconds[n] for n in unit.members) for unit in units),
        mergeable=tuple(unit.kind == _NODE for unit in units),
        placement=tuple(
            ids.setdefault(
                placements.get(next(iter(unit.members))) if unit.kind == _NODE else ("group", unit.label), len(ids)
            )
            for unit in units
        ),
        first=tuple(min(index.position[n] for n in unit.members) for unit in units),
    )


def _merged(parts: Sequence[_Group], index: _NodeIndex) -> _Group:
    if len(parts) == 1:
        return parts[0]
    return _auto((n for part in parts for n in part.members), index)


def _looks_like_class_path(strategy: str) -> bool:
    return re.fullmatch(r"[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)+", strategy) is not None


def _unknown_strategy_message(strategy: str) -> str:
    valid = ", ".join([*STRATEGIES, *PREDECESSOR_CLASSES, "or a class path 'package.module.Class'"])
    return f"unknown grouping '{strategy}'; valid values: {valid}"


def _user_groups(
    index: _NodeIndex, graph: PipelineGraph, path: str, params: Mapping[str, Any]
) -> list[_Group]:
    """Groups from a user class: ``Class(**params).group(graph)`` → ``{group name: [node names]}``."""
    module_name, _, class_name = path.rpartition(".")
    try:
        grouper_class = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as err:
        message = f"cannot import grouping class '{path}' ({err}); valid values: {', '.join(STRATEGIES)}, "
        message += "or the import path of a class on the project's Python path"
        raise GroupingError([Problem(_CONFIG_FILE, _CLS_KEY, message)]) from err
    try:
        grouper = grouper_class(**params)
    except Exception as err:  # the user's constructor: any failure is a configuration problem to report
        message = f"cannot build '{path}': {type(err).__name__}: {err}"
        raise GroupingError([Problem(_CONFIG_FILE, _PARAMS_KEY, message)]) from err
    grouped_graph = PipelineGraph(
        name=graph.name,
        nodes=tuple(index.nodes[n] for n in index.order),
        dataset_kinds=graph.dataset_kinds,
        parameters=graph.parameters,
    )
    try:
        result = grouper.group(grouped_graph)
    except Exception as err:  # the user's code: report it like any other grouping problem
        message = f"'{path}'.group() failed: {type(err).__name__}: {err}"
        raise GroupingError([Problem(_CONFIG_FILE, _CLS_KEY, message)]) from err
    return _validate_user_groups(result, index, path)


def _validate_user_groups(result: Any, index: _NodeIndex, path: str) -> list[_Group]:
    """Every node in exactly one group, group names strings, nothing unknown; one problem per violation."""
    problems: list[str] = []
    if not isinstance(result, Mapping):
        problems.append(f"returned {type(result).__name__}, expected a mapping of group name to node names")
        result = {}
    seen: dict[str, str] = {}
    groups: list[_Group] = []
    for group, nodes in sorted(result.items(), key=lambda item: str(item[0])):
        if not isinstance(group, str) or isinstance(nodes, str) or not isinstance(nodes, Iterable):
            problems.append(f"group {group!r}: expected a string name and a list of node names")
            continue
        names = list(nodes)
        for node in names:
            if node not in index.nodes:
                problems.append(f"group '{group}' lists unknown node {node!r}")
            elif node in seen:
                problems.append(f"node '{node}' is in two groups: '{seen[node]}' and '{group}'")
            else:
                seen[node] = group
        known = [n for n in names if n in index.nodes]
        if known:
            groups.append(_named(group, known))
    missing = [n for n in index.order if n not in seen]
    if missing:
        problems.append(f"nodes in no group: {', '.join(missing)}")
    if problems:
        raise GroupingError([Problem(_CONFIG_FILE, _CLS_KEY, f"'{path}'.group(): {p}") for p in problems])
    return groups


# --- the step graph -------------------------------------------------------------------------------------


def _group_preds(groups: Sequence[_Group], index: _NodeIndex) -> dict[int, set[int]]:
    """For each group, the groups producing any dataset (catalog or intermediate) its nodes read."""
    group_of = {node: i for i, group in enumerate(groups) for node in group.members}
    preds: dict[int, set[int]] = {i: set() for i in range(len(groups))}
    for node, node_preds in index.preds.items():
        for pred in node_preds:
            if group_of[pred] != group_of[node]:
                preds[group_of[node]].add(group_of[pred])
    return preds


def _raise_on_cycle(groups: Sequence[_Group], index: _NodeIndex) -> None:
    _toposort(
        _group_preds(groups, index), lambda cycle: _group_cycle_error([groups[i] for i in cycle], index)
    )


def _group_cycle_error(cycle: Sequence[_Group], index: _NodeIndex) -> GroupingError:
    """Name the groups on the cycle and, for each hop, the node, dataset and node that make it."""
    hops = []
    nodes: set[str] = set()
    for upstream, downstream in zip(cycle[:-1], cycle[1:], strict=True):
        writer, dataset, reader = _link(upstream, downstream, index)
        nodes.update([writer, reader])
        hops.append(f"node '{writer}' writes '{dataset}' read by node '{reader}'")
    path = " -> ".join(_display(g) for g in cycle)
    message = (
        f"groups form a cycle: {path} ({'; '.join(hops)}); nodes on the cycle: {', '.join(sorted(nodes))}. "
        "Put them in one group, or split the group so no data leaves it and comes back"
    )
    return GroupingError([Problem(_CONFIG_FILE, _CLS_KEY, message)])


def _link(upstream: _Group, downstream: _Group, index: _NodeIndex) -> tuple[str, str, str]:
    for reader in sorted(downstream.members):
        for dataset in index.nodes[reader].inputs:
            writer = index.producer_of(dataset)
            if writer in upstream.members:
                return writer, dataset, reader
    raise AssertionError("cycle hop without a dataset")  # graphlib only reports existing edges


def _display(group: _Group) -> str:
    if group.group is not None:
        return f"group '{group.group}'"
    return "node " + ", ".join(f"'{n}'" for n in sorted(group.members))


# --- steps ----------------------------------------------------------------------------------------------


def _build_steps(groups: Sequence[_Group], index: _NodeIndex) -> tuple[Step, ...]:
    names = _step_names(groups)
    group_of = {node: i for i, group in enumerate(groups) for node in group.members}
    preds = _group_preds(groups, index)
    order = _toposort(
        {names[i]: [names[p] for p in preds[i]] for i in range(len(groups))},
        lambda cycle: AssertionError(f"step cycle after checks: {cycle}"),
    )
    by_name = {names[i]: i for i in range(len(groups))}
    return tuple(_step(by_name[name], groups, names, group_of, preds, index) for name in order)


def _step(
    i: int,
    groups: Sequence[_Group],
    names: Sequence[str],
    group_of: Mapping[str, int],
    preds: Mapping[int, set[int]],
    index: _NodeIndex,
) -> Step:
    group = groups[i]
    nodes = index.ordered(group.members)
    infos = [index.nodes[n] for n in nodes]
    reads = {
        d
        for info in infos
        for d in info.inputs
        if index.is_intermediate(d) and _produced_outside(index.producer_of(d), i, group_of)
    }
    writes = {
        d
        for info in infos
        for d in info.outputs
        if index.is_intermediate(d) and _read_outside(strip_transcoding(d), i, group_of, index)
    }
    return Step(
        name=names[i],
        nodes=tuple(nodes),
        depends_on=tuple(sorted(names[p] for p in preds[i])),
        reads=tuple(sorted(reads)),
        writes=tuple(sorted(writes)),
        group=group.group,
        tags=frozenset(t for info in infos for t in info.tags),
        parameters=_parameter_keys(infos, index.graph.parameters),
    )


def _produced_outside(producer: str | None, group: int, group_of: Mapping[str, int]) -> bool:
    return producer is not None and group_of[producer] != group


def _read_outside(dataset: str, group: int, group_of: Mapping[str, int], index: _NodeIndex) -> bool:
    """``dataset`` (suffix stripped) is read by another step or by the on-exit pipeline."""
    return dataset in index.exit_reads or any(group_of[c] != group for c in index.consumers.get(dataset, ()))


def _parameter_keys(infos: Iterable[NodeInfo], parameters: Mapping[str, Any]) -> tuple[str, ...]:
    """Top-level parameter keys: ``params:a.b.c`` uses ``a``; ``parameters`` uses every key."""
    keys: set[str] = set()
    for info in infos:
        for dataset in info.inputs:
            if dataset == "parameters":
                keys.update(parameters)
            elif dataset.startswith("params:"):
                keys.add(dataset[len("params:") :].split(".", 1)[0])
    return tuple(sorted(keys))


def _step_names(groups: Sequence[_Group]) -> list[str]:
    """Unique, stable task names: the sanitised label; on a collision the best claim keeps it, others get a hash.

    The best claim is a label that is already a valid name, then a single node over a group over an ``auto``
    group. Hash suffixes depend only on the group itself, so adding a node elsewhere renames nothing.
    """
    bases = [sanitise_name(g.label) for g in groups]
    claims: dict[str, list[int]] = {}
    for i, base in enumerate(bases):
        claims.setdefault(base, []).append(i)
    names = list(bases)
    for base, owners in claims.items():
        if len(owners) == 1:
            continue
        owners.sort(key=lambda i: (groups[i].label != base, groups[i].kind, groups[i].identity))
        for i in owners[1:]:
            names[i] = _with_hash(base, groups[i].identity)
    return _dedupe(names, groups)


def _dedupe(names: list[str], groups: Sequence[_Group]) -> list[str]:
    """Last resort for a hashed name that happens to equal another name: number the later claims."""
    taken: set[str] = set()
    result = list(names)
    for i in sorted(range(len(names)), key=lambda i: (names[i], groups[i].identity)):
        name, counter = names[i], 1
        while name in taken:
            counter += 1
            suffix = f"-{counter}"
            name = names[i][: MAX_NAME_LENGTH - len(suffix)].rstrip("-") + suffix
        taken.add(name)
        result[i] = name
    return result


def _with_hash(name: str, identity: str) -> str:
    digest = hashlib.sha1(identity.encode("utf-8")).hexdigest()[:_HASH_LENGTH]
    return name[: MAX_NAME_LENGTH - _HASH_LENGTH - 1].rstrip("-") + "-" + digest


def node_dependencies(graph: PipelineGraph) -> tuple[tuple[str, ...], dict[str, frozenset[str]]]:
    """``graph``'s nodes in grouping's topological order, and each node's direct predecessors."""
    index = _NodeIndex.build(graph, frozenset())
    return index.order, dict(index.preds)
