"""Seeded Kedro projects that combine the pipeline features users rely on, for differential tests.

:mod:`projectgen` writes one shape of pipeline, fast; this writes projects whose pipelines are random DAGs
dressed in Kedro's features, so a test can compare what ``kedro-vertex-ci`` does with what Kedro itself does
on the same project:

- transcoding (``x@num`` written, ``x@text`` read: two catalog entries on one file; and, in cases Kedro
  itself cannot run, intermediate transcoded names),
- namespaces (modular pipelines with mapped and namespaced inputs, outputs and parameters),
- dataset factories, optionally a catch-all ``{default}`` pattern, versioned datasets, ``PartitionedDataset``,
  ``MemoryDataset`` entries with each copy mode,
- ``params:`` with nested and list values, ``parameters`` as a whole dict,
- nodes with list and dict inputs and outputs, tags (``group.*`` ones for tag grouping),
- project hooks in ``settings.py`` (``before/after_node_run``, ``after_dataset_saved/loaded``) recording each
  call under ``hooklog/`` in the working directory, and a custom ``conf/logging.yml`` with a file handler.

Many generated pipelines ("cases") live in one project, each registered under its own name (``c007``), so
one project on disk and one Kedro start serve hundreds of cases; ``batch_<k>`` pipelines sum groups of
runnable cases (their datasets never overlap) for whole-run comparisons. Everything is a function of the
seed: the same seed writes the same bytes.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .projectgen import _pyproject, _write, _yaml

COPY_MODES = ("copy", "deepcopy", "assign")
GROUPINGS = ("identity", "tag", "auto")
KINDS = ("memory", "memory_copy", "json", "versioned", "factory", "transcoded", "partitioned", "interm_tc")


@dataclass(frozen=True)
class Case:
    """One generated pipeline: its registry name, source of ``create_pipeline``, catalog and parameters."""

    name: str
    code: str
    catalog: dict[str, Any]
    params: dict[str, Any]
    runnable: bool  # Kedro itself can run it (intermediate transcoded names it cannot)
    features: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class FeatureProject:
    """A written project: where it is, its package, its cases and the batches of runnable cases."""

    path: Path
    package: str
    cases: tuple[Case, ...]
    batches: dict[str, tuple[str, ...]]
    catch_all: bool


_NODES = '''"""Node functions of a generated feature project: deterministic integer arithmetic on any input shape."""

MODULUS = 1_000_003


def value(item):
    """An integer for whatever a node receives: numbers, text, lists, dicts, partitions (callables)."""
    if callable(item):
        return value(item())
    if isinstance(item, bool):
        return int(item)
    if isinstance(item, (int, float)):
        return int(item)
    if isinstance(item, str):
        return int(item) if item.strip().lstrip("-").isdigit() else len(item)
    if isinstance(item, dict):
        return sum((i + 1) * value(item[k]) for i, k in enumerate(sorted(item)))
    if isinstance(item, (list, tuple)):
        return sum((i + 1) * value(v) for i, v in enumerate(item))
    return 0


def _fold(args, kwargs, salt):
    total = salt
    for i, item in enumerate(args):
        total = total * 31 + (i + 1) * value(item)
    for key in sorted(kwargs):
        total = total * 37 + len(key) * value(kwargs[key])
    return total % MODULUS


def combine(*args, **kwargs):
    return _fold(args, kwargs, 7)


def split_list(*args, **kwargs):
    base = _fold(args, kwargs, 11)
    return [base, (base * 3 + 1) % MODULUS]


def split_dict(*args, **kwargs):
    base = _fold(args, kwargs, 13)
    return {"left": base, "right": (base * 5 + 2) % MODULUS}


def partitions(*args, **kwargs):
    base = _fold(args, kwargs, 17)
    return {f"part_{i}": (base + i) % MODULUS for i in range(3)}
'''

_DATASETS = '''"""File datasets of a generated feature project (no kedro-datasets needed): JSON numbers, text, versions."""

import glob
import json
from pathlib import Path, PurePosixPath

from kedro.io import AbstractDataset, AbstractVersionedDataset, DatasetError


class JSONNumberDataset(AbstractDataset):
    def __init__(self, filepath: str):
        self._filepath = Path(filepath)

    def load(self):
        return json.loads(self._filepath.read_text())

    def save(self, data) -> None:
        self._filepath.parent.mkdir(parents=True, exist_ok=True)
        self._filepath.write_text(json.dumps(data, sort_keys=True))

    def _exists(self) -> bool:
        return self._filepath.exists()

    def _describe(self):
        return {"filepath": str(self._filepath)}


class TextNumberDataset(JSONNumberDataset):
    """The same file seen as text: the transcoded twin of JSONNumberDataset."""

    def load(self):
        return self._filepath.read_text()

    def save(self, data) -> None:
        self._filepath.parent.mkdir(parents=True, exist_ok=True)
        self._filepath.write_text(str(data))


class VersionedJSONDataset(AbstractVersionedDataset):
    def __init__(self, filepath: str, version=None):
        super().__init__(
            PurePosixPath(filepath),
            version,
            exists_function=lambda path: Path(path).exists(),
            glob_function=lambda pattern: sorted(glob.glob(pattern)),
        )

    def load(self):
        return json.loads(Path(self._get_load_path()).read_text())

    def save(self, data) -> None:
        path = Path(self._get_save_path())
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, sort_keys=True))

    def _exists(self) -> bool:
        try:
            return Path(self._get_load_path()).exists()
        except DatasetError:
            return False

    def _describe(self):
        return {"filepath": str(self._filepath), "version": self._version}
'''

_HOOKS = '''"""Project hooks that record every node-level call, one JSON line per call, under ./hooklog/<node>.jsonl."""

import json
import os
from pathlib import Path

from kedro.framework.hooks import hook_impl


def _record(node_name, event):
    folder = Path(os.getcwd()) / "hooklog"
    folder.mkdir(exist_ok=True)
    with open(folder / f"{node_name}.jsonl", "a", encoding="utf-8") as out:
        out.write(json.dumps(event, sort_keys=True) + "\\n")


class RecordingHooks:
    @hook_impl
    def before_node_run(self, node, inputs):
        _record(node.name, ["before_node_run", sorted(inputs)])

    @hook_impl
    def after_node_run(self, node, outputs):
        _record(node.name, ["after_node_run", sorted(outputs)])

    @hook_impl
    def after_dataset_loaded(self, dataset_name, node):
        _record(node.name, ["after_dataset_loaded", dataset_name])

    @hook_impl
    def after_dataset_saved(self, dataset_name, node):
        _record(node.name, ["after_dataset_saved", dataset_name])
'''

_SETTINGS = '''"""Settings of a generated feature project: recording hooks, the vertexai config pattern."""

from kedro.config import OmegaConfigLoader

from .hooks import RecordingHooks

HOOKS = (RecordingHooks(),)
DISABLE_HOOKS_FOR_PLUGINS = ("kedro-mlflow", "kedro_mlflow")

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    "config_patterns": {"vertexai": ["vertexai*", "vertexai*/**"]},
}
'''

_REGISTRY = '''"""Pipelines of a generated feature project: one per case, batches of runnable cases, their sum."""

from kedro.pipeline import Pipeline

from . import cases

BATCHES = {batches!r}


def register_pipelines() -> dict[str, Pipeline]:
    # Pipeline([...]) validates the union once; sum() would rebuild it per case (quadratic: seconds per
    # Kedro start with a few hundred cases, paid again by every step).
    found = {{name[len("create_"):]: getattr(cases, name)() for name in dir(cases) if name.startswith("create_")}}
    pipelines = dict(found)
    for batch, names in BATCHES.items():
        pipelines[batch] = Pipeline([found[n] for n in names])
    pipelines["__default__"] = Pipeline([pipelines[b] for b in BATCHES])
    return pipelines
'''

LOGGING_YML = """version: 1
disable_existing_loggers: False
formatters:
  simple:
    format: "%(asctime)s - %(name)s - %(levelname)s - %(message)s"
