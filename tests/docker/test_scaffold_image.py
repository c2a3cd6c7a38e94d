"""The image `init --github` describes, built the way Cloud Build builds it, runs the example end to end.

Exactly what Cloud Build receives: the project after `init --github`, packed by the tarball builder
``kedro-vertex-ci build`` uploads (``gcp/source.py``: .dockerignore honoured, conf/local always left out), fed
to the real Docker engine as a gzip'd context on stdin, with the Dockerfile `init --github` wrote unchanged.
Only two build args differ from Cloud Build: BASE_IMAGE (the offline Debian base instead of python:slim) and
PIP_INDEX_URL (a loopback index of wheels built on this host instead of PyPI). Then `run-local --runner docker`
runs every step of the example in that image.

The regression it guards: the context never carries conf/local, Kedro's default run environment is `local`,
so an image without that folder fails every step at start.
"""

from __future__ import annotations

import hashlib
import html
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from kedro_vertex_ci.gcp.source import collect_files, make_tarball

from .conftest import BASE_IMAGE, EXAMPLE, EXAMPLE_IMAGE, Built, context_dir, docker, tail

# A cold build installs the example's and kedro-vertex-ci's dependencies into the image: minutes on 2 cores.
pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(1800)]

BIN = Path(sys.executable).parent
TAG = "kvc-test-init-github-scaffold:latest"
LABEL = "org.kvc.test=init-github-scaffold"
OUTPUTS = ("data/03_primary/model_input_table.parquet", "data/06_models/regressor.pickle",
           "data/08_reporting/metrics.json")


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def write_simple_index(wheels: list[Path], folder: Path) -> None:
    """A PEP 503 index of ``wheels`` under ``folder`` (files hard-linked or copied in)."""
    files = folder / "files"
    files.mkdir(parents=True)
    projects: dict[str, list[str]] = {}
    for wheel in wheels:
        try:
            os.link(wheel, files / wheel.name)
        except OSError:
            shutil.copy2(wheel, files / wheel.name)
        projects.setdefault(_normalise(wheel.name.split("-")[0]), []).append(wheel.name)
    for project, names in projects.items():
        page = folder / "simple" / project
        page.mkdir(parents=True)
        links = "".join(f'<a href="../../files/{html.escape(n)}">{html.escape(n)}</a>\n' for n in sorted(names))
        (page / "index.html").write_text(f"<!DOCTYPE html><html><body>\n{links}</body></html>\n")


def _build_tools(env: dict[str, str]) -> list[Path]:
    """setuptools (>= 70.1 needs no `wheel`) for building the project itself, downloaded once and cached."""
    folder = Path(os.environ.get("KVC_DOCKER_DIR", "/var/tmp/kvc-docker")) / "wheels" / "scaffold-build-tools"
    if not list(folder.glob("setuptools-*.whl")):
        folder.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "-d", str(folder),
             "setuptools>=70.1"], env=env, capture_output=True, text=True, timeout=300, check=False)
        assert proc.returncode == 0, proc.stderr[-2000:]
    return sorted(folder.glob("setuptools-*.whl"))


