"""Write small, real Kedro 1.x projects on disk, fast, without ``kedro new``.

Tests and benchmarks need many projects of known shape and size (up to thousands of nodes). ``kedro new``
costs about a second and only makes one shape; this writes the handful of files Kedro actually reads:
``pyproject.toml`` with ``[tool.kedro]``, ``src/<package>/`` (settings, pipeline registry, node functions,
one pipeline module listing every node explicitly) and ``conf/``. Node functions are cheap but real
arithmetic, so the project runs with ``kedro run``; datasets between nodes are MemoryDatasets unless
named in ``catalog``. The project is loadable without installing it: Kedro's ``bootstrap_project`` puts
``src/`` on ``sys.path``.
"""

from __future__ import annotations

import importlib.metadata
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SHAPES = ("chain", "fanout", "layered", "diamond")
DEFAULT_PARAMS: dict[str, Any] = {"start": 1, "increment": 1}
_PACKAGE_RE = re.compile(r"^[a-z_][a-z0-9_]*$")


@dataclass(frozen=True)
class GenNode:
    """One node of a generated pipeline: Kedro node name, inputs and its single output."""

    name: str
    inputs: tuple[str, ...]
    output: str
    tags: tuple[str, ...] = ()


def package_name_for(name: str) -> str:
    """The Python package name ``make_project`` uses for a project called ``name``."""
    package = re.sub(r"[^a-z0-9_]", "_", name.lower())
    if not package or package[0].isdigit():
        package = "p_" + package
    return package


def _minimum_nodes(shape: str) -> int:
    return {"chain": 1, "fanout": 3, "layered": 1, "diamond": 1}[shape]


def _check_shape(shape: str, n: int) -> None:
    if shape not in SHAPES:
        raise ValueError(f"unknown shape {shape!r}; expected one of {', '.join(SHAPES)}")
    if n < _minimum_nodes(shape):
        raise ValueError(f"shape {shape!r} needs at least {_minimum_nodes(shape)} nodes, got {n}")


def edges_for(shape: str, n: int, width: int | None = None) -> list[tuple[int, ...]]:
    """For each node index, the indices of the nodes whose outputs it consumes (deterministic)."""
    _check_shape(shape, n)
    if shape == "chain":
        return [()] + [(i - 1,) for i in range(1, n)]
    if shape == "fanout":
        middle = list(range(1, n - 1))
        return [()] + [(0,) for _ in middle] + [tuple(middle)]
    if shape == "layered":
        return _layered_edges(n, width or max(2, round(math.sqrt(n))))
    return _diamond_edges(n)


def _layered_edges(n: int, width: int) -> list[tuple[int, ...]]:
    """Layers of ``width`` nodes; node j of a layer reads node j of the previous one, and every other
    node also reads its neighbour, so each node consumes one or two nodes of the previous layer."""
    edges: list[tuple[int, ...]] = []
    previous: list[int] = []
    for start in range(0, n, width):
        layer = list(range(start, min(start + width, n)))
        for j, _ in enumerate(layer):
            if not previous:
                edges.append(())
                continue
            first = previous[j % len(previous)]
            second = previous[(j + 1) % len(previous)]
            edges.append((first, second) if j % 2 == 0 and second != first else (first,))
        previous = layer
    return edges


def _diamond_edges(n: int) -> list[tuple[int, ...]]:
    """Repeated diamonds: head → two branches → join (the next head); leftovers extend the chain."""
    edges: list[tuple[int, ...]] = [()]
    head = 0
    while len(edges) < n:
        if n - len(edges) >= 3:
            left, right = len(edges), len(edges) + 1
            edges += [(head,), (head,), (left, right)]
            head = len(edges) - 1
        else:
            edges.append((len(edges) - 1,))
            head = len(edges) - 1
    return edges


def _node_names(n: int, node_names: Sequence[str] | Callable[[int], str] | None) -> list[str]:
    if node_names is None:
        digits = len(str(max(n - 1, 0)))
        return [f"node_{i:0{digits}d}" for i in range(n)]
    names = [node_names(i) for i in range(n)] if callable(node_names) else list(node_names)
    if len(names) != n or len(set(names)) != n:
        raise ValueError(f"node_names must give {n} distinct names, got {len(set(names))}")
    return names


