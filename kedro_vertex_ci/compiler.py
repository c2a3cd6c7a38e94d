"""Kedro project → Vertex AI pipeline spec. Offline: no credentials, no network.

``compile_pipeline`` is the one orchestrator of the compile: it opens the project (``kedro_io``), validates
``vertexai.yml`` (``config``), groups nodes into steps (``grouping``), resolves per-step settings
(``settings``), types the runtime parameters (``params``) and emits the spec (``spec``). The steps in
between are pure functions of values, so the output is a pure function of the project and the options.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import PluginConfig, RunConfig, parse_config
from .errors import ConfigError, Problem
from .model import ConfigProvider, DatasetKind, HostAlias, PipelineGraph, Plan, Step, strip_transcoding
from .names import sanitize_name


@dataclass(frozen=True)
class Compiled:
    """A compiled pipeline: the spec (dict and exact bytes), the plan it came from and the config."""

    spec: dict[str, Any]
    spec_bytes: bytes
    plan: Plan
    config: PluginConfig
    project_name: str
    env: str | None
    warnings: tuple[str, ...] = field(default=())
    estimate: str | None = None  # one line: steps, estimated wall and billed time on Vertex (planning)
    graph: PipelineGraph | None = None  # the compiled Kedro pipeline (for plan's estimates)
    measured: Any = None  # durations.Measured: node durations from the project's run-local runs

    @property
    def step_count(self) -> int:
        return len(self.plan.steps) + (1 if self.plan.on_exit else 0)


DEFAULT_PIPELINE_SUFFIX = "pipeline"


def pipeline_display_name(run_config: RunConfig, project_name: str, pipeline: str) -> str:
    """The spec's pipeline name: the experiment (or project) name plus the Kedro pipeline's.

    Vertex ML Metadata keeps a pipeline's context and an experiment's in one id space, so the default pipeline
    of a project with an experiment cannot take the experiment's own name: it becomes ``<experiment>-pipeline``.
    """
    if run_config.experiment_name:
        suffix = DEFAULT_PIPELINE_SUFFIX if pipeline == "__default__" else pipeline
        return sanitize_name(f"{run_config.experiment_name}-{suffix}", max_length=128)
    name = project_name if pipeline == "__default__" else f"{project_name}-{pipeline}"
    return sanitize_name(name, max_length=128)


def _on_exit_step(graph: PipelineGraph, main: PipelineGraph, main_steps: tuple[Step, ...]) -> Step:
    """All nodes of the on-exit pipeline as one step that runs after everything else.

    It reads the main pipeline's intermediate datasets it needs from the pipeline root (grouping was told
    about the on-exit nodes, so the producing steps write them).
    """
    from .params import used_parameter_keys

    inputs = [i for n in graph.nodes for i in n.inputs]
    produced = {strip_transcoding(o) for n in main.nodes for o in n.outputs}
    own = {strip_transcoding(o) for n in graph.nodes for o in n.outputs}
    reads = sorted(
        i
        for i in set(inputs)
        if strip_transcoding(i) in produced
        and strip_transcoding(i) not in own
        and main.kind(i) is DatasetKind.INTERMEDIATE
    )
    taken = {s.name for s in main_steps}
    name = sanitize_name(f"on-exit-{graph.name}", max_length=60)
    while name in taken:
        name += "-x"
    return Step(
        name=name,
        nodes=tuple(n.name for n in graph.nodes),
        reads=tuple(reads),
        tags=frozenset(t for n in graph.nodes for t in n.tags),
        parameters=tuple(sorted(used_parameter_keys(inputs, graph.parameters))),
    )


def _with_on_exit_nodes(graph: PipelineGraph, on_exit_graph: PipelineGraph | None) -> PipelineGraph:
    """The main graph plus the on-exit nodes, so grouping knows which datasets they read."""
    if on_exit_graph is None:
        return graph
    main_names = {n.name for n in graph.nodes}
    extra = tuple(n for n in on_exit_graph.nodes if n.name not in main_names)
    kinds = {**on_exit_graph.dataset_kinds, **graph.dataset_kinds}
    return PipelineGraph(name=graph.name, nodes=graph.nodes + extra, dataset_kinds=kinds, parameters=graph.parameters)


def build_plan(
    *,
    graph: PipelineGraph,
    config: PluginConfig,
    project_name: str,
    env: str | None,
    image: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    on_exit_graph: PipelineGraph | None = None,
    mlflow: bool = False,
    run_times: bool = False,
    durations: Mapping[str, float] | None = None,
) -> Plan:
    """The pure middle of the compile: graph + config + options → :class:`Plan`."""
    from .grouping import group_steps
    from .params import apply_overrides, pipeline_params
    from .settings import check_step_images, node_placements, resolve_resources

    run_config = config.run_config
    _check_overrides_of_run_values(graph.parameters, overrides or {})
    parameters = apply_overrides(graph.parameters, overrides or {})
    graph = dataclasses.replace(graph, parameters=parameters)
    combined = _with_on_exit_nodes(graph, on_exit_graph)
    on_exit_nodes = frozenset(n.name for n in combined.nodes[len(graph.nodes) :])
    auto = run_config.grouping.cls == "auto"
    steps = group_steps(
        combined,
        run_config.grouping.cls,
        run_config.grouping.params,
        on_exit_nodes=on_exit_nodes,
        durations=durations if auto else None,
        placements=node_placements(run_config, graph.nodes) if auto else None,
    )
    on_exit = _on_exit_step(on_exit_graph, graph, steps) if on_exit_graph is not None else None
    steps, on_exit = _without_run_value_params(steps, on_exit, parameters)
    steps, on_exit = _with_runtime_params(steps, on_exit, graph)
    all_steps = (*steps, on_exit) if on_exit else steps
    check_step_images(run_config, all_steps, {n.name: n.tags for n in combined.nodes})
    used = {key for step in all_steps for key in step.parameters}
    resources = {step.name: resolve_resources(run_config, step) for step in all_steps}
    return Plan(
        pipeline_name=pipeline_display_name(run_config, project_name, graph.name),
        kedro_pipeline=graph.name,
        image=image or run_config.image,
        env=env or "",
        steps=steps,
        resources=resources,
        params=pipeline_params(parameters, used),
        description=run_config.description or "",
        caching=run_config.caching,
        on_exit=on_exit,
        on_exit_pipeline=on_exit_graph.name if on_exit_graph is not None else None,
        mlflow=mlflow,
        extra_env=_mlflow_env(run_config) if mlflow else {},
        host_aliases=_host_aliases(run_config),
        config_providers=_config_providers(run_config),
        run_times=run_times,
        artifacts=_artifacts(graph, steps) if run_config.artifacts else {},
        experiment=run_config.experiment_name or None,
        experiment_description=(run_config.experiment_description or None) if run_config.experiment_name else None,
    )


def _artifacts(graph: PipelineGraph, steps: tuple[Step, ...]) -> dict[str, tuple[str, ...]]:
    """Per step (container or CustomJob), the catalog datasets its nodes write (transcoded names once)."""
    outputs = {node.name: node.outputs for node in graph.nodes}
    declared: dict[str, tuple[str, ...]] = {}
    for step in steps:
        written = {o.split("@", 1)[0]: o for n in step.nodes for o in outputs.get(n, ())
                   if graph.kind(o) is DatasetKind.CATALOG}
        if written:
            declared[step.name] = tuple(written[base] for base in sorted(written))
    return declared


def _run_value_keys(parameters: Mapping[str, Any]) -> set[str]:
    from .runtime.resolvers import is_deferred

    return {key for key, value in parameters.items() if is_deferred(value)}


def _check_overrides_of_run_values(parameters: Mapping[str, Any], overrides: Mapping[str, Any]) -> None:
    run_values = _run_value_keys(parameters)
    for dotted in overrides:
        if dotted.split(".", 1)[0] in run_values:
            raise ConfigError([Problem("--param", dotted, "holds a ${vertex:...} run value, resolved in each "
                                       "step; it cannot be set at compile time")])


def _without_run_value_params(
    steps: tuple[Step, ...], on_exit: Step | None, parameters: Mapping[str, Any]
) -> tuple[tuple[Step, ...], Step | None]:
    """Steps that leave parameters holding ``${vertex:...}`` to the project: no pipeline input for them.

    Frozen into the spec, such a parameter would carry its compile-time value (``local``, ``unknown``)
    into every run; left out, each step resolves it from its own run (run id, the final status…).
    """
    run_values = _run_value_keys(parameters)
    if not run_values:
        return steps, on_exit

    def strip(step: Step) -> Step:
        return dataclasses.replace(step, parameters=tuple(k for k in step.parameters if k not in run_values))

    return tuple(strip(s) for s in steps), strip(on_exit) if on_exit is not None else None


def _with_runtime_params(
    steps: tuple[Step, ...], on_exit: Step | None, graph: PipelineGraph
) -> tuple[tuple[Step, ...], Step | None]:
    """Every step receives the ``${runtime_params:…}`` keys (its catalog may use them too) and not the
    parameters built from them, which Kedro rebuilds in the step from the runtime values."""
    if not graph.runtime_keys:
        return steps, on_exit

    def with_keys(step: Step) -> Step:
        kept = [k for k in step.parameters if k not in graph.runtime_derived and k not in graph.runtime_keys]
        return dataclasses.replace(step, parameters=tuple(sorted({*kept, *graph.runtime_keys})))

    return tuple(with_keys(s) for s in steps), with_keys(on_exit) if on_exit is not None else None


_RUNTIME_MARKER = "<<runtime_params:{}>>"


def _apply_runtime_params(
    kedro_project: Any, overrides: Mapping[str, Any], runtime_only: Mapping[str, Any]
) -> tuple[tuple[str, ...], frozenset[str], dict[str, Any]]:
    """Resolve ``${runtime_params:…}`` as ``kedro run --params`` would, from ``--param`` values or defaults.

    Returns the top-level runtime keys, the parameters whose value comes from one (found by loading the
    parameters once with marker values), and the ``--param`` overrides that remain for ordinary parameters.
    """
    from .params import runtime_values
    from .runtime.session import nest_params

    refs = kedro_project.runtime_param_refs()
    if not refs:
        return (), frozenset(), dict(overrides)
    values = runtime_values(refs, {**runtime_only, **overrides})
    keys = {ref.key for ref in refs}
    top = tuple(sorted({key.split(".", 1)[0] for key in keys}))
    kedro_project.set_runtime_params(nest_params({k: _RUNTIME_MARKER.format(k) for k in keys}))
    marked = kedro_project.parameters()
    derived = frozenset(k for k, v in marked.items() if k not in top and "<<runtime_params:" in repr(v))
    kedro_project.set_runtime_params(nest_params(values))
    return top, derived, {k: v for k, v in overrides.items() if k not in keys}


_HOSTNAME_RE = re.compile(r"^[A-Za-z0-9_]([A-Za-z0-9_.-]{0,252})$")


def _host_aliases(run_config: RunConfig) -> tuple[HostAlias, ...]:
    """``network.host_aliases`` as plan values; hostnames that could not be a hosts-file name are rejected."""
    aliases = []
    for i, alias in enumerate(run_config.network.host_aliases):
        for name in alias.hostnames:
            if not _HOSTNAME_RE.match(name):
                raise ConfigError(
                    [Problem("vertexai.yml", f"run_config.network.host_aliases.{i}.hostnames",
                             f"{name!r} is not a hostname (letters, digits, '-', '.', '_')")]
                )
        if not alias.hostnames:
            raise ConfigError(
                [Problem("vertexai.yml", f"run_config.network.host_aliases.{i}.hostnames",
                         "give at least one hostname for " + alias.ip)]
            )
        aliases.append(HostAlias(ip=alias.ip, hostnames=tuple(alias.hostnames)))
    return tuple(aliases)


def _config_providers(run_config: RunConfig) -> tuple[ConfigProvider, ...]:
    """``dynamic_config_providers`` with kedro-vertexai's class paths mapped to ours."""
    from .dynamic_config import canonical_class_path

    return tuple(
        ConfigProvider(cls=canonical_class_path(p.cls), params=dict(p.params))
        for p in run_config.dynamic_config_providers
    )


