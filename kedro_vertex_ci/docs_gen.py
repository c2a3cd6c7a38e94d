"""Generate ``docs/configuration.md`` from the pydantic model itself, so the reference cannot go stale.

``python -m kedro_vertex_ci.docs_gen > docs/configuration.md``; a test compares the file with this output.
"""

from __future__ import annotations

import typing
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from .config import DEPRECATED_KEYS, RENAMED_KEYS, PluginConfig
from .rules import RULES
from .yaml_guard import MAX_BYTES, MAX_DEPTH, MAX_NODES

_HEADER = """\
# Configuration reference: `conf/<env>/vertexai.yml`

Generated from `kedro_vertex_ci/config.py` by `python -m kedro_vertex_ci.docs_gen` (a test fails when this
file is stale). The file is read through Kedro's own config loader, so `conf/<env>/vertexai.yml` overrides
`conf/base/vertexai.yml` key by key, and OmegaConf interpolation works as in the rest of `conf/`.

Every key of kedro-vertexai 1.0's format is accepted. Unknown keys are errors (with a "did you mean"),
numbers are accepted where strings are expected (`cpu: 8`, `gpu: 1`), `none` means "not set" where a key is
optional, and each problem is reported with its file, key path and line, exit code 2 (see
[Validation rules](#validation-rules)). `kedro-vertex-ci init PROJECT_ID REGION` writes a file with every
option present and commented.
"""


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        names = [_type_name(a) for a in args if a is not type(None)]
        return " or ".join(names) + (" (optional)" if type(None) in args else "")
    if origin in (dict,):
        return f"mapping of {_type_name(args[0])} → {_type_name(args[1])}"
    if origin in (tuple, list):
        return f"list of {_type_name(args[0])}"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return f"[{annotation.__name__}](#{annotation.__name__.lower()})"
    if origin is typing.Literal:
        return " | ".join(repr(a) for a in args)
    return getattr(annotation, "__name__", str(annotation))


def _default(field: Any) -> str:
    if field.is_required():
        return "**required**"
    if field.default_factory is not None:
        value = field.default_factory()
        if isinstance(value, BaseModel):
            return "see section"
        return f"`{value!r}`" if value not in ({}, [], ()) else "empty"
    if field.default is PydanticUndefined or field.default is None:
        return "none"
    return f"`{field.default!r}`"


def _models(root: type[BaseModel]) -> list[type[BaseModel]]:
    """Every model reachable from ``root``, in first-seen order."""
    seen: list[type[BaseModel]] = []
    queue = [root]
    while queue:
        model = queue.pop(0)
        if model in seen:
            continue
        seen.append(model)
        for field in model.model_fields.values():
            queue.extend(_nested(field.annotation))
    return seen


def _nested(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _nested(arg)]


def render() -> str:
    parts = [_HEADER]
    for model in _models(PluginConfig):
        parts.append(f"\n## {model.__name__}\n\n{(model.__doc__ or '').strip()}\n")
        parts.append("| key | type | default | meaning |\n| --- | --- | --- | --- |")
        for name, field in model.model_fields.items():
            description = (field.description or "").replace("|", "\\|")
            parts.append(f"| `{name}` | {_type_name(field.annotation)} | {_default(field)} | {description} |")
    parts.append(_rules_section())
    parts.append("\n## Keys from kedro-vertexai 0.x and 1.0\n\nAccepted with a warning that says what they did and how to migrate:\n")
    parts.append("| key | what it was, what to do |\n| --- | --- |")
    for path, advice in DEPRECATED_KEYS.items():
        parts.append(f"| `{'.'.join(path)}` | {advice} |")
    parts.append("\nRefused with a pointer to the key that replaces them:\n")
    parts.append("| key | what to write instead |\n| --- | --- |")
    for key, advice in RENAMED_KEYS.items():
        parts.append(f"| `{key}` | {advice} |")
    return "\n".join(parts) + "\n"


def _rules_section() -> str:
    lines = [
        "\n## Validation rules\n",
        "Checked when the config is loaded (before anything is compiled, built or submitted), so a value Vertex AI,",
        "Cloud Storage or Cloud Build would refuse later is an error now, with its file, key and line. The limits",
        "follow Google's documented naming rules and quotas.\n",
        "The file itself: UTF-8, at most "
        f"{MAX_BYTES:,} bytes, nested at most {MAX_DEPTH} levels and at most {MAX_NODES:,} values once YAML "
        "aliases are expanded; no alias may contain itself, no key may appear twice in one mapping, explicit "
        "tags must construct (`!!bool maybe` does not), and only the files Kedro's loader reads "
        "(`vertexai*.yml`/`.yaml`/`.json`, not hidden) are looked at: a `vertexai.yml.bak` beside them is ignored. "
        "Two files of one environment folder may not set the same top-level key (Kedro's rule).\n",
        "| what | rule |\n| --- | --- |",
    ]
    lines += ["| {} | {} |".format(name, rule.replace("|", "\\|")) for name, rule in RULES.items()]
    return "\n".join(lines)


if __name__ == "__main__":
    print(render(), end="")
