"""The real Docker path: the private offline engine (scripts/docker-engine.sh) and project images built
offline (scripts/build-project-image.sh), once per session.

The engine is found the way ``make docker-up`` leaves it: ``docker-engine.sh up`` is idempotent (a second
call answers in well under a second), starts the daemon if needed and prints ``export DOCKER_HOST=…`` (the
socket under ``$KVC_DOCKER_DIR``, default ``/var/tmp/kvc-docker``). When the engine cannot be reached these
tests FAIL with the script's own message; only ``KVC_SKIP_DOCKER=1``, set on purpose, skips them.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ENGINE = REPO / "scripts" / "docker-engine.sh"
BUILD = REPO / "scripts" / "build-project-image.sh"
EXAMPLE = REPO / "examples" / "spaceflights_lite"
BASE_IMAGE = "kvc-base:bookworm"
EXAMPLE_IMAGE = "kvc-test-spaceflights-lite:latest"
SECRET = "never-in-an-image-4f1c"

# The tiny project's pipeline: a parameter in, a printed answer out (so a run proves nodes and params work).
TINY_REGISTRY = '''"""Two nodes: multiply a parameter, print the answer."""

from kedro.pipeline import Pipeline, node


def multiply(factor: int) -> int:
    return factor * 6


def report(answer: int) -> None:
    print(f"answer={answer}", flush=True)


def register_pipelines() -> dict[str, Pipeline]:
    return {
        "__default__": Pipeline(
            [node(multiply, "params:factor", "answer", name="multiply"), node(report, "answer", None, name="report")]
        )
    }
'''


@dataclass(frozen=True)
class Built:
    """An image built by build-project-image.sh, with how long the build took and what it printed."""

    tag: str
    seconds: float
    log: str


def tail(text: str, n: int = 3000) -> str:
    return text[-n:]


def context_dir(tag: str) -> Path:
    """The build context (Dockerfile, wheels, project copy) build-project-image.sh wrote for ``tag``."""
    folder = Path(os.environ.get("KVC_DOCKER_DIR", "/var/tmp/kvc-docker")) / "contexts"
    return folder / re.sub(r"[^A-Za-z0-9_.-]", "-", tag)


def build_log(tag: str) -> str:
    """The docker build output build-project-image.sh kept for ``tag``."""
    return context_dir(tag).with_name(context_dir(tag).name + ".build.log").read_text()


@pytest.fixture(scope="session")
def docker_env() -> dict[str, str]:
    """The environment reaching the private engine (DOCKER_HOST set), after making sure it is up."""
    if os.environ.get("KVC_SKIP_DOCKER") == "1":
        pytest.skip("KVC_SKIP_DOCKER=1: Docker tests skipped on purpose")
    try:
        up = subprocess.run(
            ["bash", str(ENGINE), "up"], capture_output=True, text=True, timeout=900, check=False
        )
    except subprocess.TimeoutExpired:
        pytest.fail("`bash scripts/docker-engine.sh up` did not finish in 15 min", pytrace=False)
    match = re.search(r"^export DOCKER_HOST=(\S+)$", up.stdout, re.MULTILINE)
    if up.returncode != 0 or not match:
        pytest.fail(
            f"no Docker engine: `bash scripts/docker-engine.sh up` exited {up.returncode}:\n{tail(up.stderr)}\n"
            "(the Docker tests need it; set KVC_SKIP_DOCKER=1 only to skip them on purpose)",
            pytrace=False,
        )
    return {
        **os.environ,
        "DOCKER_HOST": match.group(1),
        "KEDRO_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "1",
    }


def docker(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the docker client against the private engine."""
    return subprocess.run(
        ["docker", *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def build_image(env: dict[str, str], project: Path, tag: str) -> Built:
    """build-project-image.sh PROJECT TAG; a failure fails the test with the script's message."""
    started = time.monotonic()
    proc = subprocess.run(
        ["bash", str(BUILD), str(project), tag],
        env=env,
        capture_output=True,
        text=True,
        timeout=1500,
        check=False,
    )
    if proc.returncode != 0:
        pytest.fail(f"building {tag} from {project} failed:\n{tail(proc.stderr)}", pytrace=False)
    assert proc.stdout.strip() == tag
    return Built(tag, time.monotonic() - started, proc.stderr)


@pytest.fixture(scope="session")
def tiny_project(kedro_new_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real `kedro new` project with two nodes, a parameter and only kedro as requirement."""
    project = tmp_path_factory.mktemp("docker-tiny") / "demo"
    shutil.copytree(kedro_new_template, project)
    kedro_line = next(
        line for line in (project / "requirements.txt").read_text().splitlines() if line.startswith("kedro")
    )
    (project / "requirements.txt").write_text(kedro_line + "\n")
    (project / "src" / "demo" / "pipeline_registry.py").write_text(TINY_REGISTRY)
    (project / "conf" / "base" / "parameters.yml").write_text("factor: 7\n")
    return project


@pytest.fixture(scope="session")
def example_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the bundled example plus what must never enter an image: a local secret and a data file."""
    project = tmp_path_factory.mktemp("docker-example") / "spaceflights_lite"
    ignore = shutil.ignore_patterns("data", ".kedro-vertex-ci", "*.egg-info", "__pycache__", "pipeline.json")
    shutil.copytree(EXAMPLE, project, ignore=ignore)
    (project / "conf" / "local").mkdir(parents=True, exist_ok=True)
    (project / "conf" / "local" / "credentials.yml").write_text(f"token: {SECRET}\n")
    (project / "data" / "01_raw").mkdir(parents=True)
    (project / "data" / "01_raw" / "private_rows.csv").write_text(f"a,b\n1,{SECRET}\n")
    return project


@pytest.fixture(scope="session")
def example_image(docker_env: dict[str, str], example_project: Path) -> Built:
    """The example's image, built once per session (one image keeps the cold CI run short)."""
    return build_image(docker_env, example_project, EXAMPLE_IMAGE)