def _mlflow_env(run_config: RunConfig) -> dict[str, str]:
    """``mlflow.request_header_provider_params`` for the MLflow header provider in every step (validated)."""
    from .mlflow_auth import PARAMS_KEY, check_params, provider_env

    params = run_config.mlflow.request_header_provider_params if run_config.mlflow else {}
    problem = check_params(params)
    if problem:
        raise ConfigError([Problem("vertexai.yml", PARAMS_KEY, problem)])
    return provider_env(params)


def _uses_kedro_mlflow(project: Path) -> bool:
    """Decided from the project (its mlflow.yml or declared dependency), not from what is importable here."""
    conf = project / "conf"
    if any(conf.glob("*/mlflow.y*ml")):
        return True
    for name in ("requirements.txt", "pyproject.toml", "src/requirements.txt"):
        path = project / name
        if path.is_file() and "kedro-mlflow" in path.read_text(encoding="utf-8", errors="replace").lower():
            return True
    return False


def compile_pipeline(
    project: Path,
    env: str | None = None,
    pipeline: str = "__default__",
    image: str | None = None,
    params: Mapping[str, Any] | None = None,
    runtime_params: Mapping[str, Any] | None = None,
    grouping: Any = None,
    use_measurements: bool = True,
) -> Compiled:
    """Compile ``pipeline`` of the Kedro project at ``project`` into a Vertex AI pipeline spec.

    ``params`` override parameters and set ``${runtime_params:…}`` keys; ``runtime_params`` only set such
    keys (``run-local --param`` overrides pipeline inputs, and its runtime keys must reach the compile).
    """
    from .durations import Measured, measured_durations
    from .kedro_io import open_project
    from .runtime.resolvers import RUN_TIME_NAMES, deferred_run_values
    from .settings import unmatched_keys
    from .spec import emit, spec_to_dict, to_json_bytes

    with open_project(project, env) as kedro_project:
        parsed = parse_config(kedro_project.config_raw(), kedro_project.config_sources())
        if grouping is not None:  # plan: the same pipeline under another grouping (``grouping``: GroupingConfig)
            config = parsed.config.model_copy(
                update={"run_config": parsed.config.run_config.model_copy(update={"grouping": grouping})}
            )
            parsed = dataclasses.replace(parsed, config=config)
        run_config = parsed.config.run_config
        measured = measured_durations(project) if use_measurements else Measured()
        runtime_keys, runtime_derived, params = _apply_runtime_params(kedro_project, params or {},
                                                                      runtime_params or {})
        with deferred_run_values() as asked:  # parameters holding ${vertex:...} stay for each step to resolve
            graph = kedro_project.graph(pipeline)
            on_exit_graph = None
            if run_config.on_exit_pipeline:
                on_exit_graph = _on_exit_graph(kedro_project, run_config.on_exit_pipeline)
        if not graph.nodes:
            raise ConfigError([Problem("--pipeline", pipeline, "this Kedro pipeline has no nodes, so there is "
                                       "nothing to compile: add nodes to it in the project's pipeline_registry.py "
                                       "(a new `kedro new` project starts empty), or choose another with -p")])
        graph = dataclasses.replace(graph, runtime_keys=runtime_keys, runtime_derived=runtime_derived)
        plan = _located(
            kedro_project.config_sources(),
            build_plan,
            graph=graph,
            config=parsed.config,
            project_name=kedro_project.info.project_name,
            env=kedro_project.requested_env,
            image=image,
            overrides=params,
            on_exit_graph=on_exit_graph,
            mlflow=_uses_kedro_mlflow(project),
            run_times=bool(asked & RUN_TIME_NAMES),
            durations=measured.seconds,
        )
        project_name = kedro_project.info.project_name
    warnings = list(parsed.warnings)
    all_steps = (*plan.steps, plan.on_exit) if plan.on_exit else plan.steps
    for key in unmatched_keys(run_config, all_steps):
        warnings.append(f"run_config.resources/node_selectors key '{key}' matches no node, tag or group")
    spec = spec_to_dict(emit(plan))
    return Compiled(
        spec=spec,
        spec_bytes=to_json_bytes(spec),
        plan=plan,
        config=parsed.config,
        project_name=project_name,
        env=env,
        warnings=tuple(warnings),
        estimate=_estimate_line(run_config, graph, plan, measured),
        graph=graph,
        measured=measured,
    )


