"""Placeholders and parameter values rendered as Vertex renders them."""

from __future__ import annotations

import json

import pytest

from kedro_vertex_ci.errors import ConfigError
from kedro_vertex_ci.local.placeholders import (
    RunContext,
    check_renderable,
    parse_override,
    render_command,
    render_env,
    render_value,
    resolve_params,
)
from kedro_vertex_ci.local.specgraph import Container, PipelineInput, Task, TaskGraph, build_graph
from tests.local import specs


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("raw 'text' with \"quotes\"", "raw 'text' with \"quotes\""),
        ("", ""),
        (3.0, "3"),  # every spec number is a double; integral ones print as integers
        (3, "3"),
        (0.25, "0.25"),
        (1e-7, "0.0000001"),  # plain decimal, never exponent notation
        (-2.5, "-2.5"),
        (True, "true"),
        (False, "false"),
        ([1.0, 2.0, "x"], '[1,2,"x"]'),
        ({"b": 1.0, "a": {"c": [0.5, True]}}, '{"a":{"c":[0.5,true]},"b":1}'),
        ({"name": "ünïcode"}, '{"name":"ünïcode"}'),
    ],
)
def test_values_render_like_vertex(value, text):
    assert render_value(value) == text


@pytest.mark.parametrize(
    ("kind", "text", "value"),
    [
        ("STRING", "a=b c", "a=b c"),
        ("NUMBER_INTEGER", "42", 42),
        ("NUMBER_DOUBLE", "0.5", 0.5),
        ("BOOLEAN", "True", True),
        ("BOOLEAN", "false", False),
        ("LIST", "[1, 2]", [1, 2]),
        ("STRUCT", '{"a": 1}', {"a": 1}),
    ],
)
def test_overrides_are_typed_by_the_input_they_override(kind, text, value):
    assert parse_override(text, PipelineInput("x", kind)) == value


@pytest.mark.parametrize(
    ("kind", "text"),
    [
        ("NUMBER_INTEGER", "4.5"),
        ("NUMBER_DOUBLE", "fast"),
        ("BOOLEAN", "yes"),
        ("LIST", "{}"),
        ("STRUCT", "[1"),
    ],
)
def test_bad_overrides_name_the_input_and_the_type(kind, text):
    with pytest.raises(ConfigError, match=f"--param x: .* not a valid {kind}|--param x: .* is not a JSON"):
        parse_override(text, PipelineInput("x", kind))


INPUTS = {
    "model_options": PipelineInput("model_options", "STRUCT", {"test_size": 0.2, "inner": {"k": 1}}, True),
    "seed": PipelineInput("seed", "NUMBER_INTEGER", 42.0, True),
    "label": PipelineInput("label", "STRING", "x", True),
}


@pytest.mark.parametrize(
    ("overrides", "values", "expected"),
    [
        ({}, {}, {"seed": 42.0, "label": "x"}),
        ({"seed": "7"}, {}, {"seed": 7}),
        ({}, {"seed": 9}, {"seed": 9}),  # a PipelineJob's parameterValues
        ({"seed": "7"}, {"seed": 9}, {"seed": 7}),  # --param wins
        ({"model_options.test_size": "0.3"}, {}, {"model_options": {"test_size": 0.3, "inner": {"k": 1}}}),
        ({"model_options.inner.k": "2"}, {}, {"model_options": {"test_size": 0.2, "inner": {"k": 2}}}),
        ({"model-options.test_size": "0.1"}, {}, {"model_options": {"test_size": 0.1, "inner": {"k": 1}}}),
        ({"kedro.label": "y"}, {}, {"label": "y"}),
    ],
)
def test_params_resolve_defaults_then_job_values_then_overrides(overrides, values, expected):
    aliases = {"model-options": "model_options", "kedro.label": "label"}
    params = resolve_params(INPUTS, overrides, values, aliases)
    assert {k: params[k] for k in expected} == expected


def test_unknown_override_lists_the_inputs():
    with pytest.raises(ConfigError, match=r"--param nope: the pipeline has no such input; inputs: \['label'"):
        resolve_params(INPUTS, {"nope": "1"})


def test_an_input_without_default_must_be_given():
    inputs = {"need": PipelineInput("need", "STRING")}
    with pytest.raises(ConfigError, match="have no default"):
        resolve_params(inputs)
    assert resolve_params(inputs, {"need": "v"}) == {"need": "v"}


def test_every_placeholder_of_a_kfp_compiled_spec_is_substituted():
    graph = build_graph(specs.load(specs.placeholder_spec()))
    params = resolve_params(graph.inputs, {"count": "5"})
    ctx = RunContext("placeholders-20260101000000", "run-1", "/tmp/root", params, "projects/p/jobs/j")
    record, on_exit = graph.tasks
    command, args = render_command(record, ctx)
    assert command[:2] == ["python", "-c"]
    assert args == [
        "/tmp/root",
        "run-1",
        "record",
        "--job-name",
        "placeholders-20260101000000",
        "--run-id",
        "run-1",
        "--root",
        "/tmp/root",
        "--text",
        'it\'s a "quoted" value',
        "--count",
        "5",
        "--ratio",
        "0.25",
        "--flag",
        "true",
        "--items",
        '[1,2,"x"]',
        "--options",
        '{"depth":4,"nested":{"on":false},"rate":0.5}',
        "--node",
        "first_node",
    ]
    assert render_env(record, ctx) == {"STEP_ENV": "from-spec"}
    _, exit_args = render_command(on_exit, ctx, {"exit-handler-1": "FAILED"})
    status = json.loads(exit_args[-1])
    assert status["state"] == "FAILED" and status["pipelineTaskName"] == "exit-handler-1"
    assert status["pipelineJobResourceName"] == "projects/p/jobs/j"
    assert (
        json.loads(render_command(on_exit, ctx, {"exit-handler-1": "SUCCEEDED"})[1][-1])["state"]
        == "SUCCEEDED"
    )


@pytest.mark.parametrize(
    ("arg", "message"),
    [
        ("{{$.inputs.parameters['ghost']}}", "input 'ghost', which is not wired"),
        ("{{$.outputs.parameters['x'].output_file}}", "does not know"),
        ("--x={{$.pipeline_job_no_such_field}}", "does not know"),
    ],
)
def test_unknown_placeholders_fail_before_anything_runs(arg, message):
    task = Task("t", Container("img", ("run",), (arg,)))
    graph = TaskGraph("p", (task,), {})
    with pytest.raises(ConfigError, match=message):
        check_renderable(graph, RunContext("j", "r", "/root"))


def test_the_executor_input_names_the_tasks_output_file():
    task = Task("t", Container("img", (), ("{{$}}",)))
    rendered = render_command(task, RunContext("j", "r", "/root", outputs_dir="/runs/r/outputs"))[1][0]
    assert json.loads(rendered) == {"outputs": {"outputFile": "/runs/r/outputs/t/executor_output.json"}}


def test_placeholders_inside_longer_args_are_substituted():
    task = Task("t", Container("img", (), ("--root={{$.pipeline_root}}/x", "{{$.pipeline_task_name}}")))
    assert render_command(task, RunContext("j", "r", "/root"))[1] == ["--root=/root/x", "t"]
