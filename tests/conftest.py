"""Shared test setup: an offline, quiet Kedro, and real Kedro projects on disk."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")
os.environ.setdefault("NO_GCE_CHECK", "True")

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
CLI = str(VENV_BIN / "kedro-vertex-ci")
KEDRO = str(VENV_BIN / "kedro")


def minimal_vertexai(**run_config: object) -> str:
    """A small valid vertexai.yml; keyword arguments add run_config keys (YAML flow values)."""
    lines = ["project_id: my-project", "region: europe-west1", "run_config:", "  image: eu.gcr.io/my-project/img:1"]
    lines += [f"  {key}: {value}" for key, value in run_config.items()]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="session")
def kedro_new_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real `kedro new` project per session (offline starter), copied by tests that change it."""
    root = tmp_path_factory.mktemp("kedro-new")
    subprocess.run(
        [KEDRO, "new", "--name", "demo", "--tools", "none", "--example", "n", "--telemetry", "no"],
        cwd=root,
        check=True,
        capture_output=True,
        env={**os.environ, "KEDRO_DISABLE_TELEMETRY": "true"},
    )
    return root / "demo"


@pytest.fixture
def kedro_new_project(kedro_new_template: Path, tmp_path: Path) -> Path:
    """A fresh copy of a real `kedro new` project."""
    target = tmp_path / "demo"
    shutil.copytree(kedro_new_template, target)
    return target


@pytest.fixture(autouse=True)
def _forget_generated_project_packages() -> Iterator[None]:
    """Generated projects reuse package names (``demo``, ``spaceflights``…) from one pytest temp folder to the
    next: a module one test imported from its project must never serve the next test's project in this
    process (Kedro imports ``<package>.pipeline_registry`` and ``settings`` once per process)."""
    yield
    temp = str(Path(tempfile.gettempdir()).resolve())
    for name, module in list(sys.modules.items()):
        file = str(getattr(module, "__file__", None) or "")
        if file.startswith(temp) and "pytest-of-" in file:
            del sys.modules[name]


@pytest.fixture
def fresh_demo_modules() -> Iterator[None]:
    """Forget the `demo` package around a test that gives a `kedro new` project its own pipeline registry
    and runs the CLI in-process: Kedro imports `demo.pipeline_registry` once per process, so another test's
    registry would otherwise be used (and ours would leak into later tests)."""

    def forget() -> None:
        for name in [m for m in sys.modules if m == "demo" or m.startswith("demo.")]:
            del sys.modules[name]

    forget()
    yield
    forget()
