"""Kedro parameters as typed Vertex pipeline inputs, and ``--param k=v`` overrides (pure)."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from typing import Any

import yaml

from .errors import ConfigError, Problem
from .model import ParamType, PipelineParam


def param_type(value: Any) -> ParamType | None:
    """The KFP type for a parameter value; None for values Vertex cannot type (null)."""
    if isinstance(value, bool):
        return ParamType.BOOLEAN
    if isinstance(value, int):
        return ParamType.NUMBER_INTEGER
    if isinstance(value, float):
        return ParamType.NUMBER_DOUBLE
    if isinstance(value, str):
        return ParamType.STRING
    if isinstance(value, (list, tuple)):
        return ParamType.LIST
    if isinstance(value, Mapping):
        return ParamType.STRUCT
    return None


def input_name(key: str, taken: set[str]) -> str:
    """A KFP input name (Python identifier) for a Kedro parameter key, unique among ``taken``."""
    name = re.sub(r"\W", "_", key)
    if not name or name[0].isdigit():
        name = f"p_{name}"
    candidate, n = name, 2
    while candidate in taken:
        candidate, n = f"{name}_{n}", n + 1
    taken.add(candidate)
    return candidate


def used_parameter_keys(inputs: Iterable[str], all_keys: Iterable[str]) -> set[str]:
    """Top-level parameter keys a set of node inputs reads (``params:a.b`` → ``a``; ``parameters`` → all)."""
    keys: set[str] = set()
    every = list(all_keys)
    for name in inputs:
        if name == "parameters":
            keys.update(every)
        elif name.startswith("params:"):
            keys.add(name[len("params:") :].split(".", 1)[0])
    return keys


def parse_overrides(items: Iterable[str]) -> dict[str, str]:
    """``["a.b=3", "name=x"]`` → ``{"a.b": "3", "name": "x"}``; values are typed later, by the project's."""
    overrides: dict[str, str] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError([Problem("--param", item, "expected KEY=VALUE, e.g. --param model.alpha=0.5")])
        overrides[key.strip()] = text
    return overrides


def _read_value(key: str, text: Any) -> Any:
    """A ``--param`` value as YAML (``3`` → 3, ``[1, 2]`` → list); non-strings pass through."""
    if not isinstance(text, str):
        return text
    try:
        return yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError as err:
        raise ConfigError([Problem("--param", key, f"cannot read value {text!r}: {err}")]) from None


def _set_dotted(target: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = target
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            raise ConfigError([Problem("--param", dotted, f"'{part}' is not a mapping, cannot set {dotted}")])
        node = child
    node[parts[-1]] = value


def _coerce(key: str, text: Any, expected: ParamType | None) -> Any:
    """Keep the project's type for an override: an int stays an int, a string stays the text as typed."""
    if expected is ParamType.STRING:
        return text if isinstance(text, str) else str(text)
    value = _read_value(key, text)
    if expected is None:
        return value
    if expected is ParamType.NUMBER_DOUBLE and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    actual = param_type(value)
    if actual is not expected:
        raise ConfigError(
            [Problem("--param", key, f"expected {expected.value.lower()} like the project's value, got {value!r}")]
        )
    return value


def apply_overrides(parameters: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The project's parameters with ``--param`` values applied, types kept; unknown keys are errors."""
    import copy

    result = copy.deepcopy(dict(parameters))
    for dotted, value in overrides.items():
        top = dotted.split(".", 1)[0]
        if top not in result:
            close = difflib.get_close_matches(top, list(result), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise ConfigError([Problem("--param", dotted, f"no such parameter in the project{hint}")])
        if "." in dotted:
            if not isinstance(result[top], dict):
                raise ConfigError([Problem("--param", dotted, f"parameter '{top}' is not a mapping")])
            _set_dotted(result[top], dotted.split(".", 1)[1], _read_value(dotted, value))
        else:
            result[top] = _coerce(dotted, value, param_type(result[top]))
    return result


def pipeline_params(parameters: Mapping[str, Any], used: Iterable[str]) -> tuple[PipelineParam, ...]:
    """Typed pipeline inputs for the used top-level keys, sorted by key; null-valued ones stay project-only."""
    taken: set[str] = set()
    params = []
    for key in sorted(set(used)):
        if key not in parameters:
            continue
        kind = param_type(parameters[key])
        if kind is None:
            continue
        params.append(PipelineParam(name=input_name(key, taken), key=key, type=kind, default=parameters[key]))
    return tuple(params)
