"""Defect: transcoded datasets (``name@format``) lost their dependency edge and their intermediate file.

Kedro links ``m@spark`` written and ``m@pandas`` read as one dataset; the step graph and the files that
carry intermediate data between steps must do the same.
"""

from __future__ import annotations

from kedro.pipeline import Pipeline, node

from kedro_vertex_ci.grouping import group_steps
from kedro_vertex_ci.model import DatasetKind, NodeInfo, PipelineGraph, strip_transcoding
from kedro_vertex_ci.runtime.intermediate import IntermediateDataset


def _graph(catalog: set[str], *nodes: tuple[str, list[str], list[str]]) -> PipelineGraph:
    infos = tuple(NodeInfo(name, tuple(ins), tuple(outs)) for name, ins, outs in nodes)
    kinds = {d: DatasetKind.CATALOG for d in catalog}
    return PipelineGraph("t", infos, kinds)


def _identity(x):
    return x


def _kedro_dependencies(*nodes: tuple[str, list[str], list[str]]) -> dict[str, set[str]]:
    pipeline = Pipeline([node(_identity if len(i) == 1 else _join, i, o, name=n) for n, i, o in nodes])
    return {n.name: {p.name for p in preds} for n, preds in pipeline.node_dependencies.items()}


def _join(*values):
    return values


NODES = (
    ("write_spark", ["raw"], ["table@spark"]),
    ("read_pandas", ["table@pandas"], ["features@a"]),
    ("read_features", ["features@b"], ["out"]),
)


def test_catalog_and_intermediate_transcoded_readers_depend_on_their_writer_as_in_kedro():
    graph = _graph({"raw", "out", "table@spark", "table@pandas"}, *NODES)
    steps = {s.nodes[0]: s for s in group_steps(graph, "identity")}
    names = {n: steps[n].name for n in steps}
    kedro = _kedro_dependencies(*NODES)
    for reader, writers in kedro.items():
        assert set(steps[reader].depends_on) == {names[w] for w in writers}
    assert steps["read_pandas"].depends_on == (names["write_spark"],)
    assert steps["read_features"].depends_on == (names["read_pandas"],)
    # the intermediate one travels as a file: written under one name, read under the other
    assert steps["read_pandas"].writes == ("features@a",)
    assert steps["read_features"].reads == ("features@b",)


def test_auto_grouping_fuses_a_chain_linked_by_transcoded_intermediate_data():
    graph = _graph({"raw"}, ("a", ["raw"], ["m@x"]), ("b", ["m@y"], ["n"]), ("c", ["n"], ["out"]))
    (step,) = group_steps(graph, "auto")
    assert step.nodes == ("a", "b", "c")


def test_an_intermediate_file_is_keyed_by_the_name_without_its_transcoding_suffix(tmp_path):
    root = str(tmp_path)
    writer = IntermediateDataset.for_run(root, "run", "features@a")
    reader = IntermediateDataset.for_run(root, "run", "features@b")
    assert writer.path == reader.path == IntermediateDataset.for_run(root, "run", "features").path
    writer.save({"x": [1, 2]})
    assert reader.load() == {"x": [1, 2]}


def test_strip_transcoding_agrees_with_kedro():
    from kedro.pipeline import transcoding

    for name in ("plain", "a@b", "params:x", "ns.m@pandas", "@x"):
        assert strip_transcoding(name) == transcoding._strip_transcoding(name)
