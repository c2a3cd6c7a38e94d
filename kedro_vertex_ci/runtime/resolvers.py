"""Run values in Kedro config: the ``vertex`` OmegaConf resolver, registered on import of this module.

Use in any config file Kedro loads (catalog, parameters, …), with no change to the project's settings.py::

    model_output:
      type: pickle.PickleDataset
      filepath: gs://bucket/models/${vertex:run_id}/model.pkl
    tracking:
      job: ${vertex:job_name}
      commit: ${vertex:commit_id}        # KEDRO_CONFIG_COMMIT_ID, default "dirty"
      branch: ${vertex:branch_name}      # KEDRO_CONFIG_BRANCH_NAME, default "dirty"
      owner: ${vertex:team,data-science} # KEDRO_CONFIG_TEAM, default "data-science"

``${vertex:NAME}`` reads the environment variable ``KEDRO_CONFIG_<NAME upper-cased>``; an optional second
argument is the default. The step runtime exports ``KEDRO_CONFIG_RUN_ID`` (the Vertex pipeline job uuid),
``KEDRO_CONFIG_JOB_NAME`` (the pipeline job name) and, in the on-exit step, ``KEDRO_CONFIG_PIPELINE_STATUS``
(the final state of the main pipeline as one word: ``SUCCEEDED``, ``FAILED``…) and
``KEDRO_CONFIG_PIPELINE_ERROR`` (its error message, if any) before Kedro loads config,
so the same values are also reachable as ``${oc.env:KEDRO_CONFIG_RUN_ID}`` in projects that enabled
``oc.env``. Outside a step (``compile``, a plain ``kedro run``) the built-in names
fall back to :data:`DEFAULTS`, so config that uses them still loads; any other unset name without a
default is an error naming the variable.

Why one ``vertex`` resolver and not ``${run_id}``: on Kedro 1.x (OmegaConfigLoader) a bare ``${run_id}`` is
an interpolation of a config key, which only a settings.py change (globals) could provide; a resolver call
needs the ``name:args`` form, and one namespace keeps the YAML readable and collision-free.

Importing this module is cheap (os + omegaconf) and registering is idempotent, so compile, the step
runtime and users' own code can all import it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

RESOLVER = "vertex"
ENV_PREFIX = "KEDRO_CONFIG_"
DEFAULTS: Mapping[str, str] = {
    "run_id": "local",
    "job_name": "local",
    "commit_id": "dirty",
    "branch_name": "dirty",
    "pipeline_status": "unknown",
    "pipeline_error": "",
}
_NO_DEFAULT = object()
DEFERRED_PREFIX = "<<vertex:"  # what ``${vertex:NAME}`` gives while the compile asks for parameter values
_deferred: ContextVar[bool] = ContextVar("kedro_vertex_ci_deferred_run_values", default=False)
_seen: ContextVar[set[str] | None] = ContextVar("kedro_vertex_ci_seen_run_values", default=None)
# The run's time: the schedule's fire time for a scheduled run, else the job's create time (Airflow's ``ds``).
RUN_TIME_NAMES = frozenset({"scheduled_time", "scheduled_date"})


@contextmanager
def deferred_run_values() -> Iterator[set[str]]:
    """While active, ``${vertex:NAME}`` resolves to a marker instead of a value (see :func:`is_deferred`).

    The compile reads parameter values to type pipeline inputs. A parameter that holds a run value
    (``status: ${vertex:pipeline_status}``) must not be frozen into the spec with its compile-time default:
    the marker lets the compiler leave it to each step, which resolves it when it runs.
    """
    token = _deferred.set(True)
    seen: set[str] = set()
    seen_token = _seen.set(seen)
    try:
        yield seen  # the names config asked for: the compile passes the run's times only when needed
    finally:
        _seen.reset(seen_token)
        _deferred.reset(token)


def is_deferred(value: object) -> bool:
    """Whether ``value`` (a parameter, possibly nested) holds a run value resolved only inside a step."""
    if isinstance(value, str):
        return DEFERRED_PREFIX in value
    if isinstance(value, Mapping):
        return any(is_deferred(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(is_deferred(v) for v in value)
    return False


def env_name(name: str) -> str:
    """The environment variable behind ``${vertex:name}``."""
    return ENV_PREFIX + name.strip().upper()


def resolve(name: str, default: object = _NO_DEFAULT) -> object:
    """The value of ``${vertex:name[,default]}``: the env var, else the default, else a built-in default."""
    if _deferred.get():
        seen = _seen.get()
        if seen is not None:
            seen.add(name.strip().lower())
        return f"{DEFERRED_PREFIX}{name.strip()}>>"
    value = os.environ.get(env_name(name))
    if value is not None:
        return value
    if default is not _NO_DEFAULT:
        return default
    if name.strip().lower() in RUN_TIME_NAMES:  # outside a run (a plain `kedro run`): now
        return run_time_values(None, None)[env_name(name)]
    builtin = DEFAULTS.get(name.strip().lower())
    if builtin is not None:
        return builtin
    raise KeyError(
        f"${{{RESOLVER}:{name}}}: environment variable {env_name(name)} is not set "
        f"(set it, or give a default: ${{{RESOLVER}:{name},VALUE}})"
    )


def step_environment(
    run_id: str, job_name: str, status: str | None = None, pipeline_root: str | None = None,
    scheduled_time: str | None = None, create_time: str | None = None,
) -> dict[str, str]:
    """The ``KEDRO_CONFIG_*`` variables a step exports before Kedro loads config."""
    env = {env_name("run_id"): run_id, env_name("job_name"): job_name}
    if scheduled_time is not None or create_time is not None:
        env.update(run_time_values(scheduled_time, create_time))
    if status is not None:
        env[env_name("pipeline_status")] = final_state(status)
        env[env_name("pipeline_error")] = final_error(status)
    if pipeline_root is not None:
        env[env_name("pipeline_root")] = pipeline_root
    return env


def _parse_time(text: str | None) -> Any:
    """A UTC datetime from an RFC 3339 time; None for empty, unsubstituted or zero times."""
    from datetime import datetime, timezone

    if not text or "{{" in text:
        return None
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    moment = moment.astimezone(timezone.utc)
    return None if moment.year <= 1970 else moment


def run_time_values(scheduled_time: str | None, create_time: str | None) -> dict[str, str]:
    """``KEDRO_CONFIG_SCHEDULED_TIME`` / ``_DATE``: the schedule's fire time, else the job's create time,
    else now (a run outside Vertex), in UTC as ``2026-01-31T03:00:00Z`` and ``2026-01-31``."""
    from datetime import datetime, timezone

    moment = _parse_time(scheduled_time) or _parse_time(create_time) or datetime.now(timezone.utc)
    return {env_name("scheduled_time"): moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
            env_name("scheduled_date"): moment.strftime("%Y-%m-%d")}


def final_state(status: str) -> str:
    """A state word (``SUCCEEDED``, ``FAILED``, ``CANCELLED``…) from what the on-exit step receives.

    Vertex passes a ``PipelineTaskFinalStatus`` as JSON (``{"state": "SUCCEEDED", "error": {...}, ...}``);
    a plain word (``--status FAILED`` by hand) is kept as given.
    """
    import json

    try:
        parsed = json.loads(status)
    except ValueError:
        return status.strip()
    if isinstance(parsed, dict) and isinstance(parsed.get("state"), str):
        state = parsed["state"].strip().upper()
        for prefix in ("PIPELINE_STATE_", "TASK_STATE_", "STATE_"):
            state = state.removeprefix(prefix)
        return state
    return status.strip()


def final_error(status: str) -> str:
    """The error message of a ``PipelineTaskFinalStatus`` (``""`` when there is none or it is a plain word)."""
    import json

    try:
        parsed = json.loads(status)
    except ValueError:
        return ""
    error = parsed.get("error") if isinstance(parsed, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    return " ".join(str(message).split()) if message else ""


def register() -> None:
    """Register ``vertex`` with OmegaConf once per process (a second call, or the user's own, is kept)."""
    from omegaconf import OmegaConf

    if OmegaConf.has_resolver(RESOLVER):
        return
    if hasattr(OmegaConf, "register_resolver"):  # omegaconf >= 2.4 deprecates register_new_resolver
        OmegaConf.register_resolver(RESOLVER, resolve, use_cache=False, annotation_validation="off")
    else:
        OmegaConf.register_new_resolver(RESOLVER, resolve, use_cache=False)


register()
