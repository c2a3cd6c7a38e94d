"""The local build's context and tag (no engine needed): the Cloud Build context, hashed."""

from __future__ import annotations

import os

import pytest

from kedro_vertex_ci.errors import ConfigError
from kedro_vertex_ci.gcp.source import collect_files
from kedro_vertex_ci.local.imagebuild import (
    DockerUnavailable,
    build_context,
    check_engine,
    parse_build_args,
    project_slug,
)


@pytest.fixture
def project(tmp_path):
    root = tmp_path / "My Project_1"
    for relative, text in {"Dockerfile": "FROM scratch\n", "src/pkg/__init__.py": "x = 1\n", "conf/base/a.yml": "a: 1\n",
                           "conf/local/credentials.yml": "secret: 1\n", "data/01_raw/in.csv": "a\n1\n",
                           "data/02_intermediate/out.csv": "b\n2\n", ".dockerignore": "notebooks/\n",
                           "notebooks/n.ipynb": "{}\n"}.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text)
    return root


def test_the_context_is_the_cloud_build_context(project):
    context = build_context(project, {})
    assert list(context.files) == collect_files(project)
    assert "conf/local/credentials.yml" not in context.files and "notebooks/n.ipynb" not in context.files
    assert "data/01_raw/in.csv" in context.files and "data/02_intermediate/out.csv" not in context.files
    assert context.tag.startswith("kvc-local/my-project_1:") and len(context.digest) == 16


def test_the_tag_changes_exactly_when_the_context_or_build_args_do(project):
    first = build_context(project, {"BASE_IMAGE": "a"}).tag
    assert build_context(project, {"BASE_IMAGE": "a"}).tag == first
    (project / "data/02_intermediate/out.csv").write_text("changed\n")  # not shipped: same image
    (project / "notebooks/n.ipynb").write_text("changed\n")
    (project / "conf/local/credentials.yml").write_text("changed\n")
    assert build_context(project, {"BASE_IMAGE": "a"}).tag == first
    assert build_context(project, {"BASE_IMAGE": "b"}).tag != first
    (project / "src/pkg/__init__.py").write_text("x = 2\n")
    assert build_context(project, {"BASE_IMAGE": "a"}).tag != first


def test_an_ignored_dockerfile_is_still_sent(project):
    (project / ".dockerignore").write_text("Dockerfile\n")
    assert "Dockerfile" in build_context(project, {}).files


def test_a_missing_dockerfile_points_at_init_github(project):
    (project / "Dockerfile").unlink()
    with pytest.raises(ConfigError, match="init --github"):
        build_context(project, {})


@pytest.mark.parametrize("item", ["NOEQUALS", "1BAD=x", "=x", "A-B=1"])
def test_bad_build_args(item):
    with pytest.raises(ConfigError, match="--build-arg"):
        parse_build_args([item])


def test_build_args_keep_equals_signs_in_values():
    assert parse_build_args(["A=b=c", "EMPTY="]) == {"A": "b=c", "EMPTY": ""}


@pytest.mark.parametrize(("name", "slug"), [("Spaceflights Lite", "spaceflights-lite"), ("___", "project"),
                                            ("ünï", "n")])
def test_project_slugs_are_docker_repository_names(tmp_path, name, slug):
    assert project_slug(tmp_path / name) == slug


def test_no_client_and_no_engine_are_clear_errors(tmp_path):
    with pytest.raises(DockerUnavailable, match="is not installed"):
        check_engine(str(tmp_path / "no-docker"))
    env = {**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/none.sock"}
    with pytest.raises(DockerUnavailable, match="no Docker engine answers .*docker-engine.sh up"):
        check_engine("docker", env)


def test_a_relative_project_path_names_the_image_after_the_folder(project, monkeypatch):
    from pathlib import Path

    monkeypatch.chdir(project)
    assert build_context(Path("."), {}).tag == build_context(project, {}).tag
