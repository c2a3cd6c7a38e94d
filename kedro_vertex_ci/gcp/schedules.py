"""Exactly one active Vertex schedule per (project, pipeline), replaced on every deploy — safe to repeat and to race.

Identity: a deterministic display name (``names.schedule_display_name``) with no commit or timestamp in it, so a
re-deploy finds the schedule the previous deploy made (kedro-vertexai put the commit in the name, and schedules
piled up). Vertex cannot change a schedule's pipeline in place, so a deploy creates the new schedule first (no
gap without a schedule) and then deletes every other schedule with the same display name, keeping the newest by
a total order (create time, then resource name). Two deploys racing each keep the same newest one and the last
to list deletes the rest, so no duplicates survive.

Cron expressions are validated here, before any network call.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from ..errors import ConfigError


@dataclass(frozen=True)
class ScheduleSettings:
    """One pipeline's schedule: kedro-vertexai's ``schedules`` keys, resolved against ``default_schedule``."""

    cron_expression: str  # no default: a schedule nobody configured is never created
    timezone: str | None = None
    start_time: str | None = None
    end_time: str | None = None
    allow_queueing: bool = False
    max_run_count: int | None = None
    max_concurrent_run_count: int = 1


_KEYS = {f for f in ScheduleSettings.__dataclass_fields__}


def _as_mapping(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return dict(value)
    if hasattr(value, "model_dump"):
        return dict(value.model_dump(exclude_none=True))
    return {k: getattr(value, k) for k in _KEYS if getattr(value, k, None) is not None}


def resolve_settings(schedules: Any, pipeline: str, overrides: Mapping[str, Any] | None = None,
                     source: str = "vertexai.yml") -> ScheduleSettings:
    """``default_schedule`` ← ``schedules.<pipeline>`` ← command-line overrides; then validated."""
    table = _as_mapping(schedules)
    merged: dict[str, Any] = {}
    for layer in (_as_mapping(table.get("default_schedule")), _as_mapping(table.get(pipeline)),
                  {k: v for k, v in (overrides or {}).items() if v is not None}):
        for key, value in layer.items():
            if key not in _KEYS:
                raise ConfigError(f"{source}: schedules.{pipeline}.{key}: unknown key (known: {sorted(_KEYS)})")
            if value is not None:
                merged[key] = value
    if not merged.get("cron_expression"):
        raise ConfigError(f"{source}: schedules.{pipeline}: no cron_expression (nothing is scheduled without one)")
    settings = ScheduleSettings(**merged)
    cron, timezone = normalize_cron(settings.cron_expression, settings.timezone)
    start, end = _rfc3339(settings.start_time, "start_time"), _rfc3339(settings.end_time, "end_time")
    if start and end and end <= start:
        raise ConfigError(f"schedule end_time {settings.end_time} is not after start_time {settings.start_time}")
    for name in ("max_run_count", "max_concurrent_run_count"):
        value = getattr(settings, name)
        if value is not None and int(value) < 1:
            raise ConfigError(f"schedule {name} must be at least 1, got {value}")
    return replace(settings, cron_expression=cron, timezone=timezone)


def _rfc3339(text: str | None, key: str) -> Any:
    from datetime import datetime, timezone

    if not text:
        return None
    try:
        moment = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError as err:
        raise ConfigError(f"schedule {key} {text!r} is not an RFC 3339 time like 2026-01-31T03:00:00Z") from err
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def normalize_cron(expression: str, timezone: str | None = None) -> tuple[str, str | None]:
    """Validate a 5-field cron (optionally ``TZ=Area/City`` / ``CRON_TZ=`` prefixed) and a time zone.

    Returns the bare cron and the one time zone (prefix or argument; both given must agree).
    """
    from ..cron import split_timezone, validate_cron

    prefix, text = split_timezone(" ".join(str(expression).split()))
    if prefix and timezone and timezone != prefix:
        raise ConfigError(f"cron {expression!r} says TZ={prefix} but the timezone is {timezone}; "
                          f"give the time zone once")
    try:
        validate_cron(text)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    timezone = prefix or timezone
    if timezone:
        _check_timezone(timezone)
    return text, timezone


def _check_timezone(timezone: str) -> None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise ConfigError(f"timezone {timezone!r} is not an IANA time zone like Europe/Warsaw") from err


def schedule_body(display_name: str, settings: ScheduleSettings, parent: str,
                  job_body: Mapping[str, Any]) -> dict[str, Any]:
    """The ``Schedule`` REST body (pure)."""
    cron = settings.cron_expression
    if settings.timezone:
        cron = f"TZ={settings.timezone} {cron}"
    body: dict[str, Any] = {
        "displayName": display_name,
        "cron": cron,
        "maxConcurrentRunCount": str(settings.max_concurrent_run_count),
        "allowQueueing": settings.allow_queueing,
        "createPipelineJobRequest": {"parent": parent, "pipelineJob": dict(job_body)},
    }
    if settings.max_run_count is not None:
        body["maxRunCount"] = str(settings.max_run_count)
    if settings.start_time:
        body["startTime"] = settings.start_time
    if settings.end_time:
        body["endTime"] = settings.end_time
    return body


def display_name_filter(display_name: str) -> str:
    escaped = display_name.replace("\\", "\\\\").replace('"', '\\"')
    return f'display_name="{escaped}"'


def newest_first(schedules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The deterministic order every racing deploy agrees on: create time, then name, newest first."""
    return sorted(schedules, key=lambda s: (s.get("createTime") or "", s.get("name") or ""), reverse=True)