handlers:
  console:
    class: logging.StreamHandler
    level: INFO
    formatter: simple
    stream: ext://sys.stdout
  info_file_handler:
    class: logging.handlers.RotatingFileHandler
    level: INFO
    formatter: simple
    filename: info.log
    maxBytes: 10485760
    backupCount: 20
    encoding: utf8
    delay: False
loggers:
  kedro:
    level: INFO
root:
  handlers: [console, info_file_handler]
"""


def _vertexai(grouping: str) -> dict[str, Any]:
    return {
        "project_id": "kvc-oracle",
        "region": "europe-west4",
        "run_config": {"image": "img:1", "grouping": {"cls": grouping}},
    }


class _CaseBuilder:
    """Builds one case: a random DAG, then features assigned to its datasets, nodes and parameters."""

    def __init__(
        self,
        rng: random.Random,
        name: str,
        package: str,
        catch_all: bool,
        allow_unrunnable: bool,
        acyclic_tags: bool = False,
    ):
        self.rng = rng
        self.acyclic_tags = acyclic_tags
        self._run_group = 0  # acyclic tags: the current run of consecutive nodes
        self.p = name
        self.package = package
        self.catch_all = catch_all
        self.allow_unrunnable = allow_unrunnable
        self.catalog: dict[str, Any] = {}
        self.features: set[str] = set()
        self.runnable = True

    def build(self) -> Case:
        rng, p = self.rng, self.p
        n = rng.randint(2, 7)
        params = {
            f"{p}_s": rng.randint(1, 9),
            f"{p}_cfg": {"inner": {"k": rng.randint(1, 9)}, "lst": [1, 2, 3]},
        }
        outputs: list[list[str]] = []  # per node: written dataset names (as the writer spells them)
        readable: list[tuple[str, str]] = []  # (name as a reader spells it, base dataset)
        namespaced = self._namespace_range(n)
        nodes: list[dict[str, Any]] = []
        for i in range(n):
            in_ns = i in namespaced
            pool = [r for r in readable if not (in_ns and "@" in r[0])]  # no transcoding across a namespace
            picks = rng.sample(pool, k=min(len(pool), rng.randint(0, 3))) if pool else []
            inputs = [name for name, _ in picks]
            inputs += self._param_inputs(in_ns, not inputs)
            outs = self._outputs(i, in_ns)
            outputs.append([o for o, _ in outs])
            for written, read_as in outs:
                readable.extend((r, written) for r in read_as)
            nodes.append({"i": i, "inputs": inputs, "outs": [o for o, _ in outs], "ns": in_ns})
        if namespaced:
            params[f"{p}_ns"] = {f"{p}_k": rng.randint(1, 9)}
        code = self._code(nodes, namespaced)
        return Case(p, code, self.catalog, params, self.runnable, frozenset(self.features))

    def _namespace_range(self, n: int) -> set[int]:
        if n < 3 or self.rng.random() < 0.5:
            return set()
        start = self.rng.randint(0, n - 2)
        self.features.add("namespace")
        return set(range(start, min(n, start + self.rng.randint(2, 3))))

    def _param_inputs(self, in_ns: bool, source: bool) -> list[str]:
        rng, p = self.rng, self.p
        choices = [f"params:{p}_s", f"params:{p}_cfg.inner.k", f"params:{p}_cfg.lst", f"params:{p}_cfg"]
        if not in_ns:
            choices.append("parameters")
        else:
            choices.append(f"params:{p}_k")  # namespaced: Kedro makes it params:<ns>.<p>_k
        picked = [c for c in choices if rng.random() < 0.15]
        if source and not picked:
            picked = [rng.choice(choices)]
        for item in picked:
            self.features.add("params_whole" if item == "parameters" else "params")
        return picked

    def _outputs(self, i: int, in_ns: bool) -> list[tuple[str, list[str]]]:
        """(written name, names readers use) for each output of node ``i``."""
        count = 2 if self.rng.random() < 0.3 else 1
        return [
            self._dataset(f"{self.p}_d{i}{'ab'[j] if count == 2 else ''}", in_ns, single=count == 1)
            for j in range(count)
        ]

    def _dataset(self, base: str, in_ns: bool, single: bool) -> tuple[str, list[str]]:
        rng = self.rng
        kinds = list(KINDS) if self.allow_unrunnable else [k for k in KINDS if k != "interm_tc"]
        if not single:  # a partitioned output is a dict of partitions: the node's only output
            kinds.remove("partitioned")
        if in_ns:  # namespaced datasets: plain names only (transcoding across a namespace is not generated)
            kinds = [k for k in kinds if k not in ("transcoded", "interm_tc", "factory")]
        kind = rng.choice(kinds)
        self.features.add(kind)
        pkg = self.package
        if kind == "memory":
            return base, [base]
        if kind == "memory_copy":
            mode = rng.choice(COPY_MODES if single else COPY_MODES[1:])
            self.catalog[base] = {"type": "MemoryDataset", "copy_mode": mode}
            return (base + "#dict" if mode == "copy" else base), [base]  # "copy" needs data with .copy()
        if kind == "json":
            self.catalog[base] = {
                "type": f"{pkg}.datasets.JSONNumberDataset",
                "filepath": f"data/{base}.json",
            }
            return base, [base]
        if kind == "versioned":
            self.catalog[base] = {
                "type": f"{pkg}.datasets.VersionedJSONDataset",
                "filepath": f"data/versioned/{base}.json",
                "versioned": True,
            }
            return base, [base]
        if kind == "factory":
            name = base.replace("_d", "_fac_d", 1)
            return name, [name]
        if kind == "partitioned":
            self.catalog[base] = {
                "type": "partitions.PartitionedDataset",
                "path": f"data/parts/{base}",
                "dataset": f"{pkg}.datasets.JSONNumberDataset",
                "filename_suffix": ".json",
            }
            return base + "#parts", [base]
        if kind == "transcoded":
            path = f"data/transcoded/{base}.json"
            self.catalog[f"{base}@num"] = {"type": f"{pkg}.datasets.JSONNumberDataset", "filepath": path}
            self.catalog[f"{base}@text"] = {"type": f"{pkg}.datasets.TextNumberDataset", "filepath": path}
            return f"{base}@num", [f"{base}@text", f"{base}@num"]
        self.runnable = False  # interm_tc: Kedro keeps m@a and m@b as two memory datasets
        return f"{base}@a", [f"{base}@b"]

    def _group_tag(self, i: int, n: int) -> str | None:
        """A ``group.*`` tag or None. Acyclic: groups are runs of consecutive nodes (nodes are numbered in
        topological order, so no path can leave such a group and come back); else random, cycles possible."""
        rng, p = self.rng, self.p
        if not self.acyclic_tags:
            return f"group.{p}_g{rng.randint(0, 2)}" if rng.random() < 0.5 else None
        if i == 0:
            self._run_group = 0
        elif rng.random() < 0.4:
            self._run_group += 1
        return f"group.{p}_g{self._run_group}" if self._run_group % 2 == 0 else None

    def _code(self, nodes: Sequence[dict[str, Any]], namespaced: set[int]) -> str:
        rng, p = self.rng, self.p
        lines = [f"def create_{p}():", "    outer = []", "    inner = []"]
        ns_produced = {o.split("#")[0] for spec in nodes if spec["ns"] for o in spec["outs"]}
        for spec in nodes:
            outs = [o.split("#")[0] for o in spec["outs"]]
            if any(o.endswith(("#parts", "#dict")) for o in spec["outs"]):
                func = "partitions"
            elif len(outs) == 2:
                func = rng.choice(["split_list", "split_dict"])
            else:
                func = "combine"
            inputs: Any = list(spec["inputs"])
            if inputs and rng.random() < 0.3:
                inputs = {f"x{j}": name for j, name in enumerate(inputs)}
                self.features.add("dict_inputs")
            elif len(inputs) == 1 and rng.random() < 0.5:
                inputs = inputs[0]
            elif not inputs:
                inputs = None
            outputs: Any
            if func == "split_dict":
                outputs = {"left": outs[0], "right": outs[1]}
                self.features.add("dict_outputs")
            elif func == "split_list":
                outputs = outs
                self.features.add("list_outputs")
            else:
                outputs = outs[0]
            tags = [f"{p}_t{rng.randint(0, 2)}"]
            group = self._group_tag(spec["i"], len(nodes))
            if group is not None:
                tags.append(group)
                self.features.add("tags")
            target = "inner" if spec["ns"] else "outer"
            lines.append(
                f"    {target}.append(node({func}, {inputs!r}, {outputs!r}, name={p + '_n' + str(spec['i'])!r},"
                f" tags={tags!r}))"
            )
        if namespaced:
            used_outside = {
                name.split("@")[0]
                for spec in nodes
                if not spec["ns"]
                for name in spec["inputs"]
                if not name.startswith("param")
            }
            mapped_out = sorted(
                d
                for d in ns_produced
                if d in used_outside or d in self.catalog or self.catch_all or rng.random() < 0.3
            )
            ns_inputs = sorted(
                {
                    name
                    for spec in nodes
                    if spec["ns"]
                    for name in spec["inputs"]
                    if not name.startswith("param") and name not in ns_produced
                }
            )
            ns_params = sorted(
                {
                    name[len("params:") :]
                    for spec in nodes
                    if spec["ns"]
                    for name in spec["inputs"]
                    if name.startswith("params:") and name != f"params:{p}_k"
                }
            )
            lines.append(
                f"    ns = Pipeline(inner, namespace={p + '_ns'!r}, inputs={set(ns_inputs) or None!r},"
                f" outputs={set(mapped_out) or None!r}, parameters={set(ns_params) or None!r})"
            )
            lines.append("    return Pipeline(outer) + ns")
        else:
            lines.append("    return Pipeline(outer)")
        return "\n".join(lines) + "\n"


def generate_cases(
    seed: int,
    count: int,
    package: str,
    *,
    catch_all: bool = False,
    allow_unrunnable: bool = True,
    acyclic_tags: bool = False,
    prefix: str = "c",
) -> tuple[Case, ...]:
    """``count`` cases from ``seed``. With ``allow_unrunnable`` about one in ten uses intermediate
    transcoding, which Kedro itself cannot run; ``acyclic_tags`` keeps tag grouping free of cycles."""
    rng = random.Random(seed)
    cases = []
    for k in range(count):
        unrunnable = allow_unrunnable and rng.random() < 0.1
        builder = _CaseBuilder(rng, f"{prefix}{k:03d}", package, catch_all, unrunnable, acyclic_tags)
        cases.append(builder.build())
    return tuple(cases)


def write_feature_project(
    root: Path, name: str, cases: Sequence[Case], *, catch_all: bool = False, batch_size: int = 10
) -> FeatureProject:
    """Write the project ``root/name`` holding ``cases``; ``conf/<grouping>/vertexai.yml`` per grouping."""
    package = name
    project = Path(root) / name
    src = project / "src" / package
    _write(project / "pyproject.toml", _pyproject(name, package))
    _write(project / ".telemetry", "consent: false\n")
    _write(src / "__init__.py", f'"""Generated Kedro feature project {name}."""\n\n__version__ = "0.1.0"\n')
    _write(src / "settings.py", _SETTINGS)
    _write(src / "hooks.py", _HOOKS)
    _write(src / "nodes.py", _NODES)
    _write(src / "datasets.py", _DATASETS)
    header = [
        '"""Generated cases: one create_<case>() per pipeline."""',
        "",
        "from kedro.pipeline import Pipeline, node",
        "",
        "from .nodes import combine, partitions, split_dict, split_list",
        "",
    ]
    _write(src / "cases.py", "\n".join(header) + "\n" + "\n\n".join(c.code for c in cases))
    runnable = [c.name for c in cases if c.runnable]
    batches = {
        f"batch_{k // batch_size}": tuple(runnable[k : k + batch_size])
        for k in range(0, len(runnable), batch_size)
    }
    _write(src / "pipeline_registry.py", _REGISTRY.format(batches=batches))
    catalog: dict[str, Any] = {
        "{case}_fac_{rest}": {
            "type": f"{package}.datasets.JSONNumberDataset",
            "filepath": "data/fac/{case}/{rest}.json",
        }
    }
    if catch_all:
        catalog["{default}"] = {
            "type": f"{package}.datasets.JSONNumberDataset",
            "filepath": "data/default/{default}.json",
        }
    for case in cases:
        catalog.update(case.catalog)
    params: dict[str, Any] = {}
    for case in cases:
        params.update(case.params)
    _write(project / "conf" / "base" / "catalog.yml", _yaml(catalog))
    _write(project / "conf" / "base" / "parameters.yml", _yaml(params))
    _write(project / "conf" / "logging.yml", LOGGING_YML)
    _write(project / "conf" / "local" / ".gitkeep", "")
    for grouping in GROUPINGS:
        _write(project / "conf" / grouping / "vertexai.yml", json.dumps(_vertexai(grouping), indent=2) + "\n")
    _write(project / "conf" / "base" / "vertexai.yml", json.dumps(_vertexai("identity"), indent=2) + "\n")
    (project / "data").mkdir(exist_ok=True)
    return FeatureProject(project, package, tuple(cases), batches, catch_all)
