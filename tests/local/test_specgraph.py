"""spec → task graph: dependencies, exit-handler flattening, inputs traced to their source, resources."""

from __future__ import annotations

import copy
import json

import pytest

from kedro_vertex_ci.errors import ConfigError
from kedro_vertex_ci.local.specgraph import (
    Constant,
    FinalStatus,
    FromPipeline,
    build_graph,
    parse_cpu,
    parse_memory,
    parse_spec_text,
    select_tasks,
    split_job,
)
from tests.local import specs


def _spec(tasks: dict, executors: dict | None = None, inputs: dict | None = None) -> dict:
    """A minimal hand-built PipelineSpec: one component + executor per task name."""
    components = {f"comp-{n}": {"executorLabel": f"exec-{n}"} for n in tasks}
    execs = executors or {
        f"exec-{n}": {"container": {"image": "img", "command": ["run", n], "args": ["--node", f"node_{n}"]}}
        for n in tasks
    }
    body = {
        n: {
            "componentRef": {"name": f"comp-{n}"},
            "taskInfo": {"name": n},
            **({"dependentTasks": d} if d else {}),
        }
        for n, d in tasks.items()
    }
    return {
        "pipelineInfo": {"name": "p"},
        "components": components,
        "deploymentSpec": {"executors": execs},
        "root": {"dag": {"tasks": body}, "inputDefinitions": {"parameters": inputs or {}}},
    }


@pytest.mark.parametrize(
    ("tasks", "order"),
    [
        ({"a": [], "b": ["a"], "c": ["b"]}, ["a", "b", "c"]),
        ({"c": ["b"], "b": ["a"], "a": []}, ["a", "b", "c"]),  # spec order is not dependency order
        ({"a": [], "x": ["a"], "y": ["a"], "z": ["x", "y"]}, ["a", "x", "y", "z"]),
        ({"b": [], "a": []}, ["b", "a"]),  # ties keep spec order: stable listing
    ],
)
def test_tasks_come_out_in_dependency_order(tasks, order):
    graph = build_graph(_spec(tasks))
    assert [t.name for t in graph.tasks] == order
    assert {t.name: list(t.depends_on) for t in graph.tasks} == {n: d for n, d in tasks.items()}


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda s: s["root"]["dag"]["tasks"]["a"].update(dependentTasks=["nope"]), "unknown task"),
        (lambda s: s["root"]["dag"]["tasks"]["a"].update(dependentTasks=["b"]), "cycle"),
        (
            lambda s: s["root"]["dag"]["tasks"]["a"].update(componentRef={"name": "comp-x"}),
            "unknown component",
        ),
        (lambda s: s["deploymentSpec"]["executors"].pop("exec-a"), "no container executor"),
        (
            lambda s: s["root"]["dag"]["tasks"]["a"].update(
                inputs={"parameters": {"x": {"taskOutputParameter": {"producerTask": "b"}}}}
            ),
            "taskOutputParameter",
        ),
        (
            lambda s: s["root"]["dag"]["tasks"]["a"].update(
                inputs={"parameters": {"x": {"componentInputParameter": "missing"}}}
            ),
            "unknown input 'missing'",
        ),
        (lambda s: s.pop("root"), "not a KFP PipelineSpec"),
    ],
)
def test_specs_run_local_cannot_run_are_refused_with_the_reason(mutate, message):
    spec = _spec({"a": [], "b": ["a"]})
    mutate(spec)
    with pytest.raises(ConfigError, match=message):
        build_graph(spec)


def test_exit_handler_is_flattened_and_the_exit_task_runs_after_everything_in_it():
    graph = build_graph(specs.load(specs.placeholder_spec()))
    assert [t.name for t in graph.tasks] == ["record", "on-exit"]
    record, on_exit = graph.tasks
    assert record.group == "exit-handler-1" and not record.run_after_failure
    assert on_exit.run_after_failure and on_exit.depends_on == ("record",)
    assert graph.groups == {"exit-handler-1": ("record",)}
    assert on_exit.inputs == {"status": FinalStatus("exit-handler-1")}
    # inputs are traced through the sub-DAG's pipelinechannel--* inputs to the pipeline inputs
    assert record.inputs["text"] == FromPipeline("text")
    assert record.inputs["name"] == Constant("record")
    assert record.nodes == ("first_node",)
    assert record.container.env == (("STEP_ENV", "from-spec"),)
    assert graph.inputs["count"].type == "NUMBER_INTEGER" and graph.inputs["count"].default == 3.0


