"""`init --github`: the files it writes into a real Kedro project inside a real git repository."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from kedro_vertex_ci.config import parse_config
from kedro_vertex_ci.scaffold.github import (
    DEPENDABOT_PATH,
    WORKFLOW_PATH,
    detect_default_branch,
    plan_scaffold,
    render_dockerfile,
    skipped_files,
    write_github_scaffold,
)
from kedro_vertex_ci.testing import make_project

from .remotes import git, point_github_at, standard_remotes


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
    # Offline by default: github.com is redirected to a folder with no repositories in it.
    (tmp_path / "offline").mkdir()
    point_github_at(tmp_path / "gitconfig", tmp_path / "offline")


@pytest.fixture
def remotes(tmp_path: Path) -> dict:
    """github.com/getindata/kedro-vertex-action and actions/checkout as local bare repositories."""
    base = tmp_path / "github"
    found = standard_remotes(base)
    (tmp_path / "gitconfig").write_text("")
    point_github_at(tmp_path / "gitconfig", base)
    return found


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


def _uses(flow: dict) -> list[str]:
    """The checkout and Action references (the opt-in cache step keeps its own static pin)."""
    return [step["uses"] for step in flow["jobs"]["vertex"]["steps"] if "actions/cache@" not in step["uses"]]


def test_scaffold_in_a_subfolder_project(repo: Path, remotes: dict) -> None:
    git(repo, "config", "init.defaultBranch", "main")
    project = make_project(repo, "spaceflights", shape="chain", n=3)
    (project / "requirements.txt").write_text("kedro>=1.0\npandas\n")
    written = write_github_scaffold(project, force=False, project_id="acme-ml", region="europe-west4")
    workflow = repo / WORKFLOW_PATH
    assert set(written) == {workflow, repo / DEPENDABOT_PATH, project / "Dockerfile", project / ".dockerignore",
                            project / "conf/base/vertexai.yml", project / "gcp-setup.sh"}
    flow = yaml.safe_load(workflow.read_text())
    step = next(s for s in flow["jobs"]["vertex"]["steps"] if s.get("id") == "vertex")
    assert step["with"]["working-directory"] == "spaceflights"
    assert flow[True]["pull_request"]["branches"] == ["main"]  # YAML 1.1 reads `on` as True
    # A subfolder project: only changes to it (or to the workflow) start a run.
    for trigger in ("push", "pull_request"):
        assert flow[True][trigger]["paths"] == ["spaceflights/**", ".github/workflows/kedro-vertex.yml"]
    dependabot = yaml.safe_load((repo / DEPENDABOT_PATH).read_text())
    assert [(u["package-ecosystem"], u["directory"]) for u in dependabot["updates"]] == [
        ("github-actions", "/"), ("docker", "/spaceflights"), ("pip", "/spaceflights")]
    dockerfile = (project / "Dockerfile").read_text()
    assert "COPY requirements.txt ./" in dockerfile and '--no-deps "kedro-vertex-ci' in dockerfile
    assert '-r requirements.txt -r "$(python -m kedro_vertex_ci.runtime.requirements)"' in dockerfile  # slim
    ignore = (project / ".dockerignore").read_text().splitlines()
    for pattern in (".git", ".venv", "gha-creds-*.json", "conf/local", "data/*", "!data/01_raw", "gcp-setup.sh"):
        assert pattern in ignore
    config = parse_config(yaml.safe_load((project / "conf/base/vertexai.yml").read_text()))  # valid as written
    assert config.config.run_config.service_account == "kedro-pipelines@acme-ml.iam.gserviceaccount.com"
    assert (project / "gcp-setup.sh").stat().st_mode & 0o111  # executable


def test_root_project_has_no_paths_filter(tmp_path: Path, remotes: dict) -> None:
    project = make_project(tmp_path, "solo", shape="chain", n=2)
    git(project, "init", "-q", "-b", "main")
    git(project, "remote", "add", "origin", "https://github.com/acme/solo.git")
    plan = plan_scaffold(project, project_id="acme-ml", region="europe-west4")
    flow = yaml.safe_load(plan.files[project / WORKFLOW_PATH])
    assert "paths" not in flow[True]["push"] and "paths" not in flow[True]["pull_request"]
    assert "working-directory" not in flow["jobs"]["vertex"]["steps"][1]["with"]
    dependabot = yaml.safe_load(plan.files[project / DEPENDABOT_PATH])
    assert {u["directory"] for u in dependabot["updates"]} == {"/"}


def test_never_overwrites_without_force_and_reruns_are_idempotent(repo: Path) -> None:
    project = make_project(repo, "spaceflights", shape="chain", n=3)
    (project / "Dockerfile").write_text("FROM my-own-base\n")
    first = write_github_scaffold(project, force=False, project_id="acme-ml", region="europe-west4")
    assert project / "Dockerfile" not in first
    assert (project / "Dockerfile").read_text() == "FROM my-own-base\n"
    plan = plan_scaffold(project, project_id="acme-ml", region="europe-west4")
    assert skipped_files(plan) == [project / "Dockerfile"]
    assert write_github_scaffold(project, force=False, project_id="acme-ml", region="europe-west4") == []
    forced = write_github_scaffold(project, force=True, project_id="acme-ml", region="europe-west4")
    assert forced == [project / "Dockerfile"]  # identical files are not rewritten
    assert (project / "Dockerfile").read_text() == render_dockerfile(has_requirements=False)


def test_dockerfile_pins_this_version_and_creates_conf_local() -> None:
    from kedro_vertex_ci import __version__

    text = render_dockerfile(has_requirements=False)
    assert f'"kedro-vertex-ci=={__version__}"' in text
    assert "mkdir -p conf/local" in text  # the build context never carries conf/local (Kedro's default env)
    assert "spec.\nRUN python3 -m venv" in text  # no stray blank line where the requirements copy would be
    with_requirements = render_dockerfile(has_requirements=True)
    assert "spec.\nCOPY requirements.txt ./\nRUN python3 -m venv" in with_requirements


def test_init_github_from_the_cli_pins_the_action_by_sha(tmp_path: Path, remotes: dict) -> None:
    from kedro_vertex_ci.cli import cli

    project = make_project(tmp_path, "solo", shape="chain", n=3)
    git(project, "init", "-q", "-b", "main")
    git(project, "remote", "add", "origin", "https://github.com/acme/solo.git")
    result = CliRunner().invoke(cli, ["--project", str(project), "init", "acme-ml", "europe-west4", "--github"])
    assert result.exit_code == 0, result.output
    flow = yaml.safe_load((project / WORKFLOW_PATH).read_text())
    action, checkout = remotes["action"].tags, remotes["checkout"].tags
    assert _uses(flow) == [f"actions/checkout@{checkout['v5.0.1']}", f"getindata/kedro-vertex-action@{action['v1.2.0']}"]
    text = (project / WORKFLOW_PATH).read_text()
    assert f"getindata/kedro-vertex-action@{action['v1.2.0']} # v1.2.0\n" in text
    assert f"actions/checkout@{checkout['v5.0.1']} # v5.0.1\n" in text
    assert "gcp-setup.sh" in result.output and (project / "gcp-setup.sh").is_file()


def test_action_ref_overrides_the_release(tmp_path: Path, remotes: dict) -> None:
    from kedro_vertex_ci.cli import cli

    project = make_project(tmp_path, "solo", shape="chain", n=3)
    sha = remotes["action"].tags["v1.0.0"]
    for ref, expected in (("v1.0.0", f"@{sha} # v1.0.0"), (sha, f"@{sha}\n"), ("v2", f"@{remotes['action'].tags['v2.0.0']} # v2.0.0")):
        result = CliRunner().invoke(cli, ["--project", str(project), "init", "acme-ml", "europe-west4", "--github",
                                          "--github-repo", "acme/solo", "--force", "--action-ref", ref])
        assert result.exit_code == 0, result.output
        assert f"getindata/kedro-vertex-action{expected}" in (project / WORKFLOW_PATH).read_text(), ref


def test_offline_writes_the_major_tag_and_the_command_that_pins_it(tmp_path: Path) -> None:
    from kedro_vertex_ci.cli import cli

    project = make_project(tmp_path, "solo", shape="chain", n=3)
    result = CliRunner().invoke(cli, ["--project", str(project), "init", "acme-ml", "europe-west4", "--github",
                                      "--github-repo", "acme/solo"])
    assert result.exit_code == 0, result.output
    text = (project / WORKFLOW_PATH).read_text()
    assert "uses: getindata/kedro-vertex-action@v1\n" in text
    assert "uses: actions/checkout@08c6903cd8c0fde910a37f88322edcfb5dd907a8 # v5.0.0" in text  # known release
    assert "0000000000" not in text
    assert "kedro-vertex-ci pin-actions" in result.output
    # Later, online: the printed command pins it.
    base = tmp_path / "github"
    remotes = standard_remotes(base)
    (tmp_path / "gitconfig").write_text("")
    point_github_at(tmp_path / "gitconfig", base)
    pinned = CliRunner().invoke(cli, ["pin-actions", str(project / WORKFLOW_PATH)])
    assert pinned.exit_code == 0, pinned.output
    sha = remotes["action"].tags["v1.2.0"]
    assert f"uses: getindata/kedro-vertex-action@{sha} # v1.2.0\n" in (project / WORKFLOW_PATH).read_text()


def test_pin_actions_fails_when_a_tag_cannot_be_resolved(tmp_path: Path) -> None:
    from kedro_vertex_ci.cli import cli

    workflow = tmp_path / "flow.yml"
    workflow.write_text("jobs:\n  a:\n    steps:\n      - uses: getindata/kedro-vertex-action@v1\n")
    result = CliRunner().invoke(cli, ["pin-actions", str(workflow)])
    assert result.exit_code == 1 and "could not resolve getindata/kedro-vertex-action@v1" in result.output
    assert workflow.read_text().endswith("@v1\n")


def test_unknown_github_repository_is_refused_before_writing(tmp_path: Path) -> None:
    from kedro_vertex_ci.cli import cli

    project = make_project(tmp_path, "solo", shape="chain", n=3)
    (project / "conf/base/vertexai.yml").unlink(missing_ok=True)
    result = CliRunner().invoke(cli, ["--project", str(project), "init", "acme-ml", "europe-west4", "--github"])
    assert result.exit_code == 2, result.output
    assert "--github-repo OWNER/NAME" in result.output
    assert not (project / WORKFLOW_PATH).exists() and not (project / "gcp-setup.sh").exists()
    assert not (project / "conf/base/vertexai.yml").exists()
