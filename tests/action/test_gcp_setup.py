"""gcp-setup.sh as `init --github` writes it: shellcheck-clean, and run for real against a fake `gcloud`/`gh`
on PATH that records every call and answers `describe` from what earlier `create` calls made (so a rerun
sees everything existing, like the real project would)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from kedro_vertex_ci.testing import make_project

from .remotes import git

BIN = Path(sys.executable).parent
PROJECT_NUMBER = "123456789012"
REPOSITORY_ID = "987654321"
BUILD_SA = f"{PROJECT_NUMBER}-compute@developer.gserviceaccount.com"

FAKE = r'''#!{python}
"""Fake gcloud/gh: record argv, keep created resources in a state file, answer describe from it."""
import json, os, shutil, sys
from pathlib import Path

tool, args = Path(sys.argv[0]).name, sys.argv[1:]
with open(os.environ["FAKE_CALLS"], "a") as calls:
    calls.write(json.dumps([tool, *args]) + "\n")
state_file = Path(os.environ["FAKE_STATE"])
state = set(state_file.read_text().split("\n")) if state_file.exists() else set()

if tool == "gh":
    if args[:1] == ["api"]:
        print("{repository_id}")
    sys.exit(0)
if args[:2] == ["projects", "describe"]:
    print("{project_number}")
    sys.exit(0)
if args[:2] == ["builds", "get-default-service-account"]:
    print("projects/p/serviceAccounts/{build_sa}")
    sys.exit(0)
if args[:3] == ["storage", "buckets", "update"]:
    lifecycle = next(a.split("=", 1)[1] for a in args if a.startswith("--lifecycle-file="))
    shutil.copy(lifecycle, state_file.with_name("lifecycle.json"))
    sys.exit(0)
verbs = [i for i, a in enumerate(args) if a in ("describe", "create", "create-oidc")]
if not verbs:
    sys.exit(0)
i = verbs[0]
name = args[i + 1].removeprefix("gs://").split("@")[0]
key = " ".join(args[:i]) + ":" + name
if args[i] == "describe":
    if key in state:
        sys.exit(0)
    print("ERROR: NOT_FOUND " + key, file=sys.stderr)
    sys.exit(1)
if key in state:
    print("ERROR: ALREADY_EXISTS " + key, file=sys.stderr)
    sys.exit(1)
state_file.write_text("\n".join(sorted(state | {key})))
'''


@pytest.fixture
def scaffolded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project whose vertexai.yml names project, region, bucket, registry and runtime account, scaffolded
    with *different* command-line values: the script must follow the file."""
    from kedro_vertex_ci.cli import cli

    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setattr("kedro_vertex_ci.scaffold.pins.LS_REMOTE_TIMEOUT", 0.01)
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    git(repo, "remote", "add", "origin", "git@github.com:acme/spaceflights.git")
    project = make_project(
        repo, "spaceflights", shape="chain", n=3,
        vertexai={"project_id": "acme-ml", "region": "europe-west4",
                  "run_config": {"image": "europe-west4-docker.pkg.dev/acme-ml/ml-images/sf",
                                 "root": "gs://acme-runs/teams/sf",
                                 "service_account": "runner@acme-ml.iam.gserviceaccount.com"}})
    result = CliRunner().invoke(cli, ["--project", str(project), "init", "other-proj", "us-central1", "--github",
                                      "--action-ref", "a" * 40])
    assert result.exit_code == 0, result.output
    assert "vertexai.yml has project_id: acme-ml (not other-proj)" in result.output
    return project / "gcp-setup.sh"


