"""Pure parts of the runtime: which datasets a step reads/writes, and the ``vertex`` resolver."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from kedro_vertex_ci.argv import parse_step_args
from kedro_vertex_ci.runtime import resolvers
from kedro_vertex_ci.runtime.session import Intermediate, StepSetupError, nest_params, plan_intermediates


def _inv(*extra: str):
    return parse_step_args(["--run-id", "r", "--root", "/tmp/root", "--node", "n", *extra])


@pytest.mark.parametrize(
    ("extra", "free_inputs", "consumed", "produced", "in_catalog", "expected"),
    [
        # explicit read and write
        (["--read", "a", "--write", "b"], {"a"}, {"a"}, {"b"}, set(), [Intermediate("a"), Intermediate("b")]),
        # a free memory input without --read is still supplied; params and catalog inputs are not
        ([], {"a", "params:n", "parameters", "raw"}, {"a"}, {"b"}, {"raw"}, [Intermediate("a")]),
        # written and consumed inside the step: kept in memory for the in-step consumer and written
        (
            ["--write", "m", "--write", "out"],
            set(),
            {"m"},
            {"m", "out"},
            set(),
            [Intermediate("m", keep_in_memory=True), Intermediate("out")],
        ),
        # repeated flags are deduplicated, order is kept
        (
            ["--read", "z", "--read", "a", "--read", "z"],
            {"z", "a"},
            {"z", "a"},
            set(),
            set(),
            [Intermediate("z"), Intermediate("a")],
        ),
    ],
)
def test_plan_intermediates(extra, free_inputs, consumed, produced, in_catalog, expected):
    planned = plan_intermediates(_inv(*extra), free_inputs, consumed, produced, in_catalog.__contains__)
    assert planned == expected


def test_a_write_that_no_node_produces_is_refused():
    with pytest.raises(StepSetupError, match="--write ghost: not an output"):
        plan_intermediates(_inv("--write", "ghost"), set(), set(), {"b"}, lambda name: False)


def test_vertex_resolver_reads_env_with_defaults(monkeypatch):
    resolvers.register()
    resolvers.register()  # idempotent
    monkeypatch.setenv("KEDRO_CONFIG_RUN_ID", "uuid-1")
    monkeypatch.setenv("KEDRO_CONFIG_MY_BUCKET", "gs://b")
    monkeypatch.delenv("KEDRO_CONFIG_COMMIT_ID", raising=False)
    monkeypatch.delenv("KEDRO_CONFIG_NOPE", raising=False)
    cfg = OmegaConf.create(
        {
            "run": "${vertex:run_id}",
            "bucket": "${vertex:my_bucket}",
            "commit": "${vertex:commit_id}",
            "fallback": "${vertex:nope,zzz}",
            "path": "data/${vertex:run_id}/x.csv",
        }
    )
    assert OmegaConf.to_container(cfg, resolve=True) == {
        "run": "uuid-1",
        "bucket": "gs://b",
        "commit": "dirty",
        "fallback": "zzz",
        "path": "data/uuid-1/x.csv",
    }
    with pytest.raises(Exception, match="KEDRO_CONFIG_NOPE is not set"):
        OmegaConf.to_container(OmegaConf.create({"x": "${vertex:nope}"}), resolve=True)


def test_step_environment_exports_run_values():
    assert resolvers.step_environment("u", "j", "SUCCEEDED", "gs://b") == {
        "KEDRO_CONFIG_RUN_ID": "u",
        "KEDRO_CONFIG_JOB_NAME": "j",
        "KEDRO_CONFIG_PIPELINE_STATUS": "SUCCEEDED",
        "KEDRO_CONFIG_PIPELINE_ERROR": "",
        "KEDRO_CONFIG_PIPELINE_ROOT": "gs://b",
    }


def test_resolvers_module_imports_no_heavy_libraries():
    import subprocess
    import sys

    code = (
        "import sys, kedro_vertex_ci.runtime.resolvers as r; "
        "heavy = [m for m in ('kedro', 'kfp', 'google.cloud.aiplatform', 'google.cloud.storage', 'gcsfs', 'pandas') if m in sys.modules]; "
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"seed": 1, "label": "x"}, {"seed": 1, "label": "x"}),
        ({"model.lr": 0.1, "model.depth": 3}, {"model": {"lr": 0.1, "depth": 3}}),
        ({"model": {"lr": 0.2}, "model.depth": 4}, {"model": {"lr": 0.2, "depth": 4}}),
        ({"a.b.c": [1, 2]}, {"a": {"b": {"c": [1, 2]}}}),
    ],
)
def test_dotted_parameter_keys_nest_like_kedro_run_params(params, expected):
    assert nest_params(params) == expected