def test_a_task_after_the_group_waits_for_every_task_inside_it():
    spec = specs.load(specs.placeholder_spec())
    inner = spec["components"]["comp-exit-handler-1"]["dag"]["tasks"]
    inner["record-2"] = copy.deepcopy(inner["record"]) | {"dependentTasks": ["record"]}
    spec["root"]["dag"]["tasks"]["first"] = {
        "componentRef": {"name": "comp-on-exit"},
        "taskInfo": {"name": "f"},
    }
    spec["root"]["dag"]["tasks"]["exit-handler-1"]["dependentTasks"] = ["first"]
    graph = build_graph(spec)
    by_name = {t.name: t for t in graph.tasks}
    assert by_name["on-exit"].depends_on == ("record", "record-2")
    assert by_name["record"].depends_on == ("first",)  # inherits the group's dependencies
    assert set(by_name["record-2"].depends_on) == {"first", "record"}


@pytest.mark.parametrize(
    ("resources", "cpu", "memory"),
    [
        ({"resourceCpuLimit": "2", "resourceMemoryLimit": "4G"}, 2.0, 4 * 10**9),
        ({"resourceCpuLimit": "500m", "resourceMemoryLimit": "512Mi"}, 0.5, 512 * 2**20),
        ({"cpuLimit": 1.5, "memoryLimit": 2.0}, 1.5, 2 * 10**9),  # the deprecated float fields
        ({}, None, None),
    ],
)
def test_resources_are_read_as_cores_and_bytes(resources, cpu, memory):
    spec = _spec({"a": []})
    spec["deploymentSpec"]["executors"]["exec-a"]["container"]["resources"] = resources
    container = build_graph(spec).tasks[0].container
    assert (container.cpu, container.memory) == (cpu, memory)


@pytest.mark.parametrize("bad", ["two", "1.5x"])
def test_bad_cpu_quantities_are_config_errors(bad):
    with pytest.raises(ConfigError, match="CPU limit"):
        parse_cpu(bad)


@pytest.mark.parametrize(("text", "expected"), [("1000", 1000), ("1K", 1000), ("1Ki", 1024), ("1.5G", 1.5e9)])
def test_memory_quantities(text, expected):
    assert parse_memory(text) == expected


def test_spec_text_may_be_json_yaml_or_a_pipeline_job_body():
    spec = _spec({"a": []})
    assert parse_spec_text(json.dumps(spec)) == spec
    import yaml

    assert parse_spec_text(yaml.safe_dump(spec)) == spec
    job = {"pipelineSpec": spec, "runtimeConfig": {"parameterValues": {"x": 1}}}
    assert split_job(job) == (spec, {"x": 1})
    with pytest.raises(ConfigError, match="expected a PipelineSpec mapping"):
        parse_spec_text("- a list")


@pytest.mark.parametrize(
    ("from_nodes", "to_nodes", "kept"),
    [
        ([], [], ["a", "x", "y", "z"]),
        (["node_x"], [], ["x", "z"]),
        ([], ["node_x"], ["a", "x"]),
        (["node_x"], ["node_z"], ["x", "z"]),
        (["node_a"], ["node_y"], ["a", "y"]),
    ],
)
def test_node_selection_keeps_descendants_and_ancestors(from_nodes, to_nodes, kept):
    graph = select_tasks(
        build_graph(_spec({"a": [], "x": ["a"], "y": ["a"], "z": ["x", "y"]})), from_nodes, to_nodes
    )
    assert [t.name for t in graph.tasks] == kept
    assert all(set(t.depends_on) <= set(kept) for t in graph.tasks)


def test_selecting_an_unknown_node_names_the_known_ones():
    with pytest.raises(ConfigError, match=r"--from-nodes: no step runs node\(s\) \['nope'\].*node_a"):
        select_tasks(build_graph(_spec({"a": []})), ["nope"])
