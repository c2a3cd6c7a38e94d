"""`init --github`: the files it writes into a real Kedro project inside a real git repository."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from kedro_vertex_ci.config import parse_config
from kedro_vertex_ci.scaffold.github import (
    WORKFLOW_PATH,
    detect_default_branch,
    gcp_setup_commands,
    render_dockerfile,
    skipped_files,
    write_github_scaffold,
)
from kedro_vertex_ci.testing import make_project


def git(folder: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=folder, capture_output=True, text=True, check=True,
    )
    return result.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "work")
    git(root, "remote", "add", "origin", "git@github.com:acme/spaceflights.git")
    return root


@pytest.fixture(autouse=True)
def _no_user_git_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")


def test_default_branch_detection_order(tmp_path: Path, repo: Path) -> None:
    plain = tmp_path / "not-a-repo"
    plain.mkdir()
    assert detect_default_branch(plain) == "main"
    assert detect_default_branch(repo) == "work"  # the current branch
    git(repo, "config", "init.defaultBranch", "develop")
    assert detect_default_branch(repo) == "develop"
    git(repo, "commit", "-q", "--allow-empty", "-m", "first")
    git(repo, "update-ref", "refs/remotes/origin/trunk", "HEAD")
    git(repo, "symbolic-ref", "refs/remotes/origin/HEAD", "refs/remotes/origin/trunk")
    assert detect_default_branch(repo) == "trunk"


def test_scaffold_in_a_subfolder_project(repo: Path) -> None:
    git(repo, "config", "init.defaultBranch", "main")
    project = make_project(repo, "spaceflights", shape="chain", n=3)
    (project / "requirements.txt").write_text("kedro>=1.0\npandas\n")
    written = write_github_scaffold(project, force=False, project_id="acme-ml", region="europe-west4")
    workflow = repo / WORKFLOW_PATH
    assert set(written) == {workflow, project / "Dockerfile", project / ".dockerignore", project / "conf/base/vertexai.yml"}
    flow = yaml.safe_load(workflow.read_text())
    step = next(s for s in flow["jobs"]["vertex"]["steps"] if s.get("id") == "vertex")
    assert step["with"]["working-directory"] == "spaceflights"
    assert flow[True]["pull_request"]["branches"] == ["main"]  # YAML 1.1 reads `on` as True
    dockerfile = (project / "Dockerfile").read_text()
    assert "COPY requirements.txt ./" in dockerfile and '--no-deps "kedro-vertex-ci' in dockerfile
    assert '-r requirements.txt -r "$(python -m kedro_vertex_ci.runtime.requirements)"' in dockerfile  # slim
    ignore = (project / ".dockerignore").read_text().splitlines()
    for pattern in (".git", ".venv", "gha-creds-*.json", "conf/local", "data/*", "!data/01_raw"):
        assert pattern in ignore
    parse_config(yaml.safe_load((project / "conf/base/vertexai.yml").read_text()))  # valid as written


def test_never_overwrites_without_force_and_reruns_are_idempotent(repo: Path) -> None:
    project = make_project(repo, "spaceflights", shape="chain", n=3)
    (project / "Dockerfile").write_text("FROM my-own-base\n")
    first = write_github_scaffold(project, force=False, project_id="acme-ml", region="europe-west4")
    assert project / "Dockerfile" not in first
    assert (project / "Dockerfile").read_text() == "FROM my-own-base\n"
    assert skipped_files(project, project_id="acme-ml", region="europe-west4") == [project / "Dockerfile"]
    assert write_github_scaffold(project, force=False, project_id="acme-ml", region="europe-west4") == []
    forced = write_github_scaffold(project, force=True, project_id="acme-ml", region="europe-west4")
    assert forced == [project / "Dockerfile"]  # identical files are not rewritten
    assert (project / "Dockerfile").read_text() == render_dockerfile(has_requirements=False)


def test_gcp_setup_commands_cover_pool_provider_roles_and_binding(repo: Path) -> None:
    project = make_project(
        repo, "spaceflights", shape="chain", n=3,
        vertexai={"project_id": "acme-ml", "region": "europe-west4",
                  "run_config": {"image": "europe-west4-docker.pkg.dev/acme-ml/ml-images/sf", "root": "gs://acme-runs/sf"}},
    )
    text = gcp_setup_commands(project, project_id="acme-ml", region="europe-west4")
    for expected in (
        "GITHUB_REPO=acme/spaceflights",
        "BUCKET=acme-runs",
        "gcloud artifacts repositories create ml-images",
        "gcloud iam workload-identity-pools create",
        "providers create-oidc",
        "--attribute-condition \"assertion.repository_id == '$GITHUB_REPOSITORY_ID'\"",
        "roles/aiplatform.user",
        "roles/cloudbuild.builds.editor",
        "roles/artifactregistry.writer",
        "roles/iam.serviceAccountUser",
        "--role roles/storage.objectAdmin",
        "--role roles/iam.workloadIdentityUser",
        "attribute.repository_id/$GITHUB_REPOSITORY_ID",
        "gh variable set GCP_WORKLOAD_IDENTITY_PROVIDER",
    ):
        assert expected in text, expected
    result = subprocess.run(["bash", "-n"], input=text, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr  # copy-paste safe: valid shell


def test_init_github_from_the_cli(repo: Path) -> None:
    from kedro_vertex_ci.cli import cli

    project = make_project(repo.parent, "solo", shape="chain", n=3)
    git(project, "init", "-q", "-b", "main")
    result = CliRunner().invoke(cli, ["--project", str(project), "init", "acme-ml", "europe-west4", "--github"])
    assert result.exit_code == 0, result.output
    assert (project / WORKFLOW_PATH).is_file() and (project / "Dockerfile").is_file()
    assert "gcloud iam workload-identity-pools create" in result.output
