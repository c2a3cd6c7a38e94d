"""The Docker scripts' guards: wrong input is a one-line error before anything is installed or built."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from .conftest import BUILD, ENGINE, REPO


def _bash(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **(env or {})},
    )


def test_the_engine_folder_may_not_be_inside_the_repository():
    inside = REPO / ".kvc-docker-test"
    proc = _bash(str(ENGINE), "up", env={"KVC_DOCKER_DIR": str(inside), "KVC_SKIP_DOCKER": ""})
    assert proc.returncode == 1
    assert "inside the repository" in proc.stderr and proc.stdout == ""
    assert not inside.exists()  # refused before creating anything


def test_engine_usage_and_status_of_a_folder_with_no_daemon(tmp_path: Path):
    assert _bash(str(ENGINE), "start").returncode == 2
    status = _bash(str(ENGINE), "status", env={"KVC_DOCKER_DIR": str(tmp_path / "none")})
    assert status.returncode == 3 and status.stdout.startswith("stopped:")


def test_building_a_folder_that_is_not_a_kedro_project_is_refused(tmp_path: Path):
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    proc = _bash(str(BUILD), str(tmp_path), "x:1")
    assert proc.returncode == 1
    assert "no [tool.kedro] table" in proc.stderr and proc.stdout == ""
    missing = _bash(str(BUILD), str(tmp_path / "nope"), "x:1")
    assert missing.returncode == 1 and "no such project folder" in missing.stderr
    assert _bash(str(BUILD), str(tmp_path)).returncode == 2  # usage


def test_skip_docker_makes_up_a_no_op(tmp_path: Path):
    folder = tmp_path / "engine"
    proc = _bash(str(ENGINE), "up", env={"KVC_DOCKER_DIR": str(folder), "KVC_SKIP_DOCKER": "1"})
    assert proc.returncode == 0 and proc.stdout == "" and "KVC_SKIP_DOCKER=1" in proc.stderr
    assert not folder.exists()