def _estimate_line(run_config: RunConfig, graph: PipelineGraph, plan: Plan, measured: Any) -> str | None:
    """The compiled plan's estimate; None when the grouping params do not fit the model (auto reports that)."""
    from .planning import cost_params, durations_for, estimate_plan, graph_lower_bound, summary_line

    try:
        cost = cost_params(run_config.grouping.params)
    except ConfigError:
        return None
    from .settings import node_placements

    durations = durations_for(graph, measured.seconds, measured.run, cost)
    chosen = estimate_plan(plan, graph, durations, cost, run_config.grouping.cls)
    placements = node_placements(run_config, graph.nodes)
    return summary_line(chosen, graph_lower_bound(graph, durations, cost, placements), durations)


@dataclass(frozen=True)
class Comparison:
    """``plan``: the same pipeline grouped by identity, tag and auto, each estimated, plus the lower bound."""

    pipeline: str
    configured: str
    cost: Any  # costmodel.CostParams
    durations: Any  # planning.Durations
    lower: Any  # costmodel.LowerBound
    plans: tuple[Any, ...]  # planning.PlanEstimate, one per strategy


def compare_groupings(
    project: Path,
    env: str | None = None,
    pipeline: str = "__default__",
    cost_overrides: Mapping[str, Any] | None = None,
    use_measurements: bool = True,
) -> Comparison:
    """Group the pipeline with identity, tag and auto and estimate each (``auto`` with the same model)."""
    from .config import GroupingConfig
    from .costmodel import COST_PARAMS
    from .planning import cost_params, durations_for, estimate_plan, graph_lower_bound
    from .settings import node_placements

    configured = compile_pipeline(project, env, pipeline, use_measurements=use_measurements)
    grouping = configured.config.run_config.grouping
    overrides = {k: v for k, v in (cost_overrides or {}).items() if v is not None}
    cost = cost_params(grouping.params, overrides)
    graph, measured = configured.graph, configured.measured
    assert graph is not None
    durations = durations_for(graph, measured.seconds, measured.run, cost)
    kept = {k: v for k, v in grouping.params.items() if k == "tag_prefix"}
    auto = {**kept, **{k: v for k, v in {**grouping.params, **overrides}.items() if k in COST_PARAMS}}
    plans = []
    for strategy, params in (("identity", {}), ("tag", kept), ("auto", auto)):
        compiled = compile_pipeline(
            project, env, pipeline, grouping=GroupingConfig(cls=strategy, params=params),
            use_measurements=use_measurements,
        )
        plans.append(estimate_plan(compiled.plan, graph, durations, cost, strategy))
    return Comparison(
        pipeline=pipeline,
        configured=grouping.cls,
        cost=cost,
        durations=durations,
        lower=graph_lower_bound(graph, durations, cost, node_placements(configured.config.run_config, graph.nodes)),
        plans=tuple(plans),
    )


def _located(sources: Any, build: Any, **kwargs: Any) -> Plan:
    """Run ``build``; point config errors it raises at the file and line of the key they name."""
    from .config import locate_key

    try:
        return build(**kwargs)  # type: ignore[no-any-return]
    except ConfigError as err:
        problems = []
        for problem in err.problems:
            if problem.file == "vertexai.yml" and problem.key:
                file, line = locate_key(sources, problem.key)
                problem = dataclasses.replace(problem, file=file, line=line)
            problems.append(problem)
        raise type(err)(problems) from None


def _on_exit_graph(kedro_project: Any, name: str) -> PipelineGraph:
    """The on-exit pipeline's graph; an unknown name is reported at the file and line that set it."""
    from .config import locate_key

    try:
        return kedro_project.graph(name)  # type: ignore[no-any-return]
    except ConfigError as err:
        key = "run_config.on_exit_pipeline"
        file, line = locate_key(kedro_project.config_sources(), key)
        raise ConfigError([Problem(file, key, p.message, line) for p in err.problems]) from None
