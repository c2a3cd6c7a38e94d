"""Helpers for the runtime-parity extras: generated projects with hand-written nodes, compiled step commands.

A project starts as :func:`kedro_vertex_ci.testing.projectgen.make_project` writes it; tests then replace its
pipeline with a few nodes of their own (``extra_nodes.py``) and add datasets that echo what Kedro handed them.
Steps run as Vertex runs them: the args of the compiled spec, placeholders substituted, in a subprocess.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from kedro_vertex_ci.testing.projectgen import make_project, package_name_for

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")
os.environ.setdefault("NO_GCE_CHECK", "True")

BIN = Path(sys.executable).parent
CLI = str(BIN / "kedro-vertex-ci")

ECHO_DATASET = '''
"""Saves the data together with the credentials Kedro resolved for the entry (what a real client would use)."""

import json
from pathlib import Path

from kedro.io import AbstractDataset


class EchoDataset(AbstractDataset):
    def __init__(self, filepath, credentials=None, note=None):
        self._filepath = Path(filepath)
        self._credentials = credentials
        self._note = note

    def load(self):
        return json.loads(self._filepath.read_text())["data"]

    def save(self, data):
        self._filepath.parent.mkdir(parents=True, exist_ok=True)
        payload = {"data": data, "credentials": self._credentials, "note": self._note}
        self._filepath.write_text(json.dumps(payload))

    def _exists(self):
        return self._filepath.exists()

    def _describe(self):
        return {"filepath": str(self._filepath)}
'''


def forget_generated_packages(basetemp: Path) -> None:
    """Drop modules imported from generated projects: compile runs in this process, and a package name
    used again (``my_project``) must be imported from the new project, not from a cached earlier one."""
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None) or ""
        if file.startswith(str(basetemp)):
            del sys.modules[name]


@pytest.fixture(autouse=True)
def _fresh_project_packages(tmp_path_factory: pytest.TempPathFactory):
    basetemp = tmp_path_factory.getbasetemp()
    forget_generated_packages(basetemp)
    yield
    forget_generated_packages(basetemp)


def extras_project(
    root: Path,
    name: str,
    *,
    nodes: str,
    pipeline: str,
    catalog: Mapping[str, Any] | None = None,
    params: Mapping[str, Any] | None = None,
    vertexai: Mapping[str, Any] | None = None,
    pipelines: str | None = None,
    files: Mapping[str, str] | None = None,
) -> Path:
    """A generated project whose ``__default__`` pipeline is ``pipeline`` (the body of ``Pipeline([...])``).

    ``nodes``: Python source of ``extra_nodes.py``. ``params``: the whole parameters.yml (``{}`` for none).
    ``pipelines``: extra ``name: Pipeline([...])`` entries for the registry. ``files``: more package modules.
    """
    package = package_name_for(name)
    project = make_project(root, name, "chain", 1, vertexai=vertexai)
    src = project / "src" / package
    (src / "extra_nodes.py").write_text(textwrap.dedent(nodes))
    (src / "echo.py").write_text(ECHO_DATASET)
    for module, text in (files or {}).items():
        (src / module).write_text(textwrap.dedent(text))
    registry = f"""
from kedro.pipeline import Pipeline, node

from .extra_nodes import *  # noqa: F403


def register_pipelines():
    return {{
        "__default__": Pipeline([{pipeline}]),
        {pipelines or ""}
    }}
"""
    (src / "pipeline_registry.py").write_text(registry)
    import yaml

    (project / "conf" / "base" / "parameters.yml").write_text(yaml.safe_dump(dict(params or {})))
    entries = {k: {"type": f"{package}.echo.EchoDataset", **v} for k, v in (catalog or {}).items()}
    (project / "conf" / "base" / "catalog.yml").write_text(yaml.safe_dump(entries) if entries else "{}\n")
    return project


def compiled_step_args(project: Path, env: str | None = None) -> dict[str, list[str]]:
    """Each compiled task's args (after ``kedro-vertex-ci step``) as written in the spec, in run order."""
    from kedro_vertex_ci.compiler import compile_pipeline

    compiled = compile_pipeline(project, env)
    executors = compiled.spec["deploymentSpec"]["executors"]
    steps = [*compiled.plan.steps, *([compiled.plan.on_exit] if compiled.plan.on_exit else [])]
    return {s.name: list(executors["exec-" + s.name]["container"]["args"]) for s in steps}


def step_commands(project: Path, run_id: str, root: Path, env: str | None = None) -> list[list[str]]:
    """The args each task's container gets, placeholders substituted by run-local's renderer (as Vertex does)."""
    from kedro_vertex_ci.compiler import compile_pipeline
    from kedro_vertex_ci.local.placeholders import RunContext, render_command
    from kedro_vertex_ci.local.specgraph import build_graph

    graph = build_graph(compile_pipeline(project, env).spec)
    defaults = {name: spec_input.default for name, spec_input in graph.inputs.items()}
    ctx = RunContext(job_name=f"job-{run_id}", run_id=run_id, root=str(root), params=defaults)
    commands = []
    for task in graph.tasks:
        command, args = render_command(task, ctx)
        assert command[-1] == "step"
        commands.append(args)
    return commands


def run_step(project: Path, args: list[str], env: Mapping[str, str] | None = None,
             timeout: int = 120) -> subprocess.CompletedProcess[str]:
    """``kedro-vertex-ci step ARGS`` in ``project``, as the container runs it."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([CLI, "step", *args], cwd=project, env=full_env, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def ok(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
