"""What a deployment to KFP is made of, shared by the CLI and the Action: names, typed parameters, descriptions,
and the experiment + pipeline version a run or recurring run points at."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Prepared:
    experiment_id: str
    pipeline_id: str
    version_id: str
    pipeline_name: str  # the KFP pipeline, also the recurring run's name: kvc-<project>-<pipeline>


def experiment_name(config: Any, project_name: str) -> str:
    from ..gcp.submission import stable_identity

    return config.kfp.experiment or stable_identity(config, project_name)


def pipeline_name(config: Any, project_name: str, pipeline: str) -> str:
    from ..gcp import names
    from ..gcp.submission import stable_identity

    return names.schedule_display_name(stable_identity(config, project_name), pipeline)


def runtime_parameters(spec: Any) -> dict[str, Any]:
    """Every pipeline input with the typed value the compile gave it (defaults + --param), as on Vertex."""
    declared = (spec.get("root", {}).get("inputDefinitions", {}).get("parameters")) or {}
    return {name: _typed(item["defaultValue"], item.get("parameterType")) for name, item in declared.items()
            if "defaultValue" in item}


def _typed(value: Any, parameter_type: str | None) -> Any:
    """protobuf's Value holds every number as a double: an integer parameter goes out as an integer."""
    if parameter_type == "NUMBER_INTEGER" and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def describe_commit(git: Mapping[str, str]) -> str:
    """``kedro-vertex-ci: branch B, sha S, pr N`` — KFP has no labels, so descriptions carry the commit."""
    parts = [f"{key} {git[key]}" for key in ("branch", "sha", "pr", "run") if git.get(key)]
    return "kedro-vertex-ci" + (f": {', '.join(parts)}" if parts else "")


def parse_description(text: str | None) -> dict[str, str]:
    """The inverse of :func:`describe_commit` (empty for descriptions written by anything else)."""
    head, sep, rest = (text or "").partition(": ")
    if head != "kedro-vertex-ci" or not sep:
        return {}
    found = {}
    for part in rest.split(", "):
        key, _, value = part.partition(" ")
        if key in ("branch", "sha", "pr", "run") and value:
            found[key] = value
    return found


def prepare(target: Any, config: Any, compiled: Any, pipeline: str, description: str) -> Prepared:
    """The experiment and the pipeline version of ``compiled.spec``: created when missing, reused otherwise."""
    name = pipeline_name(config, compiled.project_name, pipeline)
    experiment = target.ensure_experiment(experiment_name(config, compiled.project_name),
                                          getattr(config.run_config, "experiment_description", None))
    pipeline_id, version_id = target.ensure_pipeline(name, compiled.spec, description)
    return Prepared(experiment, pipeline_id, version_id, name)
