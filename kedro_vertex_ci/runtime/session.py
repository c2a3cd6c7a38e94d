"""One Kedro start per step: bootstrap, one KedroSession, one run of exactly the step's nodes.

The step's intermediate datasets are put into the catalog by a hook registered on this session only
(``before_pipeline_run`` sees the filtered pipeline and the finished catalog), so the user's catalog.yml
and settings.py stay untouched and the user's own hooks (MLflow, …) still run around the same run.

Which datasets become :class:`IntermediateDataset`:

- every ``--read``, and every other free input of the step that the catalog cannot provide (absent, or a
  MemoryDataset, which is empty in a fresh process) — this is what makes a plain ``kedro run --nodes X``
  fail on Kedro 1.x and what the runtime supplies from the pipeline root;
- every ``--write``; when a node of the same step also consumes it, the dataset keeps the object in memory
  for that consumer and still writes the file for later steps.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kedro.framework.hooks import hook_impl

from ..argv import StepInvocation
from ..kedro_private import block_plugin_hooks, register_session_hooks


@dataclass(frozen=True)
class Intermediate:
    """One dataset the step reads from or writes to the pipeline root."""

    name: str
    keep_in_memory: bool = False


class StepSetupError(Exception):
    """The step cannot start: its arguments do not match the project (reported as a one-line error)."""


def plan_intermediates(
    inv: StepInvocation,
    free_inputs: Iterable[str],
    consumed: Iterable[str],
    produced: Iterable[str],
    provided_by_catalog: Callable[[str], bool],
) -> list[Intermediate]:
    """Decide the step's intermediate datasets from the filtered pipeline's shape (pure)."""
    produced = set(produced)
    missing = [name for name in inv.writes if name not in produced]
    if missing:
        raise StepSetupError(f"--write {', '.join(missing)}: not an output of the step's nodes")
    consumed = set(consumed)
    reads = list(dict.fromkeys(inv.reads))
    for name in sorted(set(free_inputs)):
        if name not in reads and not _is_parameter(name) and not provided_by_catalog(name):
            reads.append(name)
    writes = [Intermediate(name, keep_in_memory=name in consumed) for name in dict.fromkeys(inv.writes)]
    return [Intermediate(name) for name in reads if name not in inv.writes] + writes


def nest_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Turn dotted keys into nested mappings, as ``kedro run --params a.b=1`` does (pure).

    ``{"model.lr": 0.1, "seed": 1}`` → ``{"model": {"lr": 0.1}, "seed": 1}``; Kedro then merges the result
    into parameters.yml key by key, so ``model``'s other keys keep their values.
    """
    nested: dict[str, Any] = {}
    for key, value in params.items():
        *parents, leaf = key.split(".")
        target = nested
        for part in parents:
            child = target.get(part)
            if not isinstance(child, dict):
                child = target[part] = {}
            target = child
        if isinstance(target.get(leaf), dict) and isinstance(value, Mapping):
            target[leaf].update(value)
        else:
            target[leaf] = value
    return nested


def _is_parameter(name: str) -> bool:
    return name == "parameters" or name.startswith("params:")


class InjectIntermediates:
    """Session-local hook: swap the step's intermediate datasets into the catalog before the run."""

    def __init__(self, inv: StepInvocation):
        self._inv = inv
        self.started = False

    @hook_impl
    def before_pipeline_run(self, run_params: Mapping[str, Any], pipeline: Any, catalog: Any) -> None:
        from kedro.io import MemoryDataset

        from .intermediate import IntermediateDataset

        def provided_by_catalog(name: str) -> bool:
            dataset = catalog.get(name)
            return dataset is not None and not isinstance(dataset, MemoryDataset)

        consumed = {name for node in pipeline.nodes for name in node.inputs}
        produced = {name for node in pipeline.nodes for name in node.outputs}
        planned = plan_intermediates(self._inv, pipeline.inputs(), consumed, produced, provided_by_catalog)
        writers = _writers(self._inv.pipeline)
        meta = {"nodes": list(self._inv.nodes), "job_name": self._inv.job_name}
        for item in planned:
            catalog[item.name] = IntermediateDataset.for_run(
                self._inv.root,
                self._inv.run_id,
                item.name,
                keep_in_memory=item.keep_in_memory,
                producer=writers.get(item.name, ""),
                meta=meta,
            )
        self.started = True


