"""Run a vertexai.yml document through the compile, in-process, and check what comes out.

Two ways in, both ending in the CLI's contract (a ``KvcError`` is the only exception a user may cause):

- :func:`cli_outcome` writes the document into a real Kedro project and runs ``kedro-vertex-ci compile``
  through click in this process: Kedro's own config loader, our pre-checks, the compile, the one handler.
- :func:`core_outcome` runs the same document through the pure half of that path (``yaml_guard``,
  ``parse_config``, ``build_plan``, ``emit``) against the project's real graphs, about ten times faster;
  the fuzzer sends most cases this way and a share through :func:`cli_outcome`.

:func:`check_spec` is the oracle for accepted configs: kfp's own protobuf messages must parse the spec
strictly, kfp must load it as a component, and every step's argv must parse with the step runtime's parser.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner

from kedro_vertex_ci.errors import ConfigError, KvcError
from kedro_vertex_ci.model import PipelineGraph
from kedro_vertex_ci.testing.projectgen import make_project

NODES = ["preprocess_data", "train_model", "evaluate", "notify_team"]
TAGS = {"train_model": ["training", "gpu"], "evaluate": ["training"]}
PIPELINES = {"notify": ["notify_team"], "train": ["train_model", "evaluate"]}
VALID = """\
project_id: my-gcp-project
region: europe-west1
run_config:
  image: europe-docker.pkg.dev/my-gcp-project/repo/demo:1.0
  root: my-bucket/pipelines
  experiment_name: demo
  description: "Line one\\nline two"
  service_account: runner@my-gcp-project.iam.gserviceaccount.com
  labels:
    team: ds
  caching: true
  network:
    vpc: projects/123/global/networks/main
    host_aliases:
      - ip: 10.0.0.1
        hostnames: [mlflow.internal]
  resources:
    __default__:
      cpu: 500m
      memory: 1024Mi
    training:
      cpu: 4
      memory: 16Gi
      retries: 2
      retry_backoff: 30s
      timeout: 3600
    train_model:
      gpu: 1
      accelerator: NVIDIA_TESLA_T4
  node_selectors:
    gpu:
      cloud.google.com/gke-accelerator: NVIDIA_TESLA_T4
  on_exit_pipeline: notify
  dynamic_config_providers:
    - cls: kedro_vertex_ci.dynamic_config.GoogleOAuthCredentialsProvider
      params:
        client_id: abc
  schedules:
    default_schedule:
      cron_expression: "0 3 * * *"
      timezone: Europe/Warsaw
      start_time: none
      end_time: none
      max_run_count: none
build:
  image: europe-docker.pkg.dev/my-gcp-project/repo/demo
  region: europe-west1
  timeout: 1200
  machine_type: E2_HIGHCPU_8
endpoints:
  vertex: http://127.0.0.1:9999
