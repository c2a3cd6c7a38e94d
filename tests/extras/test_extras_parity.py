"""Host aliases and dynamic config providers in the spec exactly as kfp's own compiler writes the same steps
(main steps in the exit handler, the on-exit step, a CustomJob step): the argv items survive kfp untouched."""

from __future__ import annotations

import json
from pathlib import Path

from kedro_vertex_ci import spec
from kedro_vertex_ci.model import ConfigProvider, HostAlias, ParamType, PipelineParam, Plan, Resources, Step
from tests.kfp_reference import compile_with_kfp
from tests.test_spec_parity import _differences

PROVIDERS = (
    ConfigProvider("kedro_vertex_ci.dynamic_config.MLFlowGoogleIAMCredentialsProvider",
                   {"client_id": "1-x.apps.googleusercontent.com", "service_account": "sa@p.iam.gserviceaccount.com"}),
    ConfigProvider("my_project.providers.Tok", {"note": "braces {x} and 'quotes' \"too\"", "n": [1, {"a": None}]}),
)
ALIASES = (HostAlias("10.20.0.5", ("mlflow.internal", "tracking.internal")), HostAlias("fd00::9", ("db.internal",)))


def _plan() -> Plan:
    steps = (
        Step("prepare", ("prepare",), writes=("table",), parameters=("seed",)),
        Step("train", ("train",), depends_on=("prepare",), reads=("table",)),
    )
    return Plan(
        pipeline_name="extras",
        kedro_pipeline="__default__",
        image="europe-docker.pkg.dev/p/r/img:1",
        env="base",
        steps=steps,
        resources={"train": Resources(machine_type="n1-highmem-8", spot=True), "on-exit-notify": Resources()},
        params=(PipelineParam("seed", "seed", ParamType.NUMBER_INTEGER, 42),),
        on_exit=Step("on-exit-notify", ("notify",)),
        on_exit_pipeline=None,  # the kfp reference writes --pipeline from kedro_pipeline for every step
        host_aliases=ALIASES,
        config_providers=PROVIDERS,
    )


def test_extras_spec_equals_kfp_compiler_output(tmp_path: Path) -> None:
    plan = _plan()
    ours = json.loads(spec.to_json_bytes(spec.emit(plan)))
    theirs = compile_with_kfp(plan, tmp_path)
    assert _differences(ours, theirs) == []
    text = json.dumps(ours)
    for executor in ("exec-prepare", "exec-on-exit-notify"):
        args = ours["deploymentSpec"]["executors"][executor]["container"]["args"]
        assert [args[i + 1] for i, a in enumerate(args) if a == "--host-alias"] == [
            "10.20.0.5=mlflow.internal,tracking.internal", "fd00::9=db.internal"]
        providers = json.loads(args[args.index("--dynamic-config") + 1])
        assert [p["cls"] for p in providers] == [p.cls for p in PROVIDERS]
        assert providers[1]["params"]["note"] == "braces {x} and 'quotes' \"too\""
    assert text.count("--dynamic-config") == 3  # the CustomJob step carries them in its worker pool spec too
