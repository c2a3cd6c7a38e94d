"""``kedro-vertex-ci action-rehearsal``: synthesized events read by the Action's own event reader (the oracle),
and the whole command on a real git clone — in-process and in the Action's container on the real engine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from action.events import RUN_ONCE, SCHEDULE, decide, read_event
from action.inputs import read_inputs
from kedro_vertex_ci.errors import ConfigError
from kedro_vertex_ci.rehearsal import (
    REHEARSAL_TOKEN,
    GitFacts,
    action_input_defaults,
    github_repository,
    parse_inputs,
    rehearse,
    resolve_expressions,
    workflow_inputs,
)
from kedro_vertex_ci.rehearsal_view import LogView, parse_outputs
from kedro_vertex_ci.testing import make_project

ROOT = Path(__file__).resolve().parents[2]
CLI = str(Path(sys.executable).parent / "kedro-vertex-ci")
GIT = GitFacts(repository="acme/spaceflights", sha="ab" * 20, branch="feature/x", default_branch="main",
               message="Faster preprocessing")
DEFAULTS = action_input_defaults(yaml.safe_load((ROOT / "action.yml").read_text()))


def _as_action_sees_it(tmp_path: Path, event: str, **kwargs) -> tuple:
    """Write the synthesized payload where GITHUB_EVENT_PATH says, then let the Action read it."""
    plan = rehearse(event, GIT, DEFAULTS, paths={"workflow": str(tmp_path), "workspace": str(tmp_path),
                                                 "file_commands": str(tmp_path)}, **kwargs)
    (tmp_path / "event.json").write_text(json.dumps(plan.payload))
    inputs = read_inputs(plan.env)
    return plan, read_event(plan.env), decide(inputs, read_event(plan.env))


@pytest.mark.parametrize(
    ("event", "operation", "branch"),
    [("push", RUN_ONCE, "feature/x"), ("merge", SCHEDULE, "main"), ("pull_request", RUN_ONCE, "feature/x"),
     ("schedule", RUN_ONCE, "main"), ("workflow_dispatch", RUN_ONCE, "main")],
)
def test_each_event_leads_the_action_to_what_github_would(tmp_path, event, operation, branch):
    plan, seen, decided = _as_action_sees_it(tmp_path, event)
    assert decided.operation == operation, decided.reason
    assert seen.repository == "acme/spaceflights" and seen.default_branch == "main"
    assert seen.head_sha == GIT.sha and seen.credentials and not seen.fork
    if event in ("push", "merge", "pull_request"):
        assert seen.branch == branch
    assert plan.env["INPUT_DRY-RUN"] == "true"


def test_pull_request_payload_carries_number_head_and_base(tmp_path):
    _, seen, decided = _as_action_sees_it(tmp_path, "pull_request", pr_number=42)
    assert seen.pr_number == 42 and decided.comment
    assert decided.labels["github-pr"] == "42"


def test_a_pull_request_from_the_default_branch_comes_from_a_named_branch(tmp_path):
    on_main = GitFacts("acme/spaceflights", "cd" * 20, "main", "main")
    plan = rehearse("pull_request", on_main, DEFAULTS)
    assert plan.payload["pull_request"]["head"]["ref"] == "rehearsal"
    assert any("default branch" in note for note in plan.notes)


def test_nothing_can_reach_github_or_google():
    plan = rehearse("push", GIT, DEFAULTS)
    assert plan.env["GITHUB_API_URL"] == "http://127.0.0.1:9"
    assert plan.env["ACTIONS_ID_TOKEN_REQUEST_URL"].startswith("http://127.0.0.1:9/")


@pytest.mark.parametrize(
    ("url", "name"),
    [("git@github.com:acme/spaceflights.git", "acme/spaceflights"),
     ("https://github.com/acme/spaceflights", "acme/spaceflights"),
     ("https://x-access-token:abc@github.com/acme/sf.git", "acme/sf"),
     ("ssh://git@github.com/acme/sf.git/", "acme/sf"), ("https://gitlab.com/acme/sf.git", None), ("", None)],
)
def test_github_repository_from_remote_urls(url, name):
    assert github_repository(url) == name


def test_inputs_come_from_the_workflow_init_github_writes(tmp_path):
    from kedro_vertex_ci.scaffold.github import render_workflow

    text = render_workflow("main", working_directory="pipelines/sf")
    inputs, notes = resolve_expressions(workflow_inputs(yaml.safe_load(text), "kedro-vertex.yml"))
    assert inputs["pipeline"] == "__default__"  # ${{ inputs.pipeline || '__default__' }}
    assert inputs["working-directory"] == "pipelines/sf"
    assert all("${{" not in value for value in inputs.values())
    assert any("workload-identity-provider" in note and "--input" in note for note in notes)


def test_expressions_the_rehearsal_cannot_know_are_emptied_with_a_note():
    inputs, notes = resolve_expressions({"github-token": "${{ github.token }}", "service-account": "${{ vars.SA }}",
                                         "region": "europe-west4", "mode": "${{ inputs.mode || 'run-once' }}"})
    assert inputs == {"github-token": REHEARSAL_TOKEN, "service-account": "", "region": "europe-west4",
                      "mode": "run-once"}
    assert notes == ["input service-account is '${{ vars.SA }}' in the workflow; a rehearsal cannot read it, so it "
                     "is '' here: pass --input service-account=VALUE to set it"]


@pytest.mark.parametrize("bad", ["noequals", "=x", "bad name=1"])
def test_bad_input_items_are_config_errors(bad):
    with pytest.raises(ConfigError, match="--input"):
        parse_inputs([bad])


def test_workflow_without_the_action_is_a_config_error():
    with pytest.raises(ConfigError, match="no step uses the kedro-vertex-action"):
        workflow_inputs({"jobs": {"x": {"steps": [{"uses": "actions/checkout@v4"}]}}}, "ci.yml")


def test_log_view_hides_masked_values_and_renders_annotations():
    view = LogView()
    assert view.render("::add-mask::s3cr3t") is None
    assert view.render("token is s3cr3t").text == "token is ***"
    assert view.render("::group::Compile").text == "▸ Compile"
    assert view.render("::endgroup::") is None
    error = view.render("::error file=conf/base/vertexai.yml,line=3,title=Invalid config::bad%0Aregion s3cr3t")
    assert error.colour == "red"
    assert error.text == "Error (Invalid config, conf/base/vertexai.yml:3): bad\nregion ***"


def test_outputs_file_with_blocks_and_repeats():
    text = "job-id=a\nrun-url<<EOF_1\nhttps://x\ny\nEOF_1\njob-id=b\nempty=\n"
    assert parse_outputs(text) == {"job-id": "b", "run-url": "https://x\ny", "empty": ""}


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    """A git clone whose origin is on GitHub, holding a Kedro project in a subfolder."""
    repo = tmp_path / "repo"
    repo.mkdir()
    make_project(repo, "sf", shape="diamond", n=4, vertexai={
        "project_id": "acme-ml", "region": "europe-west4",
        "run_config": {"image": "europe-west4-docker.pkg.dev/acme-ml/kedro/sf", "root": "gs://acme-ml-runs/sf"}})
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@x"}
    for argv in (["init", "-q", "-b", "feature/sf"], ["remote", "add", "origin", "git@github.com:acme/sf.git"],
                 ["add", "-A"], ["commit", "-qm", "A pipeline"]):
        subprocess.run(["git", *argv], cwd=repo, env=env, check=True, capture_output=True)
    return repo


def _rehearse(clone: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, "action-rehearsal", *args], cwd=clone / "sf", env=env or dict(os.environ),
                          capture_output=True, text=True, timeout=600, check=False)


def test_in_process_rehearsal_of_a_merge_schedules(clone):
    proc = _rehearse(clone, "--event", "merge", "--no-docker")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=clone, capture_output=True, text=True).stdout.strip()
    assert f"Rehearsing a merge of acme/sf@{head[:12]} (in this process, dry run)" in out
    assert "push to the default branch main: build the image and update the schedule" in out
    assert "would schedule" in out and "would build: europe-west4-docker.pkg.dev/acme-ml/kedro/sf" in out
    assert "spec-path = 'sf/.kedro-vertex-ci/__default__.json'" in out
    assert (clone / "sf" / ".kedro-vertex-ci" / "__default__.json").is_file()
    assert "Job summary" in out and REHEARSAL_TOKEN not in out + proc.stderr
    assert "Pull request comment it would write" not in out  # a merge schedules: no comment
    assert "a Mermaid diagram of the steps" in out


def test_in_process_rehearsal_of_a_pull_request_shows_the_comment(clone):
    proc = _rehearse(clone, "--event", "pull_request", "--pr", "3", "--no-docker")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    comment = proc.stdout.split("Pull request comment it would write", 1)[1].split("Step outputs", 1)[0]
    assert "Dry run" in comment and "Steps" in comment and "pull request #3" in comment
    assert "<!--" not in comment  # the hidden marker stays hidden, as on GitHub


def test_in_process_rehearsal_reports_a_broken_config_like_the_action(clone):
    (clone / "sf" / "conf" / "base" / "vertexai.yml").write_text("project_id: acme-ml\nregion: [\n")
    proc = _rehearse(clone, "--event", "pull_request", "--pr", "7", "--no-docker")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Error (Invalid kedro-vertex-ci config, sf/conf" in proc.stdout and "vertexai.yml" in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr


@pytest.mark.docker
@pytest.mark.slow
def test_container_rehearsal_of_a_pull_request(clone, action_image, docker_env):
    proc = _rehearse(clone, "--event", "pull_request", "--pr", "9", "--action-image", action_image,
                     "--input", "requirements=", env=docker_env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "(in the Action's container, dry run)" in proc.stdout
    assert "pull request #9: build the image and run the pipeline once" in proc.stdout
    assert "would comment" in proc.stdout and "'github-pr': '9'" in proc.stdout
    assert "Pull request comment it would write" in proc.stdout and "::group::" not in proc.stdout
    assert "spec-path = 'sf/.kedro-vertex-ci/__default__.json'" in proc.stdout
    assert "::add-mask::" not in proc.stdout and REHEARSAL_TOKEN not in proc.stdout + proc.stderr
