"""Seeded synthetic pipelines for the grouping tests (also run in a subprocess with another hash seed)."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence

from kedro_vertex_ci.model import DatasetKind, NodeInfo, PipelineGraph, Step


def random_dag(seed: int, size: int, catalog_share: float = 0.2, max_inputs: int = 3) -> PipelineGraph:
    """A random DAG: node ``i`` reads outputs of up to ``max_inputs`` earlier nodes; some outputs persisted."""
    rng = random.Random(seed)
    nodes: list[NodeInfo] = []
    kinds: dict[str, DatasetKind] = {"raw": DatasetKind.CATALOG}
    for i in range(size):
        earlier = rng.sample(range(i), k=min(i, rng.randint(0, max_inputs))) if i else []
        inputs = [f"d{j}" for j in sorted(earlier)] or ["raw"]
        if rng.random() < 0.3:
            inputs.append(f"params:p{rng.randint(0, 3)}.x")
        output = f"d{i}"
        if rng.random() < catalog_share:
            kinds[output] = DatasetKind.CATALOG
        tags = frozenset({f"t{rng.randint(0, 2)}"})
        nodes.append(
            NodeInfo(f"Node {i:03d}_{rng.choice(['prep', 'train', 'eval'])}", tuple(inputs), (output,), tags)
        )
    return PipelineGraph(f"random-{seed}", tuple(nodes), kinds, {f"p{k}": {"x": k} for k in range(4)})


def chain_heavy_dag(seed: int, chains: int) -> PipelineGraph:
    """Chains of 3–8 nodes through memory data; each chain starts from the end of an earlier chain."""
    rng = random.Random(seed)
    nodes: list[NodeInfo] = []
    kinds: dict[str, DatasetKind] = {"raw": DatasetKind.CATALOG}
    tails = ["raw"]
    for c in range(chains):
        source = rng.choice(tails)
        for k in range(rng.randint(3, 8)):
            output = f"c{c}_{k}"
            nodes.append(NodeInfo(f"chain{c}_step{k}", (source,), (output,)))
            source = output
        if rng.random() < 0.5:
            kinds[source] = DatasetKind.CATALOG
        tails.append(source)
    return PipelineGraph(f"chains-{seed}", tuple(nodes), kinds)


def layered_dag(layers: int, width: int, fan_in: int = 2, seed: int = 0) -> PipelineGraph:
    """``layers`` × ``width`` nodes, each reading ``fan_in`` random outputs of the previous layer."""
    rng = random.Random(seed)
    nodes = [NodeInfo(f"l0_n{w}", ("raw",), (f"l0_d{w}",)) for w in range(width)]
    for layer in range(1, layers):
        for w in range(width):
            inputs = tuple(f"l{layer - 1}_d{j}" for j in sorted(rng.sample(range(width), fan_in)))
            nodes.append(NodeInfo(f"l{layer}_n{w}", inputs, (f"l{layer}_d{w}",)))
    return PipelineGraph("layered", tuple(nodes), {"raw": DatasetKind.CATALOG})


def chain_dag(size: int) -> PipelineGraph:
    nodes = tuple(NodeInfo(f"node_{i}", (f"d{i}",), (f"d{i + 1}",)) for i in range(size))
    return PipelineGraph("chain", nodes, {"d0": DatasetKind.CATALOG, f"d{size}": DatasetKind.CATALOG})


def dump(steps: Sequence[Step]) -> str:
    """Steps as canonical JSON (tags sorted: frozenset order depends on the hash seed)."""
    return json.dumps(
        [
            [s.name, s.nodes, s.depends_on, s.reads, s.writes, s.group, sorted(s.tags), s.parameters]
            for s in steps
        ]
    )