def _run(script: Path, tmp_path: Path) -> list[list[str]]:
    fake_bin = tmp_path / "fakebin"
    if not fake_bin.exists():
        fake_bin.mkdir()
        text = FAKE.replace("{python}", sys.executable).replace("{repository_id}", REPOSITORY_ID)
        text = text.replace("{project_number}", PROJECT_NUMBER).replace("{build_sa}", BUILD_SA)
        for tool in ("gcloud", "gh"):
            (fake_bin / tool).write_text(text)
            (fake_bin / tool).chmod(0o755)
    calls = tmp_path / "calls.jsonl"
    calls.unlink(missing_ok=True)
    env = {**os.environ, "PATH": f"{fake_bin}{os.pathsep}{os.environ['PATH']}",
           "FAKE_CALLS": str(calls), "FAKE_STATE": str(tmp_path / "state.txt")}
    proc = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return [json.loads(line) for line in calls.read_text().splitlines()]


def _find(calls: list[list[str]], *words: str) -> list[list[str]]:
    return [c for c in calls if all(w in c for w in words)]


def _created(call: list[str]) -> tuple[str, str]:
    """("iam service-accounts", "runner") for `iam service-accounts create runner ...`."""
    verb = next(i for i, word in enumerate(call) if word in ("create", "create-oidc"))
    return " ".join(call[:verb]), call[verb + 1]


def _flag(call: list[str], name: str) -> str:
    return call[call.index(name) + 1]