@dataclass(frozen=True)
class Deployed:
    schedule: dict[str, Any]
    replaced: tuple[str, ...]  # names of the schedules this deploy deleted


def deploy_schedule(vertex: Any, body: Mapping[str, Any],
                    on_event: Callable[[str], None] = lambda _m: None) -> Deployed:
    """Create ``body`` as the one active schedule for its display name; delete all others with that name."""
    display_name = body["displayName"]
    created = vertex.create_schedule(body)
    on_event(f"created schedule {created['name']}")
    same_name = [s for s in vertex.list_schedules(display_name_filter(display_name))
                 if s.get("displayName") == display_name]
    if created["name"] not in {s["name"] for s in same_name}:
        same_name.append(created)
    keep, *others = newest_first(same_name)
    deleted = []
    for schedule in others:
        if vertex.delete_schedule(schedule["name"]):
            deleted.append(schedule["name"])
            on_event(f"deleted schedule {schedule['name']}")
    return Deployed(keep, tuple(deleted))


def schedules_named(vertex: Any, display_name: str) -> list[dict[str, Any]]:
    """Every schedule with exactly this display name, newest first."""
    return newest_first([s for s in vertex.list_schedules(display_name_filter(display_name))
                         if s.get("displayName") == display_name])


def _require_some(found: list[dict[str, Any]], display_name: str, where: str) -> None:
    from ..errors import CloudError

    if not found:
        raise CloudError(f"no schedule named {display_name} in {where}; create it with `kedro-vertex-ci schedule`")


def pause_schedules(vertex: Any, display_name: str, on_event: Callable[[str], None] = lambda _m: None) -> list[str]:
    """Pause the active schedule(s) with this name; an already paused one is left as it is."""
    found = schedules_named(vertex, display_name)
    _require_some(found, display_name, vertex.parent)
    paused = []
    for schedule in found:
        if schedule.get("state") == "ACTIVE":
            vertex.pause_schedule(schedule["name"])
            paused.append(schedule["name"])
            on_event(f"paused schedule {schedule['name']}")
        else:
            on_event(f"schedule {schedule['name']} is {schedule.get('state')}; left as it is")
    return paused


def resume_schedule(vertex: Any, display_name: str, on_event: Callable[[str], None] = lambda _m: None) -> str:
    """Resume the newest schedule with this name (runs missed while paused are skipped); delete any others,
    so exactly one stays active."""
    found = schedules_named(vertex, display_name)
    _require_some(found, display_name, vertex.parent)
    keep, *others = found
    for schedule in others:
        if vertex.delete_schedule(schedule["name"]):
            on_event(f"deleted duplicate schedule {schedule['name']}")
    if keep.get("state") == "PAUSED":
        vertex.resume_schedule(keep["name"], catch_up=False)
        on_event(f"resumed schedule {keep['name']}")
    else:
        on_event(f"schedule {keep['name']} is {keep.get('state')}; nothing to resume")
    return str(keep["name"])


def delete_schedules(vertex: Any, display_name: str, on_event: Callable[[str], None] = lambda _m: None) -> list[str]:
    """Delete every schedule with this name (the runs they started are kept)."""
    found = schedules_named(vertex, display_name)
    _require_some(found, display_name, vertex.parent)
    deleted = []
    for schedule in found:
        if vertex.delete_schedule(schedule["name"]):
            deleted.append(schedule["name"])
            on_event(f"deleted schedule {schedule['name']}")
    return deleted


def job_labels(schedule: Mapping[str, Any]) -> dict[str, str]:
    """The labels of the runs a schedule starts."""
    request = schedule.get("createPipelineJobRequest") or {}
    return dict((request.get("pipelineJob") or {}).get("labels") or {})


def stale_schedules(schedules: list[dict[str, Any]], kedro_project_label: str,
                    current_names: set[str]) -> list[dict[str, Any]]:
    """Schedules this Kedro project made (its ``kvc_kedro_project`` label) that match none of its pipelines
    under the current experiment name: left behind by a renamed ``experiment_name`` or a removed pipeline."""
    return [s for s in schedules
            if job_labels(s).get(PROJECT_LABEL) == kedro_project_label and s.get("displayName") not in current_names]


PROJECT_LABEL = "kvc_kedro_project"
