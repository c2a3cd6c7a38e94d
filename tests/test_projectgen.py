"""The project generator writes real Kedro projects: they run with ``kedro run`` and load through a session."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from kedro_vertex_ci.testing import build_nodes, edges_for, expected_outputs, make_project

VENV_BIN = Path(sys.executable).parent
ENV = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1"}


def _layer_of(index: int, width: int) -> int:
    return index // width


def test_chain_edges_link_each_node_to_the_previous_one() -> None:
    assert edges_for("chain", 4) == [(), (0,), (1,), (2,)]


def test_fanout_has_one_source_parallel_middle_and_one_sink() -> None:
    edges = edges_for("fanout", 6)
    assert edges == [(), (0,), (0,), (0,), (0,), (1, 2, 3, 4)]


def test_layered_nodes_read_one_or_two_nodes_of_the_previous_layer() -> None:
    width = 7
    edges = edges_for("layered", 100, width)
    assert all(edges[i] == () for i in range(width))
    for i, upstream in enumerate(edges[width:], start=width):
        assert 1 <= len(upstream) <= 2
        assert {_layer_of(j, width) for j in upstream} == {_layer_of(i, width) - 1}
    assert sum(len(u) == 2 for u in edges) > 30


def test_diamond_splits_and_joins() -> None:
    assert edges_for("diamond", 7) == [(), (0,), (0,), (1, 2), (3,), (3,), (4, 5)]
    assert edges_for("diamond", 5) == [(), (0,), (0,), (1, 2), (3,)]


@pytest.mark.parametrize(("shape", "n"), [("triangle", 5), ("fanout", 2)])
def test_bad_shape_or_size_is_refused(shape: str, n: int) -> None:
    with pytest.raises(ValueError, match=shape):
        edges_for(shape, n)


def test_node_names_and_tags_are_applied() -> None:
    nodes = build_nodes("chain", 3, node_names=lambda i: f"step_{i}_x", tags={"step_1_x": ["group.a"]})
    assert [n.name for n in nodes] == ["step_0_x", "step_1_x", "step_2_x"]
    assert nodes[1].tags == ("group.a",)
    with pytest.raises(ValueError, match="distinct"):
        build_nodes("chain", 3, node_names=["a", "a", "b"])
    with pytest.raises(ValueError, match="unknown"):
        build_nodes("chain", 3, tags={"nope": ["t"]})


def test_generated_project_runs_with_kedro_run(tmp_path: Path) -> None:
    params = {"start": 5, "increment": 2, "extra": {"deep": [1, 2]}}
    nodes = build_nodes("layered", 9, width=3)
    expected = expected_outputs(nodes, params)
    last = nodes[-1].output
    project = make_project(
        tmp_path,
        "Run-Me",
        "layered",
        9,
        width=3,
        catalog=["ds_4", last],
        params=params,
        vertexai={"project_id": "demo-project", "region": "europe-west1"},
    )
    assert (project / "conf" / "base" / "vertexai.yml").read_text().startswith("project_id: demo-project")
    result = subprocess.run(
        [str(VENV_BIN / "kedro"), "run"], cwd=project, env=ENV, capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((project / "data" / f"{last}.json").read_text()) == expected[last]
    assert json.loads((project / "data" / "ds_4.json").read_text()) == expected["ds_4"]


def test_registered_subset_pipeline_runs_only_its_nodes(tmp_path: Path) -> None:
    project = make_project(
        tmp_path, "subset", "chain", 4, catalog=["ds_1", "ds_3"], pipelines={"head": ["node_0", "node_1"]}
    )
    result = subprocess.run(
        [str(VENV_BIN / "kedro"), "run", "--pipeline", "head"],
        cwd=project,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((project / "data" / "ds_1.json").read_text()) == 2
    assert not (project / "data" / "ds_3.json").exists()


_LOAD_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from kedro.framework.project import pipelines
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    path = Path(sys.argv[1])
    bootstrap_project(path)
    with KedroSession.create(path) as session:
        context = session.load_context()
        pipe = pipelines["__default__"]
        print(json.dumps({
            "nodes": [[n.name, sorted(n.inputs), n.outputs, sorted(n.tags)] for n in pipe.nodes],
            "params": context.params,
            "catalog": sorted(context.catalog.keys()),
        }))
    """
)


def test_thousand_node_project_loads_through_bootstrap_and_session(tmp_path: Path) -> None:
    tags = {"node_010": ["group.first", "heavy"]}
    project = make_project(tmp_path, "big", "layered", 1000, tags=tags, catalog=["ds_999"])
    result = subprocess.run(
        [sys.executable, "-c", _LOAD_SCRIPT, str(project)],
        cwd=tmp_path,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    expected = build_nodes("layered", 1000, tags=tags)
    by_name = {name: (inputs, outputs, tags) for name, inputs, outputs, tags in loaded["nodes"]}
    assert len(by_name) == 1000
    for gen in expected:
        assert by_name[gen.name] == (sorted(gen.inputs), [gen.output], sorted(gen.tags))
    assert loaded["params"] == {"start": 1, "increment": 1}
    assert "ds_999" in loaded["catalog"]
