"""``init --github --target kfp``: a vertexai.yml for the KFP host and a workflow passing the login it needs."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from kedro_vertex_ci.config import parse_config
from kedro_vertex_ci.config_template import KFP_AUTH_MODES, render_template
from kedro_vertex_ci.scaffold.github import render_workflow
from kedro_vertex_ci.testing import make_project
from tests.action.remotes import git, point_github_at

HOST = "https://kubeflow.example.com/pipeline"
BIN = Path(sys.executable).parent


@pytest.mark.parametrize("mode", KFP_AUTH_MODES)
def test_the_kfp_template_is_valid_as_written_for_every_auth_mode(mode):
    parsed = parse_config(yaml.safe_load(render_template("acme-ml", "europe-west4", "Space", kfp_host=HOST,
                                                         kfp_auth=mode))).config
    assert parsed.run_config.target == "kfp" and parsed.kfp.host == HOST and parsed.kfp.auth.mode == mode
    if mode == "token":
        assert parsed.kfp.auth.token_env == "KFP_TOKEN"
    if mode == "iap":
        assert parsed.kfp.auth.service_account == "kfp-user@acme-ml.iam.gserviceaccount.com"


@pytest.mark.parametrize(("mode", "env"), [
    ("dex", {"DEX_USERNAME": "${{ secrets.KFP_DEX_USERNAME }}", "DEX_PASSWORD": "${{ secrets.KFP_DEX_PASSWORD }}"}),
    ("token", {"KFP_TOKEN": "${{ secrets.KFP_TOKEN }}"}),
    ("iap", {"IAP_CLIENT_ID": "${{ vars.KFP_IAP_CLIENT_ID }}"}),
    ("none", None),
])
def test_the_action_step_gets_the_login_its_auth_mode_reads(mode, env):
    flow = yaml.safe_load(render_workflow("main", kfp_auth=mode))
    step = next(s for s in flow["jobs"]["vertex"]["steps"] if "kedro-vertex-action" in str(s.get("uses")))
    assert step.get("env") == env
    assert yaml.safe_load(render_workflow("main")) == yaml.safe_load(render_workflow("main", kfp_auth="none"))


def test_init_github_target_kfp_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kedro_vertex_ci.cli import cli

    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    (tmp_path / "offline").mkdir()
    point_github_at(tmp_path / "gitconfig", tmp_path / "offline")  # no network: the action stays at @v1
    project = make_project(tmp_path, "solo", shape="chain", n=3)
    git(project, "init", "-q", "-b", "main")
    git(project, "remote", "add", "origin", "https://github.com/acme/solo.git")
    (project / "conf" / "base" / "vertexai.yml").unlink(missing_ok=True)
    result = CliRunner().invoke(cli, ["--project", str(project), "init", "acme-ml", "europe-west4", "--github",
                                      "--target", "kfp", "--kfp-host", HOST, "--kfp-auth", "dex"])
    assert result.exit_code == 0, result.output
    config = parse_config(yaml.safe_load((project / "conf/base/vertexai.yml").read_text())).config
    assert config.run_config.target == "kfp" and config.kfp.host == HOST
    workflow = project / ".github/workflows/kedro-vertex.yml"
    assert "DEX_PASSWORD: ${{ secrets.KFP_DEX_PASSWORD }}" in workflow.read_text()
    assert "KFP_DEX_USERNAME and KFP_DEX_PASSWORD" in result.output
    lint = subprocess.run([str(BIN / "zizmor"), "--offline", "--no-progress", "--format", "plain", str(workflow)],
                          capture_output=True, text=True, check=False)
    plain = re.sub(r"\x1b\[[0-9;]*m", "", lint.stdout)  # zizmor colours its output when CI=true
    findings = set(re.findall(r"^(?:error|warning|help|info)\[([a-z-]+)\]", plain, re.MULTILINE))
    assert findings == {"unpinned-uses"}, lint.stdout  # offline, the action stays at @v1; the secrets pass clean


def test_target_kfp_needs_a_host(tmp_path: Path) -> None:
    from kedro_vertex_ci.cli import cli

    project = make_project(tmp_path, "solo", shape="chain", n=3)
    result = CliRunner().invoke(cli, ["--project", str(project), "init", "acme-ml", "europe-west4",
                                      "--target", "kfp"])
    assert result.exit_code == 2 and "--kfp-host" in result.output
