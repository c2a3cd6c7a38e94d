"""Quality bars run by `make test`: zizmor, actionlint and hadolint report nothing on what we ship and
generate, action.yml documents exactly the inputs the code reads, and the org template stays in sync."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from action.inputs import DEFAULTS
from action.main import OUTPUT_NAMES
from kedro_vertex_ci.scaffold.github import (
    render_dockerfile,
    render_workflow,
    write_github_scaffold,
)
from kedro_vertex_ci.scaffold.pins import resolve_action, resolve_checkout
from kedro_vertex_ci.testing import make_project

from .remotes import point_github_at, standard_remotes

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
TEMPLATE = ROOT / "workflow-templates" / "kedro-vertex.yml"
USES = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<ref>\S+)(?P<comment>.*)$")


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real project scaffolded by `init --github` (workflow, Dockerfile with requirements), its actions
    pinned through `git ls-remote` of local stand-ins for the GitHub repositories."""
    root = tmp_path_factory.mktemp("scaffold")
    standard_remotes(root / "github")
    point_github_at(root / "gitconfig", root / "github")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GIT_CONFIG_GLOBAL", str(root / "gitconfig"))
        patch.setenv("GIT_CONFIG_NOSYSTEM", "1")
        action, checkout = resolve_action(), resolve_checkout()
    assert action.pinned and checkout.pinned
    project = make_project(root, "spaceflights", shape="chain", n=3)
    (project / "requirements.txt").write_text("kedro>=1.0\n")
    write_github_scaffold(project, force=False, project_id="acme-ml", region="europe-west4",
                          github_repository="acme/spaceflights", action=action, checkout=checkout)
    return project


def _workflows(generated: Path) -> list[Path]:
    return [generated / ".github" / "workflows" / "kedro-vertex.yml", TEMPLATE]


def test_zizmor_offline_finds_nothing(generated: Path) -> None:
    paths = [str(generated / ".github" / "workflows" / "kedro-vertex.yml"),
             str(generated / ".github" / "dependabot.yml"), str(ROOT / "action.yml")]
    result = subprocess.run(
        [str(BIN / "zizmor"), "--offline", "--no-progress", *paths], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No findings to report" in result.stdout


def test_zizmor_on_the_org_template_allows_only_the_action_major_tag(tmp_path: Path) -> None:
    """The org template cannot know a release SHA (users' `pin-actions` or Dependabot pin it): zizmor accepts
    a ref pin for the Action alone, every other action must still be hash-pinned."""
    config = tmp_path / "zizmor.yml"
    config.write_text('rules:\n  unpinned-uses:\n    config:\n      policies:\n'
                      '        "getindata/kedro-vertex-action": ref-pin\n        "*": hash-pin\n')
    command = [str(BIN / "zizmor"), "--offline", "--no-progress", "--config", str(config)]
    result = subprocess.run([*command, str(TEMPLATE)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    unpinned_checkout = tmp_path / "kedro-vertex.yml"
    unpinned_checkout.write_text(TEMPLATE.read_text().replace(
        next(line for line in TEMPLATE.read_text().splitlines() if "actions/checkout@" in line),
        "        uses: actions/checkout@v5"))
    result = subprocess.run([*command, str(unpinned_checkout)], capture_output=True, text=True, check=False)
    assert result.returncode != 0 and "unpinned-uses" in result.stdout


def test_zizmor_would_catch_an_unsafe_workflow(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: pull_request_target\npermissions: write-all\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - uses: actions/checkout@v4\n      - run: echo ${{ github.event.pull_request.title }}\n"
    )
    result = subprocess.run([str(BIN / "zizmor"), "--offline", str(bad)], capture_output=True, text=True, check=False)
    assert result.returncode != 0 and "template-injection" in result.stdout


def test_actionlint_finds_nothing(generated: Path) -> None:
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "actionlint.sh"), *map(str, _workflows(generated))],
        capture_output=True, text=True, check=False, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "passed lint checks" in result.stdout


@pytest.mark.parametrize("has_requirements", [True, False])
def test_hadolint_clean_on_both_dockerfiles(tmp_path: Path, has_requirements: bool) -> None:
    project_dockerfile = tmp_path / "Dockerfile"
    project_dockerfile.write_text(render_dockerfile(has_requirements=has_requirements))
    for dockerfile in (ROOT / "Dockerfile", project_dockerfile):
        result = subprocess.run([str(BIN / "hadolint"), str(dockerfile)], capture_output=True, text=True, check=False)
        assert result.returncode == 0 and not result.stdout.strip(), f"{dockerfile}:\n{result.stdout}"


def test_action_yml_documents_exactly_the_inputs_the_code_reads() -> None:
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    assert action["runs"]["using"] == "docker"
    inputs = action["inputs"]
    assert set(inputs) == set(DEFAULTS)
    for name, spec in inputs.items():
        assert spec["description"].strip(), name
        if name != "github-token":
            assert str(spec["default"]) == DEFAULTS[name], name
    assert inputs["github-token"]["default"] == "${{ github.token }}"
    assert set(action["outputs"]) == set(OUTPUT_NAMES)


def test_org_template_is_the_generated_workflow_with_default_branch_placeholder() -> None:
    assert TEMPLATE.read_text() == render_workflow("$default-branch")
    properties = yaml.safe_load((TEMPLATE.with_name("kedro-vertex.properties.json")).read_text())
    assert {"name", "description", "iconName", "categories", "filePatterns"} <= set(properties)


def test_workflow_security_shape(generated: Path) -> None:
    for path in _workflows(generated):
        text = path.read_text()
        flow = yaml.safe_load(text)
        triggers = flow[True]  # YAML 1.1 reads the key `on` as True
        assert set(triggers) == {"push", "pull_request", "workflow_dispatch"}
        assert "pull_request_target" not in text
        assert flow["permissions"] == {"contents": "read"}
        # push and pull_request runs of one branch share the group: the second reuses the first's run
        assert flow["concurrency"] == {"group": "kedro-vertex-${{ github.head_ref || github.ref_name }}",
                                       "cancel-in-progress": False}
        job = flow["jobs"]["vertex"]
        assert job["permissions"] == {"contents": "read", "id-token": "write", "pull-requests": "write"}
        for step in job["steps"]:
            assert "${{" not in step.get("run", "")
        checkout = job["steps"][0]
        assert checkout["with"]["persist-credentials"] is False
        uses = [USES.match(line) for line in text.splitlines() if USES.match(line)]
        assert len(uses) == 3  # checkout, the opt-in pip cache, the Action
        for match in uses:
            if path == TEMPLATE and match["ref"] == "getindata/kedro-vertex-action@v1":
                continue  # the org template follows the major tag (see the zizmor test above)
            assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", match["ref"]), match["ref"]
            assert re.fullmatch(r"\s*# v\d+\.\d+\.\d+", match["comment"]), match["comment"]


def test_release_script_can_pin_the_published_image() -> None:
    """scripts/stamp-action.sh rewrites exactly this line to `docker://REPO@sha256:…` (tests/test_release.py
    dry-runs it); both release paths call it."""
    lines = (ROOT / "action.yml").read_text().splitlines()
    assert lines.count("  image: Dockerfile") == 1
    assert "s|^  image: Dockerfile$|" in (ROOT / "scripts" / "stamp-action.sh").read_text()
    for caller in ("scripts/release-action-image.sh", ".github/workflows/release.yml"):
        assert "scripts/stamp-action.sh" in (ROOT / caller).read_text(), caller