"""


@dataclass(frozen=True)
class Outcome:
    """What a user sees: the exit code, the message (errors), the problems and, if accepted, the spec."""

    code: int
    message: str = ""
    problems: tuple[Any, ...] = ()
    spec: dict[str, Any] | None = None


def make_fuzz_project(root: Path) -> Path:
    return make_project(
        root, "fuzzproj", "chain", len(NODES), node_names=NODES, tags=TAGS, pipelines=PIPELINES, vertexai=VALID
    )


def project_graphs(project: Path) -> dict[str, PipelineGraph]:
    from kedro_vertex_ci.kedro_io import open_project
    from kedro_vertex_ci.runtime.resolvers import deferred_run_values

    with open_project(project, None) as kedro_project, deferred_run_values():
        return {name: kedro_project.graph(name) for name in kedro_project.pipeline_names()}


def config_path(project: Path) -> Path:
    return project / "conf" / "base" / "vertexai.yml"


def cli_outcome(project: Path, data: bytes, output: Path) -> Outcome:
    """``kedro-vertex-ci compile`` in-process; any exception but SystemExit propagates (a traceback)."""
    from kedro_vertex_ci.cli import cli

    config_path(project).write_bytes(data)
    output.unlink(missing_ok=True)
    result = CliRunner().invoke(
        cli, ["--project", str(project), "compile", "-o", str(output)], catch_exceptions=True
    )
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    spec = json.loads(output.read_bytes()) if result.exit_code == 0 else None
    return Outcome(code=result.exit_code, message=result.output, spec=spec)


def core_outcome(path: Path, data: bytes, graphs: dict[str, PipelineGraph]) -> Outcome:
    """The compile's config half on ``data`` as if it were ``path``, with the CLI handler's contract."""
    try:
        return Outcome(code=0, spec=_compile_document(path, data, graphs))
    except ConfigError as err:
        return Outcome(code=err.exit_code, message=str(err), problems=tuple(err.problems))
    except KvcError as err:
        return Outcome(code=err.exit_code, message=str(err))


def _compile_document(path: Path, data: bytes, graphs: dict[str, PipelineGraph]) -> dict[str, Any]:
    from kedro_vertex_ci.compiler import _located, build_plan
    from kedro_vertex_ci.config import ConfigSource, parse_config
    from kedro_vertex_ci.errors import Problem
    from kedro_vertex_ci.spec import emit, spec_to_dict
    from kedro_vertex_ci.yaml_guard import read_document

    document = read_document(str(path), data)
    raw = yaml.load(document.text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    sources = [ConfigSource(path, document.text)]
    parsed = parse_config(raw if raw is not None else {}, sources)
    on_exit = parsed.config.run_config.on_exit_pipeline
    if on_exit is not None and on_exit not in graphs:
        raise ConfigError([Problem(str(path), "run_config.on_exit_pipeline", "no such pipeline")])
    plan = _located(
        sources,
        build_plan,
        graph=graphs["__default__"],
        config=parsed.config,
        project_name="fuzzproj",
        env=None,
        on_exit_graph=graphs[on_exit] if on_exit else None,
    )
    return spec_to_dict(emit(plan))


def check_spec(spec: dict[str, Any], *, with_kfp_loader: bool = True) -> None:
    """kfp's own parsers accept the spec, and the step runtime's parser accepts every step's argv.

    ``with_kfp_loader=False`` skips kfp's component loader (50 ms a spec), keeping the strict protobuf parse.
    """
    from google.protobuf import json_format
    from kfp import components
    from kfp.pipeline_spec import pipeline_spec_pb2

    json_format.ParseDict(spec, pipeline_spec_pb2.PipelineSpec(), ignore_unknown_fields=False)
    deployment = json_format.ParseDict(
        spec["deploymentSpec"], pipeline_spec_pb2.PipelineDeploymentConfig(), ignore_unknown_fields=False
    )
    if with_kfp_loader:
        from kedro_vertex_ci.spec import to_json_bytes

        components.load_component_from_text(to_json_bytes(spec).decode("utf-8"))  # the bytes compile writes
    defaults = {
        name: definition.get("defaultValue")
        for name, definition in spec["root"].get("inputDefinitions", {}).get("parameters", {}).items()
    }
    for name, executor in deployment.executors.items():
        check_step_args(name, list(executor.container.args), executor, defaults)


_PLACEHOLDER = re.compile(r"\{\{\$\.inputs\.parameters\['([^']+)'\]\}\}")


def check_step_args(name: str, args: list[str], executor: Any, defaults: dict[str, Any]) -> None:
    """Parse a step's argv as the step runtime will, with each input placeholder replaced by its default."""
    from kedro_vertex_ci import argv

    def fill(arg: str) -> str:
        return _PLACEHOLDER.sub(lambda m: json.dumps(defaults.get(m.group(1), "x")), arg)

    args = [fill(a) for a in args]
    if not args or args[0] != "--pipeline":  # a CustomJob launcher: our argv rides in its payload
        args = _custom_job_args(args)
        if args is None:
            return
    invocation = argv.parse_step_args(args)
    if invocation.timeout is not None:
        assert 0 < invocation.timeout < 2**31, f"{name}: timeout {invocation.timeout} overflows signal.alarm"
    resources = executor.container.resources
    if resources.cpu_limit:
        assert 0 < resources.cpu_limit <= 96, f"{name}: cpu {resources.cpu_limit}"
    if resources.memory_limit:
        assert 0 < resources.memory_limit <= 624, f"{name}: memory {resources.memory_limit}"


def _custom_job_args(args: list[str]) -> list[str] | None:
    """The step argv inside a CustomJob launcher's payload, if there is one."""
    for i, arg in enumerate(args):
        if arg == "--payload" and i + 1 < len(args):
            try:
                payload = json.loads(args[i + 1])
            except json.JSONDecodeError:
                return None
            pools = payload.get("job_spec", {}).get("worker_pool_specs", [])
            if pools:
                return list(pools[0].get("container_spec", {}).get("args", []))
    return None
