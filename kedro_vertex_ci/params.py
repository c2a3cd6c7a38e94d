"""Kedro parameters as typed Vertex pipeline inputs, and ``--param k=v`` overrides (pure)."""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
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


MAX_EXACT_INT = 2**53  # a spec stores every number as a double: larger integers would be rounded


def spec_value_problem(value: Any, depth: int = 0) -> str | None:
    """Why ``value`` cannot travel exactly through a spec (non-finite, an integer past 2**53), else None."""
    if depth > 100:
        return "nested more than 100 levels deep"
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return None
    if isinstance(value, int):
        if abs(value) > MAX_EXACT_INT:
            return (
                f"integer {_short(value)} is beyond ±2**53: the spec stores numbers as doubles and would round "
                "it; pass it as a string"
            )
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{value!r} is not a finite number (JSON and the spec hold none)"
    if isinstance(value, Mapping):
        items: Iterable[Any] = value.values()
    elif isinstance(value, (list, tuple)):
        items = value
    else:
        return None
    for item in items:
        problem = spec_value_problem(item, depth + 1)
        if problem:
            return problem
    return None


def _short(value: int) -> str:
    """The integer, or its size when long (``str()`` refuses past 4300 digits)."""
    bits = abs(value).bit_length()
    return str(value) if bits <= 100 else f"of about {int(bits * math.log10(2)) + 1} digits"


def _read_value(key: str, text: Any) -> Any:
    """A ``--param`` value as YAML (``3`` → 3, ``[1, 2]`` → list); non-strings pass through."""
    if not isinstance(text, str):
        value = text
    else:
        try:
            value = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError as err:
            raise ConfigError([Problem("--param", key, f"cannot read value {_clip(text)}: {err}")]) from None
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError, OverflowError) as err:
            # 5000 digits, [[[[…]]]] past the stack, and tags YAML cannot construct (!!bool maybe → KeyError)
            raise ConfigError([Problem("--param", key, f"cannot read value {_clip(text)}: {_why(err)}")]) from None
    problem = spec_value_problem(value)
    if problem:
        raise ConfigError([Problem("--param", key, problem)])
    return value


def _clip(text: str) -> str:
    return repr(text) if len(text) <= 60 else f"{text[:40]!r}… ({len(text)} characters)"


def _why(err: BaseException) -> str:
    if isinstance(err, RecursionError):
        return "nested too deeply"
    if isinstance(err, (KeyError, TypeError, AttributeError)):
        return f"YAML cannot make a value of that tag ({type(err).__name__}: {err})"
    if "integer string conversion" in str(err):
        return "a number with more than 4300 digits"
    return (str(err).splitlines() or [type(err).__name__])[0][:200]


def _show(value: Any) -> str:
    """A value for a message: short, and safe for integers too long for ``repr``."""
    if isinstance(value, int) and not isinstance(value, bool):
        return _short(value)
    try:
        text = repr(value)
    except ValueError:
        text = f"<{type(value).__name__}>"
    return text if len(text) <= 60 else f"{text[:40]}… ({len(text)} characters)"


def _coerce(key: str, text: Any, expected: ParamType | None, current: Any = None) -> Any:
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
            [Problem("--param", key, f"expected {expected.value.lower()} like the project's value "
                     f"{_show(current)}, got {_show(value)}")]
        )
    return value