def build_nodes(
    shape: str = "chain",
    n: int = 10,
    *,
    width: int | None = None,
    tags: Mapping[str, Sequence[str]] | None = None,
    node_names: Sequence[str] | Callable[[int], str] | None = None,
) -> list[GenNode]:
    """The generated pipeline as values (what ``make_project`` writes), for tests that predict results.

    Source nodes read ``params:start``; the last node also reads ``params:increment``. Node ``i`` writes
    ``ds_<i>``.
    """
    edges = edges_for(shape, n, width)
    names = _node_names(n, node_names)
    digits = len(str(max(n - 1, 0)))
    outputs = [f"ds_{i:0{digits}d}" for i in range(n)]
    tags = tags or {}
    unknown = set(tags) - set(names)
    if unknown:
        raise ValueError(f"tags name unknown nodes: {sorted(unknown)[:5]}")
    nodes = []
    for i, upstream in enumerate(edges):
        inputs = tuple(outputs[j] for j in upstream) or ("params:start",)
        if i == n - 1:
            inputs += ("params:increment",)
        nodes.append(GenNode(names[i], inputs, outputs[i], tuple(tags.get(names[i], ()))))
    return nodes


def _kedro_version() -> str:
    try:
        return importlib.metadata.version("kedro")
    except importlib.metadata.PackageNotFoundError:
        return "1.0.0"


def _pyproject(name: str, package: str) -> str:
    kedro_version = _kedro_version()
    major_minor = ".".join(kedro_version.split(".")[:2])
    return f"""[build-system]
requires = ["setuptools"]
build-backend = "setuptools.build_meta"

[project]
name = "{name}"
version = "0.1.0"
requires-python = ">=3.10"
dependencies = ["kedro~={major_minor}.0"]

[tool.setuptools.packages.find]
where = ["src"]
namespaces = false

[tool.kedro]
package_name = "{package}"
project_name = "{name}"
kedro_init_version = "{kedro_version}"
tools = "['None']"
example_pipeline = "False"
source_dir = "src"
"""


_SETTINGS = '''"""Settings of a generated project: Kedro defaults, plus the vertexai config pattern."""

from kedro.config import OmegaConfigLoader

DISABLE_HOOKS_FOR_PLUGINS = {disabled_hooks!r}

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {{
    "base_env": "base",
    "default_run_env": "local",
    "config_patterns": {{"vertexai": ["vertexai*", "vertexai*/**"]}},
}}
'''
# kedro-mlflow registers its hooks in every project of the environment it is installed in and then
# fails without an mlflow.yml; generated projects opt out unless the caller asks for MLflow.
_MLFLOW_DISTRIBUTIONS = ("kedro-mlflow", "kedro_mlflow")

_NODES = '''"""Cheap, real node functions: integer arithmetic, so every run gives a checkable number."""

MODULUS = 1_000_003


def source(start):
    """A pipeline input: the ``start`` parameter."""
    return int(start)


def combine(*values):
    """Sum the inputs plus one, kept small so long chains stay cheap."""
    return (sum(int(v) for v in values) + 1) % MODULUS
'''

_DATASETS = '''"""A file-backed dataset for catalog entries (no kedro-datasets needed): one JSON number per file."""

import json
from pathlib import Path

from kedro.io import AbstractDataset


class JSONNumberDataset(AbstractDataset):
    def __init__(self, filepath: str):
        self._filepath = Path(filepath)

    def load(self):
        return json.loads(self._filepath.read_text())

    def save(self, data) -> None:
        self._filepath.parent.mkdir(parents=True, exist_ok=True)
        self._filepath.write_text(json.dumps(data))

    def _exists(self) -> bool:
        return self._filepath.exists()

    def _describe(self):
        return {"filepath": str(self._filepath)}
'''

_REGISTRY = '''"""Pipelines of a generated project."""

from kedro.pipeline import Pipeline

from .pipeline import create_pipeline

SUBSETS = {subsets!r}


def register_pipelines() -> dict[str, Pipeline]:
    pipeline = create_pipeline()
    pipelines = {{"__default__": pipeline}}
    for name, nodes in SUBSETS.items():
        pipelines[name] = pipeline.only_nodes(*nodes)
    return pipelines
'''


def _pipeline_module(nodes: Sequence[GenNode]) -> str:
    lines = [
        '"""The generated pipeline: every node written out, as a hand-written project would."""',
        "",
        "from kedro.pipeline import Pipeline, node",
        "",
        "from .nodes import combine, source",
        "",
        "",
        "def create_pipeline(**kwargs) -> Pipeline:",
        "    return Pipeline(",
        "        [",
    ]
    for gen in nodes:
        func = "source" if gen.inputs == ("params:start",) else "combine"
        if func == "source" and len(gen.inputs) == 1:
            inputs = json.dumps(gen.inputs[0])
        else:
            inputs = json.dumps(list(gen.inputs))
        tags = f", tags={json.dumps(list(gen.tags))}" if gen.tags else ""
        lines.append(
            f"            node({func}, inputs={inputs}, outputs={json.dumps(gen.output)}, "
            f"name={json.dumps(gen.name)}{tags}),"
        )
    lines += ["        ]", "    )", ""]
    return "\n".join(lines)


