"""A real Kedro project and the real command group, invoked in-process (click's CliRunner)."""

from __future__ import annotations

import os
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from kedro_vertex_ci.cli import cli
from kedro_vertex_ci.testing.projectgen import make_project
from tests.conftest import minimal_vertexai

PARAMS = {
    "start": 1,
    "increment": 1,
    "test_size": 0.2,
    "name": "x",
    "flag": True,
    "ids": [1, 2],
    "empty": None,
    "model_options": {"max_depth": 3, "name": "tree", "sub": {"a": 1}},
}


@dataclass(frozen=True)
class Outcome:
    exit_code: int
    output: str  # stdout and stderr as the user sees them
    crashed: str  # the traceback of an exception that escaped, "" when none did


def invoke(args: list[str], *, cwd: Path, env: dict[str, str] | None = None) -> Outcome:
    """Run ``kedro-vertex-ci ARGS`` in-process from ``cwd``: exit code, output, and any escaped exception."""
    old = Path.cwd()
    os.chdir(cwd)
    try:
        result = CliRunner().invoke(cli, args, env=env, catch_exceptions=True)
    finally:
        os.chdir(old)
    crashed = ""
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        crashed = "".join(traceback.format_exception(result.exception))
    return Outcome(result.exit_code, result.output, crashed)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("cli")
    yield make_project(root, "badinput", "chain", 3, params=PARAMS, vertexai=minimal_vertexai())