def _writers(pipeline_name: str) -> dict[str, str]:
    """Dataset name -> "node 'x'" for the whole registered pipeline, to name the producer in errors."""
    try:
        from kedro.framework.project import pipelines

        full = pipelines[pipeline_name]
        return {out: f"node {node.name!r}" for node in full.nodes for out in node.outputs}
    except Exception:  # noqa: BLE001 - only used to make an error message more helpful
        return {}


def run_step(
    inv: StepInvocation,
    project: Path,
    injector: InjectIntermediates | None = None,
    extra_hooks: Iterable[Any] = (),
) -> None:
    """Run exactly ``inv.nodes`` of ``inv.pipeline`` in ``project`` with ``inv.params`` as runtime params.

    ``extra_hooks`` are registered on this session only, like the injector.
    """
    if not inv.nodes:
        raise StepSetupError("no --node given: a step runs at least one node")
    injector = injector or InjectIntermediates(inv)
    session = _create_session(inv, project)
    with session:
        register_session_hooks(session, (injector, *extra_hooks))
        session.run(**_pipeline_argument(session, inv.pipeline), node_names=list(inv.nodes))


@contextmanager
def load_context(inv: StepInvocation, project: Path) -> Iterator[Any]:
    """The step's KedroContext with no node run (the MLflow start/end tasks); plugin hooks see it created."""
    with _create_session(inv, project) as session:
        yield session.load_context()


def _create_session(inv: StepInvocation, project: Path) -> Any:
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(project)
    _run_config_providers(inv, project)
    _skip_disabled_plugin_imports()
    runtime_params = nest_params(inv.params) or None
    return KedroSession.create(project_path=project, env=inv.env, runtime_params=runtime_params)


def _run_config_providers(inv: StepInvocation, project: Path) -> None:
    """Write the dynamic config files before the session's config loader reads them (always, params or not)."""
    if not inv.config_providers:
        return
    from kedro.framework.project import settings

    from ..dynamic_config import StepContext, run_providers

    context = StepContext(project_path=project, env=inv.env, run_id=inv.run_id, job_name=inv.job_name)
    run_providers(inv.config_providers, context, project / settings.CONF_SOURCE)


def _skip_disabled_plugin_imports() -> None:
    """Honour ``DISABLE_HOOKS_FOR_PLUGINS`` before the plugins are imported, not after.

    Kedro imports every installed plugin's hooks and then unregisters the disabled ones, so a disabled
    kedro-mlflow still costs its ~2 s import in every step. Blocking those entry-point names in the
    session's hook manager makes pluggy skip them before ``ep.load()``; the result is the same set of hooks.
    Only distributions with a ``kedro.hooks`` entry point have their name read: parsing every installed
    distribution's METADATA cost ~0.07 s CPU per step.
    """
    from importlib.metadata import distributions

    from kedro.framework.project import settings

    disabled = set(getattr(settings, "DISABLE_HOOKS_FOR_PLUGINS", ()) or ())
    if not disabled:
        return
    blocked = sorted(
        {
            ep.name
            for dist in distributions()
            for ep in dist.entry_points
            if ep.group == "kedro.hooks" and dist.metadata["Name"] in disabled
        }
    )
    block_plugin_hooks(blocked)


def _pipeline_argument(session: Any, pipeline: str) -> dict[str, Any]:
    """``pipeline_names=[…]`` where Kedro has it (1.1+, where ``pipeline_name`` warns), else ``pipeline_name``."""
    import inspect

    if "pipeline_names" in inspect.signature(session.run).parameters:
        return {"pipeline_names": [pipeline]}
    return {"pipeline_name": pipeline}