def _yaml(data: Mapping[str, Any]) -> str:
    import yaml

    return yaml.safe_dump(dict(data), sort_keys=False, default_flow_style=False) if data else "{}\n"


def _catalog(package: str, catalog: Sequence[str] | Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    if isinstance(catalog, Mapping):
        return {name: dict(entry) for name, entry in catalog.items()}
    return {
        name: {"type": f"{package}.datasets.JSONNumberDataset", "filepath": f"data/{name}.json"}
        for name in catalog
    }


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def make_project(
    root: Path,
    name: str,
    shape: str = "chain",
    n: int = 10,
    *,
    catalog: Sequence[str] | Mapping[str, Mapping[str, Any]] = (),
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, Sequence[str]] | None = None,
    node_names: Sequence[str] | Callable[[int], str] | None = None,
    width: int | None = None,
    vertexai: str | Mapping[str, Any] | None = None,
    pipelines: Mapping[str, Sequence[str]] | None = None,
    package: str | None = None,
    mlflow_hooks: bool = False,
) -> Path:
    """Write a Kedro project ``root/name`` and return its folder.

    ``shape``/``n``/``width``: the graph (see :func:`edges_for`). ``catalog``: dataset names (``ds_<i>``)
    to persist as JSON files under ``data/`` (or full catalog entries by name); all others stay
    MemoryDatasets. ``params`` are merged over ``{"start": 1, "increment": 1}``. ``tags`` maps node names to
    tags. ``node_names``: n names, or a function of the index. ``vertexai``: the text or mapping for
    ``conf/base/vertexai.yml``. ``pipelines``: extra registered pipelines as node-name subsets. ``mlflow_hooks``: keep kedro-mlflow's hooks
    (off by default: they need an ``mlflow.yml``).
    """
    package = package or package_name_for(name)
    if not _PACKAGE_RE.match(package):
        raise ValueError(f"invalid package name {package!r}")
    nodes = build_nodes(shape, n, width=width, tags=tags, node_names=node_names)
    project = Path(root) / name
    src = project / "src" / package
    _write(project / "pyproject.toml", _pyproject(name, package))
    _write(project / ".telemetry", "consent: false\n")
    _write(
        src / "__init__.py",
        f'"""Generated Kedro project {name} ({shape}, {n} nodes)."""\n\n__version__ = "0.1.0"\n',
    )
    disabled_hooks = () if mlflow_hooks else _MLFLOW_DISTRIBUTIONS
    _write(src / "settings.py", _SETTINGS.format(disabled_hooks=disabled_hooks))
    _write(src / "nodes.py", _NODES)
    _write(src / "datasets.py", _DATASETS)
    _write(src / "pipeline.py", _pipeline_module(nodes))
    _write(
        src / "pipeline_registry.py",
        _REGISTRY.format(subsets={k: list(v) for k, v in (pipelines or {}).items()}),
    )
    _write(project / "conf" / "base" / "catalog.yml", _yaml(_catalog(package, catalog)))
    _write(project / "conf" / "base" / "parameters.yml", _yaml({**DEFAULT_PARAMS, **(params or {})}))
    _write(project / "conf" / "local" / ".gitkeep", "")
    (project / "data").mkdir(exist_ok=True)
    if vertexai is not None:
        text = vertexai if isinstance(vertexai, str) else _yaml(vertexai)
        _write(project / "conf" / "base" / "vertexai.yml", text)
    return project


def expected_outputs(nodes: Sequence[GenNode], params: Mapping[str, Any] | None = None) -> dict[str, int]:
    """What each node's output will hold after a full run (mirrors the generated node functions)."""
    values = {f"params:{k}": v for k, v in {**DEFAULT_PARAMS, **(params or {})}.items()}
    for gen in nodes:
        if gen.inputs == ("params:start",):
            values[gen.output] = int(values["params:start"])
        else:
            values[gen.output] = (sum(int(values[i]) for i in gen.inputs) + 1) % 1_000_003
    return {gen.output: values[gen.output] for gen in nodes}