def test_script_is_strict_and_shellcheck_clean(scaffolded: Path) -> None:
    text = scaffolded.read_text()
    assert text.startswith("#!/usr/bin/env bash\n") and "\nset -euo pipefail\n" in text
    assert "OWNER/REPO" not in text and "@@" not in text
    result = subprocess.run([str(BIN / "shellcheck"), "--severity=style", str(scaffolded)],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout


def test_shellcheck_would_catch_an_unquoted_variable(tmp_path: Path) -> None:
    bad = tmp_path / "bad.sh"
    bad.write_text("#!/usr/bin/env bash\nBUCKET=$1\ngcloud storage buckets describe gs://$BUCKET\n")
    result = subprocess.run([str(BIN / "shellcheck"), str(bad)], capture_output=True, text=True, check=False)
    assert result.returncode != 0 and "SC2086" in result.stdout


def test_first_run_creates_least_privilege_setup_from_vertexai_yml(scaffolded: Path, tmp_path: Path) -> None:
    calls = _run(scaffolded, tmp_path)
    flat = json.dumps(calls)
    assert "other-proj" not in flat and "us-central1" not in flat  # the kept vertexai.yml wins throughout
    gcloud = [c[1:] for c in calls if c[0] == "gcloud"]
    assert all(_flag(c, "--project") == "acme-ml" for c in gcloud if "--project" in c)
    creates = [c for c in gcloud if "create" in c or "create-oidc" in c]
    assert [_created(c) for c in creates] == [
        ("artifacts repositories", "ml-images"),
        ("storage buckets", "gs://acme-runs"),
        ("iam service-accounts", "runner"),
        ("iam service-accounts", "kedro-vertex-ci"),
        ("iam workload-identity-pools", "github"),
        ("iam workload-identity-pools providers", "kedro-vertex"),
    ]
    assert _flag(creates[0], "--location") == "europe-west4" and _flag(creates[1], "--location") == "europe-west4"
    ci = "serviceAccount:kedro-vertex-ci@acme-ml.iam.gserviceaccount.com"
    runtime = "serviceAccount:runner@acme-ml.iam.gserviceaccount.com"
    # The CI account may act as the runtime account only: never a project-wide serviceAccountUser.
    assert not _find(gcloud, "projects", "add-iam-policy-binding", "roles/iam.serviceAccountUser")
    act_as = _find(gcloud, "service-accounts", "add-iam-policy-binding", "roles/iam.serviceAccountUser")
    assert len(act_as) == 1 and act_as[0][3] == "runner@acme-ml.iam.gserviceaccount.com" and ci in act_as[0]
    project_roles = {(_flag(c, "--member"), _flag(c, "--role")) for c in _find(gcloud, "projects", "add-iam-policy-binding")}
    assert project_roles == {(runtime, "roles/aiplatform.user"), (ci, "roles/aiplatform.user"),
                             (ci, "roles/cloudbuild.builds.editor"),
                             (f"serviceAccount:{BUILD_SA}", "roles/logging.logWriter")}
    bucket_roles = {(_flag(c, "--member"), _flag(c, "--role")) for c in _find(gcloud, "buckets", "add-iam-policy-binding")}
    assert bucket_roles == {(runtime, "roles/storage.objectAdmin"), (ci, "roles/storage.objectAdmin"),
                            (f"serviceAccount:{BUILD_SA}", "roles/storage.objectViewer")}
    registry_roles = {(_flag(c, "--member"), _flag(c, "--role")) for c in _find(gcloud, "repositories", "add-iam-policy-binding")}
    assert registry_roles == {(runtime, "roles/artifactregistry.reader"), (ci, "roles/artifactregistry.reader"),
                              (f"serviceAccount:{BUILD_SA}", "roles/artifactregistry.writer")}
    provider = creates[-1]
    assert _flag(provider, "--attribute-condition") == f"assertion.repository_id == '{REPOSITORY_ID}'"
    wif = _find(gcloud, "add-iam-policy-binding", "roles/iam.workloadIdentityUser")
    assert len(wif) == 1 and _flag(wif[0], "--member").endswith(f"/attribute.repository_id/{REPOSITORY_ID}")
    assert f"projects/{PROJECT_NUMBER}/" in _flag(wif[0], "--member")
    lifecycle = json.loads((tmp_path / "lifecycle.json").read_text())
    rule = lifecycle["rule"][0]
    assert rule["action"] == {"type": "Delete"}
    assert rule["condition"]["matchesPrefix"] == ["teams/sf/kedro-vertex-ci/", "kedro-vertex-ci/source/"]
    variables = {c[3]: _flag(c, "--body") for c in calls if c[:3] == ["gh", "variable", "set"]}
    assert variables == {
        "GCP_WORKLOAD_IDENTITY_PROVIDER":
            f"projects/{PROJECT_NUMBER}/locations/global/workloadIdentityPools/github/providers/kedro-vertex",
        "GCP_SERVICE_ACCOUNT": "kedro-vertex-ci@acme-ml.iam.gserviceaccount.com",
    }
    assert all(_flag(c, "--repo") == "acme/spaceflights" for c in calls if c[:2] == ["gh", "variable"])


def test_rerun_creates_nothing(scaffolded: Path, tmp_path: Path) -> None:
    first = _run(scaffolded, tmp_path)
    second = _run(scaffolded, tmp_path)  # would fail on ALREADY_EXISTS if anything were created twice
    described = [c for c in second if "describe" in c and c[1] != "projects"]
    assert len(described) == 6
    assert not [c for c in second if "create" in c or "create-oidc" in c]
    assert len([c for c in first if "create" in c or "create-oidc" in c]) == 6


def test_new_vertexai_yml_names_the_runtime_account_the_script_creates(tmp_path: Path, monkeypatch) -> None:
    from kedro_vertex_ci.cli import cli

    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "gitconfig"))
    monkeypatch.setattr("kedro_vertex_ci.scaffold.pins.LS_REMOTE_TIMEOUT", 0.01)
    project = make_project(tmp_path, "solo", shape="chain", n=2)
    (project / "conf/base/vertexai.yml").unlink(missing_ok=True)
    result = CliRunner().invoke(cli, ["--project", str(project), "init", "acme-ml", "europe-west4", "--github",
                                      "--github-repo", "acme/solo"])
    assert result.exit_code == 0, result.output
    config = yaml.safe_load((project / "conf/base/vertexai.yml").read_text())
    account = config["run_config"]["service_account"]
    assert account == "kedro-pipelines@acme-ml.iam.gserviceaccount.com"
    assert f"RUNTIME_SA={account}\n" in (project / "gcp-setup.sh").read_text()
    assert "BUCKET=acme-ml-vertex-pipelines\n" in (project / "gcp-setup.sh").read_text()
