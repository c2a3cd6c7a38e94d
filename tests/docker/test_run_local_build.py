"""``run-local --runner docker`` builds the project's own Dockerfile with the real engine, when it must.

The example's Dockerfile is built FROM the session's offline example image (``--build-arg BASE_IMAGE=…``:
the only substitution), so pip finds every requirement already installed and needs no index.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kedro_vertex_ci.local.imagebuild import build_context, ensure_image

from .conftest import EXAMPLE, Built, docker, tail

pytestmark = [pytest.mark.docker, pytest.mark.slow]

BIN = Path(sys.executable).parent
CLI = str(BIN / "kedro-vertex-ci")


def _copy_example(target: Path) -> Path:
    ignore = shutil.ignore_patterns("data", ".kedro-vertex-ci", "*.egg-info", "__pycache__", "pipeline.json")
    shutil.copytree(EXAMPLE, target, ignore=ignore)
    return target


def _run_local(project: Path, env: dict[str, str], *extra: str) -> subprocess.CompletedProcess[str]:
    argv = [CLI, "run-local", "--runner", "docker", *extra]
    return subprocess.run(argv, cwd=project, env={**env, "PATH": f"{BIN}{os.pathsep}{env['PATH']}"},
                          capture_output=True, text=True, timeout=900, check=False)


@pytest.fixture(scope="module")
def built_run(docker_env: dict[str, str], example_image: Built, tmp_path_factory) -> tuple[Path, dict, str]:
    """(project, --json result, stderr, tag expected before the run) of a run that had to build its image."""
    project = _copy_example(tmp_path_factory.mktemp("build-run") / "spaceflights_lite")
    expected = build_context(project, {"BASE_IMAGE": example_image.tag}).tag
    docker(docker_env, "image", "rm", "-f", expected)  # an earlier session's build of the same content: gone
    proc = _run_local(project, docker_env, "--build-arg", f"BASE_IMAGE={example_image.tag}", "--json",
                      "--run-id", "built")
    assert proc.returncode == 0, tail(proc.stdout, 4000) + tail(proc.stderr)
    return project, json.loads(proc.stdout), proc.stderr, expected


def test_missing_image_is_built_from_the_cloud_build_context_and_the_run_succeeds(built_run, docker_env, example_image):
    project, result, stderr, tag = built_run
    context = build_context(project, {"BASE_IMAGE": example_image.tag})
    assert context.tag == tag  # what the run wrote (data/, logs) is not part of the image's context
    assert f"Image {context.tag}: built in" in stderr
    assert "the spec itself is unchanged" in stderr
    assert result["state"] == "succeeded" and all(s["state"] == "done" for s in result["steps"])
    assert json.loads((project / "data/08_reporting/metrics.json").read_text())["r2"] > 0.8
    labels = docker(docker_env, "image", "inspect", "--format", "{{json .Config.Labels}}", context.tag)
    assert json.loads(labels.stdout)["org.kedro-vertex-ci.context"] == context.digest
    # The image holds what Cloud Build would get: conf/local's content and local data never enter it.
    listing = docker(docker_env, "run", "--rm", "--network", "none", "--entrypoint", "sh", context.tag, "-c",
                     "ls -A conf/local | wc -l; ls -A data 2>/dev/null | wc -l")
    assert listing.returncode == 0 and listing.stdout.split() == ["0", "0"], listing.stdout + listing.stderr


def test_an_unchanged_project_is_not_rebuilt_and_a_changed_one_is(built_run, docker_env, example_image, tmp_path):
    project, _, _, _ = built_run
    args = {"BASE_IMAGE": example_image.tag}
    again = ensure_image(project, "auto", args, tmp_path / "again.log", env=docker_env)
    assert not again.built and again.log is None
    (project / "data" / "08_reporting" / "extra.csv").write_text("x\n1\n")  # outside the context: no rebuild
    assert not ensure_image(project, "auto", args, tmp_path / "data.log", env=docker_env).built
    source = project / "src" / "spaceflights_lite" / "__init__.py"
    source.write_text(source.read_text() + "\n# changed\n")
    docker(docker_env, "image", "rm", "-f", build_context(project, args).tag)  # left by an earlier session
    changed = ensure_image(project, "auto", args, tmp_path / "changed.log", env=docker_env)
    assert changed.built and changed.tag != again.tag
    assert "Successfully" in changed.log.read_text() or "naming to" in changed.log.read_text()


def test_a_failing_build_exits_1_with_the_end_of_its_log(docker_env, tmp_path):
    project = _copy_example(tmp_path / "broken")
    (project / "Dockerfile").write_text("FROM kvc-base:bookworm\nRUN echo the-build-broke-here && exit 3\n")
    proc = _run_local(project, docker_env)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "docker build of" in proc.stderr and "failed" in proc.stderr
    assert "the-build-broke-here" in proc.stderr and "full log:" in proc.stderr


def test_no_engine_is_a_clear_error_that_says_how_to_start_one(docker_env, tmp_path):
    project = _copy_example(tmp_path / "no-engine")
    env = {**docker_env, "DOCKER_HOST": f"unix://{tmp_path}/no-such-docker.sock"}
    proc = _run_local(project, env)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "no Docker engine answers" in proc.stderr and "docker-engine.sh up" in proc.stderr
    assert "--runner subprocess" in proc.stderr


def test_no_dockerfile_and_no_image_points_at_init_github(docker_env, tmp_path):
    project = _copy_example(tmp_path / "no-dockerfile")
    (project / "Dockerfile").unlink()
    proc = _run_local(project, docker_env)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "Dockerfile" in proc.stderr and "init --github" in proc.stderr