@pytest.fixture(scope="module")
def wheel_index(example_image: Built, docker_env: dict[str, str], tmp_path_factory) -> Iterator[str]:
    """A loopback package index: the wheels build-project-image.sh made for the example (its requirements and
    kedro-vertex-ci's, plus this checkout's kedro-vertex-ci wheel), and setuptools. The URL path carries the
    kedro-vertex-ci wheel's hash, so Docker's layer cache is reused exactly while that wheel is unchanged."""
    context = context_dir(EXAMPLE_IMAGE)
    ours = sorted((context / "kvc").glob("kedro_vertex_ci-*.whl"))
    assert len(ours) == 1, ours
    wheels = [*sorted((context / "deps").glob("*.whl")), *ours, *_build_tools(docker_env)]
    key = hashlib.sha256(ours[0].read_bytes()).hexdigest()[:12]
    root = tmp_path_factory.mktemp("wheel-index")
    write_simple_index(wheels, root / key)
    server = ThreadingHTTPServer(("127.0.0.1", _stable_port(key)), partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/{key}/simple/"
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 — the base class's name
        """pip fetches a few hundred files: keep them out of the test output."""


def _stable_port(key: str) -> int:
    """The same free port for the same wheels where possible (the index URL is a build arg: a new port would
    invalidate Docker's cached install layer); any free port otherwise."""
    import socket

    port = 41000 + int(key, 16) % 2000
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return 0
    return port


@pytest.fixture(scope="module")
def scaffolded_example(tmp_path_factory) -> Path:
    """A copy of the example as a user has it (with a conf/local secret), after `init --github`."""
    project = tmp_path_factory.mktemp("scaffold-e2e") / "spaceflights_lite"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns(
        "data", ".kedro-vertex-ci", "*.egg-info", "__pycache__", "pipeline.json", "Dockerfile", ".dockerignore"))
    (project / "conf" / "local").mkdir(parents=True, exist_ok=True)
    (project / "conf" / "local" / "credentials.yml").write_text("token: never-in-an-image\n")
    gitconfig = project.parent / "gitconfig"
    gitconfig.write_text(f'[url "file://{project.parent}/offline/"]\n\tinsteadOf = https://github.com/\n')
    env = {**os.environ, "GIT_CONFIG_GLOBAL": str(gitconfig), "GIT_CONFIG_NOSYSTEM": "1"}
    proc = subprocess.run(
        [str(BIN / "kedro-vertex-ci"), "--project", str(project), "init", "acme-ml", "europe-west4", "--github",
         "--github-repo", "acme/spaceflights-lite"],
        env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (project / "Dockerfile").is_file() and (project / ".dockerignore").is_file()
    return project


@pytest.fixture(scope="module")
def scaffold_image(scaffolded_example: Path, wheel_index: str, docker_env: dict[str, str]) -> str:
    files = collect_files(scaffolded_example)
    assert not [f for f in files if f.startswith("conf/local")]  # what Cloud Build gets has no conf/local
    assert "Dockerfile" in files
    context = make_tarball(scaffolded_example, files)
    proc = subprocess.run(
        ["docker", "build", "--network", "host", "--label", LABEL,
         "--build-arg", f"BASE_IMAGE={BASE_IMAGE}", "--build-arg", f"PIP_INDEX_URL={wheel_index}",
         "-t", TAG, "-"],
        input=context, env=docker_env, capture_output=True, timeout=900, check=False)
    assert proc.returncode == 0, tail(proc.stdout.decode(errors="replace")) + tail(proc.stderr.decode(errors="replace"))
    docker(docker_env, "image", "prune", "-f", "--filter", "dangling=true", "--filter", f"label={LABEL}")
    return TAG


def test_the_scaffolded_image_runs_every_step_of_the_example(
    scaffold_image: str, scaffolded_example: Path, docker_env: dict[str, str]
) -> None:
    env = {**docker_env, "PATH": os.pathsep.join((str(BIN), docker_env["PATH"])),
           "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false"}
    proc = subprocess.run(
        [str(BIN / "kedro-vertex-ci"), "run-local", "--runner", "docker", "--image", scaffold_image, "--json",
         "--run-id", "scaffolded"],
        cwd=scaffolded_example, env=env, capture_output=True, text=True, timeout=900, check=False)
    assert proc.returncode == 0, tail(proc.stdout, 5000) + tail(proc.stderr)
    result = json.loads(proc.stdout)
    assert result["state"] == "succeeded" and all(s["state"] == "done" for s in result["steps"])
    for output in OUTPUTS:
        assert (scaffolded_example / output).is_file(), output


def test_the_image_has_an_empty_conf_local_and_the_pinned_kedro_vertex_ci(
    scaffold_image: str, docker_env: dict[str, str]
) -> None:
    from kedro_vertex_ci import __version__

    probe = docker(docker_env, "run", "--rm", "--network", "none", scaffold_image, "sh", "-c",
                   "ls -A conf/local; echo ---; kedro-vertex-ci --version")
    assert probe.returncode == 0, probe.stderr
    listing, _, version = probe.stdout.partition("---")
    assert listing.strip() == ""  # created empty in the image: the secret stayed on the desk
    assert __version__ in version
