"""The slim step image: what a step imports is covered by kedro_vertex_ci/runtime/requirements.txt, and the
desk-only cloud clients are not; steps record node durations under a local root."""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, distribution, distributions
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import kedro_vertex_ci
from kedro_vertex_ci.runtime.requirements import REQUIREMENTS, requirements
from kedro_vertex_ci.runtime.timing import durations_folder

from .conftest import BUCKET

DESK_ONLY = {"google-cloud-aiplatform", "kfp", "google-cloud-build", "kubernetes"}
# What made the runtime 92 MB (issue 14): gcsfs's Google stack and the 23 MB zstandard wheel.
HEAVY = {"gcsfs", "google-cloud-storage", "grpcio", "protobuf", "aiohttp", "zstandard"}

# A step run through the console entry, dumping the top-level modules it imported when it exits.
PROBE = """
import atexit, json, sys
out, args = sys.argv[1], sys.argv[2:]
files = lambda: sorted({str(getattr(m, "__file__", None)) for m in list(sys.modules.values())} - {"None"})
atexit.register(lambda: open(out, "w").write(json.dumps(files())))
sys.argv = ["kedro-vertex-ci", "step", *args]
from kedro_vertex_ci.entry import main
main()
"""


def _closure(names: list[str]) -> set[str]:
    """Distributions the requirements pull in (installed ones, markers evaluated, no extras)."""
    seen: set[str] = set()
    todo = [Requirement(n) for n in names]
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        if name in seen or (req.marker and not req.marker.evaluate({"extra": ""})):
            continue
        try:
            dist = distribution(name)
        except PackageNotFoundError:
            continue
        seen.add(name)
        todo.extend(Requirement(r) for r in dist.requires or ())
    return seen


def _run_probe(project: Path, tmp_path: Path, root: str, env: dict[str, str]) -> list[str]:
    """The module files two chained steps imported (through ``root``)."""
    dump = tmp_path / "modules.json"
    run = ["--run-id", "run-fp", "--job-name", "job", "--root", root]
    files: set[str] = set()
    for nodes in (["--node", "make", "--write", "a"], ["--node", "double", "--read", "a", "--write", "b"]):
        proc = subprocess.run(
            [sys.executable, "-c", PROBE, str(dump), *nodes, *run],
            cwd=project, env={**os.environ, **env}, capture_output=True, text=True, timeout=180,
        )
        assert proc.returncode == 0, proc.stderr
        files |= {os.path.realpath(f) for f in json.loads(dump.read_text())}
    return sorted(files)


def _owners(files: list[str]) -> dict[str, str]:
    """File → the installed distribution it belongs to."""
    wanted, owner = set(files), {}
    for dist in distributions():
        for file in dist.files or ():
            if file.suffix == ".py":
                path = os.path.realpath(file.locate())
                if path in wanted:
                    owner[path] = canonicalize_name(dist.metadata["Name"])
    return owner


def _our_third_party_imports(files: list[str]) -> set[str]:
    """Dotted names of every non-relative import in the kedro_vertex_ci modules a step loaded."""
    package = Path(kedro_vertex_ci.__file__).resolve().parent
    names: set[str] = set()
    for file in files:
        if not file.startswith(str(package)):
            continue
        for item in ast.walk(ast.parse(Path(file).read_text(encoding="utf-8"))):
            if isinstance(item, ast.Import):
                names.update(alias.name for alias in item.names)
            elif isinstance(item, ast.ImportFrom) and not item.level and item.module:
                names.add(item.module)
    return {n for n in names if n.split(".")[0] not in sys.stdlib_module_names | {"kedro_vertex_ci"}}


def test_a_step_imports_only_what_the_runtime_requirements_install(rt_project, tmp_path, gcs_emulator):
    """Through gs:// (the path every Vertex step takes): each third-party module our step code imports
    comes from the runtime list's distributions, and no desk-only client is loaded at all."""
    env = {"STORAGE_EMULATOR_HOST": gcs_emulator, "NO_GCE_CHECK": "true"}
    files = _run_probe(rt_project, tmp_path, f"gs://{BUCKET}/footprint", env)
    installed = _closure(requirements())
    loaded = set(_owners(files).values())
    assert loaded & (DESK_ONLY | HEAVY) == set()
    missing = {}
    for name in _our_third_party_imports(files):
        top = name.split(".")[0]
        # kedro_mlflow: optional; compression.zstd: the standard library's from Python 3.14 (backports before)
        spec = importlib.util.find_spec(name) if top != "kedro_mlflow" and importlib.util.find_spec(top) else None
        if spec is not None and spec.origin:
            dist = _owners([os.path.realpath(spec.origin)]).get(os.path.realpath(spec.origin))
            if dist is not None and dist not in installed:
                missing[name] = dist
    assert missing == {}
    assert not installed & (DESK_ONLY | HEAVY)


def test_the_runtime_list_ships_in_the_package_and_fits_the_full_install():
    """Each runtime requirement is also a dependency of the full install, with the same version range."""
    full = {canonicalize_name(Requirement(r).name): Requirement(r).specifier for r in distribution("kedro-vertex-ci").requires or ()
            if "extra ==" not in r}
    for line in requirements():
        req = Requirement(line)
        assert full[canonicalize_name(req.name)] == req.specifier, line
    printed = subprocess.run(
        [sys.executable, "-m", "kedro_vertex_ci.runtime.requirements"], capture_output=True, text=True, check=True
    )
    assert Path(printed.stdout.strip()) == REQUIREMENTS and REQUIREMENTS.is_file()


def test_steps_record_node_durations_under_a_local_root(rt_project, tmp_path):
    from .conftest import step

    local = tmp_path / "root"
    run = ["--run-id", "run-d", "--job-name", "job"]
    assert step(rt_project, "--node", "make", "--node", "double", *run, "--root", str(local)).returncode == 0
    files = list(Path(durations_folder(str(local), "run-d")).glob("*.json"))
    assert len(files) == 1
    seconds = json.loads(files[0].read_text())["nodes"]
    assert set(seconds) == {"make", "double"} and all(0 <= s < 60 for s in seconds.values())