def _unknown_key(dotted: str, known: Iterable[str], where: str) -> ConfigError:
    names = [str(k) for k in known]
    close = difflib.get_close_matches(dotted.rsplit(".", 1)[-1], names, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    listing = f" (keys: {', '.join(sorted(names)[:10])})" if names and not close else ""
    return ConfigError([Problem("--param", dotted, f"no such {where}{hint}{listing}")])


def set_nested(top_value: Any, dotted: str, value_text: Any) -> Any:
    """``top_value`` (a mapping) with the dotted path below the top key set, typed like the value it replaces."""
    import copy

    parts = dotted.split(".")
    root = copy.deepcopy(top_value)
    node = root
    for depth, part in enumerate(parts[1:-1], start=1):
        if not isinstance(node, Mapping):
            raise ConfigError([Problem("--param", dotted, f"'{'.'.join(parts[:depth])}' is not a mapping")])
        if part not in node:
            raise _unknown_key(dotted, node, f"key '{part}' in parameter '{'.'.join(parts[:depth])}'")
        node = node[part]
    parent = ".".join(parts[:-1])
    if not isinstance(node, dict):
        raise ConfigError([Problem("--param", dotted, f"parameter '{parent}' is not a mapping")])
    last = parts[-1]
    if last not in node:
        raise _unknown_key(dotted, node, f"key '{last}' in parameter '{parent}'; set the whole mapping with "
                                         f"--param {parent}='{{...}}' to add keys")
    node[last] = _coerce(dotted, value_text, param_type(node[last]), node[last])
    return root


def apply_overrides(parameters: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The project's parameters with ``--param`` values applied, types kept; unknown keys (at any depth) are errors."""
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
            result[top] = set_nested(result[top], dotted, value)
        else:
            result[top] = _coerce(dotted, value, param_type(result[top]), result[top])
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
        problem = spec_value_problem(parameters[key])
        if problem:
            raise ConfigError([Problem("parameters", key, problem)])
        params.append(PipelineParam(name=input_name(key, taken), key=key, type=kind, default=parameters[key]))
    return tuple(params)


# ---------------------------------------------------------------------------------------------------------
# ${runtime_params:KEY[, default]} in the project's config (Kedro's OmegaConfigLoader resolver)

_RUNTIME_REF = re.compile(r"\$\{runtime_params:\s*([^,}\s]+)\s*(,\s*((?:[^{}]|\{[^{}]*\})*))?\}")
NO_DEFAULT = object()


@dataclass(frozen=True)
class RuntimeRef:
    """One ``${runtime_params:KEY[, default]}`` in a config file; ``default`` is :data:`NO_DEFAULT` if none."""

    key: str
    default: Any
    file: str
    line: int


def runtime_param_refs(text: str, file: str) -> list[RuntimeRef]:
    """Every ``${runtime_params:…}`` in one config file's text, with its line (pure)."""
    refs = []
    for match in _RUNTIME_REF.finditer(text):
        default: Any = NO_DEFAULT
        if match.group(2):
            default = _runtime_value(match.group(3).strip().strip("'\""))
        refs.append(RuntimeRef(match.group(1), default, file, text.count("\n", 0, match.start()) + 1))
    return refs


def _runtime_value(text: Any) -> Any:
    """A runtime value as YAML reads it, kept as text when YAML would make it a date or other non-JSON type."""
    if not isinstance(text, str):
        return text
    try:
        value = yaml.safe_load(text) if text.strip() else ""
    except (yaml.YAMLError, ValueError, KeyError, TypeError, AttributeError, RecursionError, OverflowError):
        return text  # a tag YAML cannot construct (!!bool maybe), 5000 digits…: the text as it was given
    return value if param_type(value) is not None else text


def runtime_values(refs: Iterable[RuntimeRef], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The value of each runtime key: ``--param KEY=…`` else the interpolation's default; a key with neither
    is an error naming where it is used (Kedro itself would stop with an OmegaConf traceback)."""
    values: dict[str, Any] = {}
    missing: dict[str, RuntimeRef] = {}
    for ref in refs:
        if ref.key in overrides:
            values[ref.key] = _runtime_value(overrides[ref.key])
        elif ref.default is not NO_DEFAULT:
            values.setdefault(ref.key, ref.default)
        else:
            missing.setdefault(ref.key, ref)
    problems = [Problem(ref.file, f"${{runtime_params:{key}}}",
                        f"has no default and no value: pass --param {key}=VALUE, or write a default as "
                        f"${{runtime_params:{key}, VALUE}}", ref.line)
                for key, ref in sorted(missing.items()) if key not in values]
    if problems:
        raise ConfigError(problems)
    return values
