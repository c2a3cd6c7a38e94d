"""A plugin the project disables is never imported by a step (kedro-mlflow alone costs ~2 s per step)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from kedro_vertex_ci.testing.projectgen import make_project

PROBE = """
import sys
from kedro_vertex_ci.runtime.main import main
code = main(["--node", "node_0", "--run-id", "r1", "--root", sys.argv[1]])
print("exit", code, "mlflow imported:", "mlflow" in sys.modules)
"""


def test_disabled_kedro_mlflow_is_not_imported_by_a_step(tmp_path: Path) -> None:
    project = make_project(tmp_path, "noplugin", "chain", 2)
    assert "kedro-mlflow" in next(project.glob("src/*/settings.py")).read_text()
    result = subprocess.run(
        [sys.executable, "-c", PROBE, str(tmp_path / "root")], cwd=project, capture_output=True, text=True, timeout=120
    )
    assert "exit 0 mlflow imported: False" in result.stdout, result.stderr[-2000:]


def test_enabled_plugin_hooks_still_run(tmp_path: Path) -> None:
    project = make_project(tmp_path, "withplugin", "chain", 2, mlflow_hooks=True)
    (project / "conf" / "local" / "mlflow.yml").write_text(
        f"server:\n  mlflow_tracking_uri: sqlite:///{tmp_path / 'mlflow.db'}\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", PROBE, str(tmp_path / "root")], cwd=project, capture_output=True, text=True, timeout=180
    )
    assert "exit 0 mlflow imported: True" in result.stdout, result.stderr[-2000:]
