"""The compiled spec records the compiler's version; a step in an image with an incompatible kedro-vertex-ci
refuses it with both versions and the fix, before argparse could trip over options it does not know."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from kedro_vertex_ci import __version__
from kedro_vertex_ci.argv import VERSION_FLAG, compatible, version_mismatch
from kedro_vertex_ci.compiler import compile_pipeline
from kedro_vertex_ci.testing import make_project

BIN = Path(sys.executable).parent


@pytest.mark.parametrize(
    ("compiled_by", "installed", "ok"),
    [
        ("0.1.0", "0.1.0", True),
        ("0.1.3", "0.1.0", True),
        ("0.2.0", "0.1.0", False),
        ("0.1.0", "1.0.0", False),
        ("1.4.2", "1.0.0", True),
        ("2.0.0", "1.9.9", False),
        ("1.2.0rc1", "1.0.0", True),
    ],
)
def test_compatibility_rule(compiled_by: str, installed: str, ok: bool) -> None:
    assert compatible(compiled_by, installed) is ok


def test_every_compiled_step_records_the_compiler_version(tmp_path: Path) -> None:
    project = make_project(tmp_path, "versioned", shape="diamond", n=4,
                           vertexai={"project_id": "acme-ml", "region": "europe-west4",
                                     "run_config": {"image": "europe-west4-docker.pkg.dev/acme-ml/kedro/v",
                                                    "root": "gs://acme-runs/v"}})
    spec = json.loads(compile_pipeline(project).spec_bytes)
    executors = spec["deploymentSpec"]["executors"]
    assert executors
    for executor in executors.values():
        args = executor["container"]["args"]
        assert args[args.index(VERSION_FLAG) + 1] == __version__


def test_step_refuses_a_spec_from_an_incompatible_version() -> None:
    newer = "99.0.0"
    argv = [str(BIN / "kedro-vertex-ci"), "step", VERSION_FLAG, newer, "--a-flag-from-the-future", "x",
            "--run-id", "r", "--root", "/tmp/nowhere"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2
    message = proc.stdout + proc.stderr
    assert f"compiled by kedro-vertex-ci {newer}" in message and f"runs kedro-vertex-ci {__version__}" in message
    assert f"Rebuild the image so it installs kedro-vertex-ci=={newer}" in message
    assert "Traceback" not in message and "unrecognized arguments" not in message


def test_same_version_passes_the_check() -> None:
    assert version_mismatch([VERSION_FLAG, __version__, "--run-id", "r"]) is None
    assert version_mismatch(["--run-id", "r"]) is None  # specs compiled before versions were recorded
