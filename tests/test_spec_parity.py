"""Our PipelineSpec equals what kfp's own compiler emits for the same pipeline, field by field.

Each case is a :class:`Plan`; ``kfp_reference`` writes the same pipeline with ``kfp.dsl`` container components
and compiles it with ``kfp.compiler``. Nothing is ignored: ``sdkVersion`` matches too, since both name the
installed kfp.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kedro_vertex_ci import spec
from kedro_vertex_ci.model import ParamType, PipelineParam, Plan, Resources, Step
from tests.kfp_reference import compile_with_kfp

IMAGE = "europe-docker.pkg.dev/proj/repo/app@sha256:" + "0" * 64

ALL_TYPES = (
    PipelineParam("model_name", "model_name", ParamType.STRING, 'it\'s a "model" with spaces'),
    PipelineParam("epochs", "epochs", ParamType.NUMBER_INTEGER, 10),
    PipelineParam("learning_rate", "learning_rate", ParamType.NUMBER_DOUBLE, 0.01),
    PipelineParam("shuffle", "shuffle", ParamType.BOOLEAN, False),
    PipelineParam("features", "features", ParamType.LIST, ["a", 1, 2.5, {"nested": [True]}]),
    PipelineParam("model_options", "model_options", ParamType.STRUCT, {"depth": 3, "tags": ["x"], "m": {}}),
    PipelineParam("notes", "notes", ParamType.STRING, None),
)


def _plan(steps: tuple[Step, ...], **overrides: Any) -> Plan:
    values: dict[str, Any] = {
        "pipeline_name": "kedro-pipeline",
        "kedro_pipeline": "__default__",
        "image": IMAGE,
        "env": "base",
        "steps": steps,
        "resources": {},
        "params": (),
    }
    values.update(overrides)
    return Plan(**values)


def _chain(*names: str) -> tuple[Step, ...]:
    return tuple(
        Step(name, (name.replace("-", "_"),), depends_on=(names[i - 1],) if i else ())
        for i, name in enumerate(names)
    )


FAN = (
    Step("split", ("split_data",), writes=("train", "test")),
    Step("train-a", ("train_a",), depends_on=("split",), reads=("train",), writes=("model_a",)),
    Step("train-b", ("train_b", "tune_b"), depends_on=("split",), reads=("train",), writes=("model_b",)),
    Step(
        "evaluate",
        ("evaluate",),
        depends_on=("train-b", "train-a", "split"),
        reads=("model_a", "model_b", "test"),
    ),
)

CASES: dict[str, Plan] = {
    "single-step": _plan((Step("only-node", ("only_node",)),)),
    "chain-of-3": _plan(_chain("ingest", "clean-2", "report"), description="Three steps in a row."),
    "fan-out-fan-in": _plan(FAN),
    "params-of-every-type": _plan(
        (
            Step("uses-all", ("n1",), parameters=tuple(p.key for p in ALL_TYPES)),
            Step("uses-some", ("n2",), depends_on=("uses-all",), parameters=("epochs", "features")),
            Step("uses-none", ("n3",), depends_on=("uses-some",)),
        ),
        params=ALL_TYPES,
    ),
    "resources-and-retries": _plan(
        _chain("cpu-mem", "gpu", "tpu", "retry-default", "retry-backoff", "millicpu"),
        resources={
            "cpu-mem": Resources(cpu="4", memory="16G"),
            "gpu": Resources(cpu="8", memory="30Gi", accelerator_type="NVIDIA_TESLA_T4", accelerator_count=2),
            "tpu": Resources(accelerator_type="TPU_V3"),
            "retry-default": Resources(retries=3),
            "retry-backoff": Resources(retries=1, retry_backoff="5m", timeout_seconds=600),
            "millicpu": Resources(cpu="500m", memory="512Mi"),
        },
    ),
    "caching-overrides": _plan(
        _chain("cached", "not-cached", "default"),
        resources={"cached": Resources(caching=True), "not-cached": Resources(caching=False)},
    ),
    "caching-off-by-default": _plan(
        _chain("a", "b"), caching=False, resources={"b": Resources(caching=True, memory="1Ki")}
    ),
    "extra-env": _plan(_chain("first", "second"), extra_env={"ZED": "last", "ALPHA": "a b 'c'", "MID": ""}),
    "on-exit": _plan(
        FAN,
        on_exit=Step("notify", ("send_notification",), parameters=("model_name",)),
        params=ALL_TYPES[:2],
        description="With an exit handler.",
    ),
    "per-step-images": _plan(
        _chain("prepare", "train", "report"),
        resources={"train": Resources(image="europe-docker.pkg.dev/proj/repo/gpu@sha256:" + "1" * 64,
                                      accelerator_type="NVIDIA_TESLA_T4", accelerator_count=1),
                   "report": Resources(image="python:3.12-slim")},
    ),
    "artifacts": _plan(
        FAN,
        artifacts={"split": ("test", "train"), "evaluate": ("report@pandas", "metrics")},
        params=ALL_TYPES[1:2],
    ),
    "run-times": _plan(
        (Step("daily", ("daily_load",), parameters=("epochs",)),),
        params=ALL_TYPES[1:2],
        on_exit=Step("notify", ("send_notification",)),
        run_times=True,
    ),
    "experiment": _plan(
        (Step("daily", ("daily_load",), parameters=("epochs",)),),
        params=ALL_TYPES[1:2],
        on_exit=Step("notify", ("send_notification",)),
        run_times=True,
        experiment="Nightly Forecasts",
        experiment_description='it\'s "quoted", with spaces',
    ),
    "on-exit-everything": _plan(
        (
            Step("prepare", ("prepare",), parameters=("epochs",)),
            Step("fit", ("fit",), depends_on=("prepare",), parameters=("learning_rate", "features")),
        ),
        params=ALL_TYPES,
        on_exit=Step("cleanup", ("cleanup",)),
        resources={
            "fit": Resources(cpu="2", memory="8G", accelerator_type="NVIDIA_L4", retries=2, caching=False),
            "cleanup": Resources(cpu="1", retries=1, retry_backoff="30s", caching=False),
        },
        extra_env={"KEDRO_LOGGING_CONFIG": "conf/logging.yml"},
        caching=False,
    ),
}


def _differences(ours: Any, theirs: Any, path: str = "$") -> list[str]:
    """Every path where the two JSON values differ (so a failure names the field, not just 'not equal')."""
    if isinstance(ours, dict) and isinstance(theirs, dict):
        found: list[str] = []
        for key in sorted(set(ours) | set(theirs)):
            if key not in ours:
                found.append(f"{path}.{key}: missing in ours (kfp: {theirs[key]!r})")
            elif key not in theirs:
                found.append(f"{path}.{key}: not in kfp's (ours: {ours[key]!r})")
            else:
                found += _differences(ours[key], theirs[key], f"{path}.{key}")
        return found
    if isinstance(ours, list) and isinstance(theirs, list) and len(ours) == len(theirs):
        return [
            d
            for i, (a, b) in enumerate(zip(ours, theirs, strict=True))
            for d in _differences(a, b, f"{path}[{i}]")
        ]
    if ours != theirs or type(ours) is not type(theirs):
        return [f"{path}: ours {ours!r} != kfp's {theirs!r}"]
    return []


@pytest.mark.parametrize("case", sorted(CASES))
def test_spec_equals_kfp_compiler_output(case: str, tmp_path: Path) -> None:
    plan = CASES[case]
    ours = json.loads(spec.to_json_bytes(spec.emit(plan)))
    theirs = compile_with_kfp(plan, tmp_path)
    assert _differences(ours, theirs) == []
    assert ours == theirs


@pytest.mark.parametrize("case", sorted(CASES))
def test_both_specs_parse_strictly(case: str, tmp_path: Path) -> None:
    plan = CASES[case]
    ours = spec.to_json_bytes(spec.emit(plan))
    parsed = spec.parse_spec(ours)
    assert spec.to_json_bytes(parsed) == ours
    theirs = compile_with_kfp(plan, tmp_path)
    assert spec.spec_to_dict(spec.parse_spec(theirs)) == theirs


def test_every_case_exercises_what_its_name_says() -> None:
    """Guards the table: the cases really contain exit handlers, resources, all parameter types…"""
    emitted = {name: json.loads(spec.to_json_bytes(spec.emit(plan))) for name, plan in CASES.items()}
    types = {
        d["parameterType"]
        for d in emitted["params-of-every-type"]["root"]["inputDefinitions"]["parameters"].values()
    }
    assert types == {t.value for t in ParamType}
    gpu = emitted["resources-and-retries"]["deploymentSpec"]["executors"]["exec-gpu"]["container"][
        "resources"
    ]
    assert gpu["accelerator"]["resourceCount"] == "2"
    assert "exit-handler-1" in emitted["on-exit"]["root"]["dag"]["tasks"]
    split = emitted["artifacts"]["components"]["comp-split"]["outputDefinitions"]["artifacts"]
    assert split["train"]["artifactType"] == {"schemaTitle": "system.Dataset", "schemaVersion": "0.0.1"}
    daily = emitted["run-times"]["deploymentSpec"]["executors"]["exec-daily"]["container"]["args"]
    assert daily[daily.index("--scheduled-time") + 1] == "{{$.pipeline_job_schedule_time_utc}}"
    for executor in ("exec-daily", "exec-notify"):  # the on-exit step too: a run that failed early still joins
        args = emitted["experiment"]["deploymentSpec"]["executors"][executor]["container"]["args"]
        assert args[args.index("--pipeline-job") + 1] == "{{$.pipeline_job_resource_name}}"
        assert args[args.index("--experiment") + 1] == "Nightly Forecasts"
    not_cached = emitted["caching-overrides"]["root"]["dag"]["tasks"]["not-cached"]
    assert not_cached["cachingOptions"] == {}
