"""The action end to end on a Kubeflow Pipelines target: the real ``kfp.Client`` against the strict KFP fake,
the fake GitHub API for the PR comment, a real Kedro project whose vertexai.yml says ``target: kfp``.

No OIDC token in these jobs: with ``build: false`` and kfp.auth none/dex nothing Google is needed (issue 15);
the Vertex rule (a missing token is an error) is kept, see the last tests.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from action.events import ActionPlan, Event, may_run_without_google, require_credentials
from action.inputs import read_inputs
from action.main import run
from kedro_vertex_ci.errors import AuthError
from kedro_vertex_ci.testing import make_project
from tests.fakes.github_api import FakeGitHub
from tests.fakes.kfp_server import DEX_PASSWORD, DEX_USER, FakeKfp
from tests.kfp.conftest import kfp_project

from .conftest import GITHUB_TOKEN, read_outputs, runner_env

pytestmark = pytest.mark.slow
HEAD = "4f2c1a9be3d84c7f9a0e1b2c3d4e5f6a7b8c9d0e"  # the pushed commit in push_branch.json / pull_request.json


@pytest.fixture
def kfp() -> Iterator[FakeKfp]:
    server = FakeKfp().start()
    yield server
    server.stop()


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub(GITHUB_TOKEN) as server:
        yield server


@pytest.fixture
def kfp_env(tmp_path: Path, kfp: FakeKfp, github: FakeGitHub) -> Callable[..., dict[str, str]]:
    """Runner variables for one event, without an OIDC token, for a project targeting the KFP fake."""
    workspace = tmp_path / "workspace"
    schedules = {"default_schedule": {"cron_expression": "0 6 * * 1"}}

    def make(case: str, auth: dict[str, Any] | None = None, **inputs: str) -> dict[str, str]:
        project = kfp_project(workspace, kfp.host, auth, schedules=schedules)
        env = runner_env(case, workspace, oidc=False, api_url=github.url, working_directory=project.name,
                         requirements="", build="false", **inputs)
        env["KEDRO_VERTEX_CI_POLL_SECONDS"] = "0"
        return env

    return make


def _run(env: dict[str, str], **kwargs: Any) -> tuple[int, str]:
    stream = io.StringIO()
    code = run(env, stream=stream, **kwargs)
    return code, stream.getvalue()


def _only(table: dict) -> dict:
    assert len(table) == 1, table
    return next(iter(table.values()))


def test_push_to_a_branch_runs_once_per_commit_and_terminates_superseded_runs(kfp, kfp_env) -> None:
    env = kfp_env("push_branch")
    code, log = _run(env)
    assert code == 0, log
    run_ = _only(kfp.runs)
    outputs = read_outputs(Path(env["GITHUB_OUTPUT"]))
    assert outputs["job-id"] == run_["run_id"] and outputs["state"] == "PENDING"
    assert outputs["run-url"] == f"{kfp.url}/#/runs/details/{run_['run_id']}"
    assert run_["display_name"].endswith(f"-{HEAD[:12]}")
    assert run_["description"] == f"kedro-vertex-ci: branch feature/faster-prep, sha {HEAD}, run 9876543210"
    assert isinstance(run_["runtime_config"]["parameters"]["start"], int)
    summary = Path(env["GITHUB_STEP_SUMMARY"]).read_text()
    assert "Kedro → Kubeflow Pipelines" in summary and outputs["run-url"] in summary

    code, log = _run(kfp_env("push_branch"))  # the same commit again: reused, not resubmitted
    assert code == 0, log
    assert "::notice title=One run per commit::" in log and len(kfp.runs) == 1

    late = {**kfp_env("push_branch"), "GITHUB_SHA": "6" * 40, "GITHUB_RUN_ID": "9876543200"}
    code, log = _run(late)  # an older workflow run submitting late cancels nothing
    assert code == 0 and "cancelled superseded" not in log, log
    newer = {**kfp_env("push_branch"), "GITHUB_SHA": "5" * 40, "GITHUB_RUN_ID": "9876543299"}
    code, log = _run(newer)
    assert code == 0, log
    assert len(kfp.runs) == 3
    assert kfp.terminated == {rid for rid, r in kfp.runs.items() if not r["display_name"].endswith("-" + "5" * 12)}
    assert ("POST", f"/pipeline/apis/v2beta1/runs/{run_['run_id']}:terminate") in kfp.requests
    assert "cancelled superseded runs: " in log


def test_push_to_the_default_branch_keeps_exactly_one_recurring_run(kfp, kfp_env, github) -> None:
    for _ in range(2):
        env = kfp_env("push_main")
        code, log = _run(env)
        assert code == 0, log
    enabled = kfp.enabled_recurring_runs()
    assert len(enabled) == 1 and len(kfp.recurring) == 1 and not kfp.runs
    assert enabled[0]["trigger"]["cron_schedule"]["cron"] == "0 0 6 * * 1"
    outputs = read_outputs(Path(env["GITHUB_OUTPUT"]))
    assert outputs["schedule-name"] == enabled[0]["recurring_run_id"] and outputs["job-id"] == ""
    assert not github.calls()
    # mode unschedule builds nothing, so even with build: true it needs no OIDC token on KFP
    env = {**kfp_env("push_main", mode="unschedule"), "INPUT_BUILD": "true"}
    code, log = _run(env)
    assert code == 0, log
    assert not kfp.recurring and read_outputs(Path(env["GITHUB_OUTPUT"]))["schedule-name"] == outputs["schedule-name"]
    code, log = _run(env)
    assert code == 0 and "nothing to delete" in log, log


def test_pull_request_with_dex_from_the_steps_env_comments_the_kfp_ui_link(kfp, kfp_env, github) -> None:
    kfp.auth = "dex"
    env = {**kfp_env("pull_request", {"mode": "dex"}, wait="true"),
           "DEX_USERNAME": DEX_USER, "DEX_PASSWORD": DEX_PASSWORD}
    code, log = _run(env)
    assert code == 0, log
    assert kfp.logins == 1
    run_ = _only(kfp.runs)
    assert "pr 17" in run_["description"] and run_["display_name"].endswith(f"-{HEAD[:12]}")
    outputs = read_outputs(Path(env["GITHUB_OUTPUT"]))
    assert outputs["state"] == "SUCCEEDED"
    body = _only({c["id"]: c for c in github.state.comments[17]})["body"]
    assert f"[{run_['run_id']}]({kfp.url}/#/runs/details/{run_['run_id']})" in body
    assert "Kedro → Kubeflow Pipelines" in body and "| KFP run |" in body and "**SUCCEEDED**" in body
    assert f"::add-mask::{DEX_PASSWORD}" in log
    printed = "\n".join(line for line in log.splitlines() if not line.startswith("::add-mask::"))
    assert DEX_PASSWORD not in printed and not any(s in printed for s in kfp.sessions)

    kfp.run_states = ["PENDING", "FAILED"]
    env = {**env, "GITHUB_SHA": "c" * 40, "INPUT_FORCE": "true"}
    code, log = _run(env)
    assert code == 1 and "::error title=Kubeflow run failed::the pipeline run ended FAILED" in log


def _no_cloud(*_args: object, **_kwargs: object) -> None:
    raise AssertionError("this path must not connect to any cloud API")


def test_dry_run_names_the_kfp_target_from_the_inputs(tmp_path: Path) -> None:
    """A Vertex project switched to KFP by the target and kfp-host inputs; bad combinations exit 2."""
    workspace = tmp_path / "workspace"
    project = make_project(workspace, "demo", shape="chain", n=2, vertexai={
        "project_id": "acme-ml", "region": "europe-west4",
        "run_config": {"image": "registry.example.com/demo:1", "root": "gs://acme/root"}})
    base = dict(working_directory=project.name, requirements="", oidc=False)
    env = runner_env("pull_request", workspace, dry_run="true", target="kfp", kfp_host="https://kf.example.com/pipeline",
                     **base)  # type: ignore[arg-type]
    code, log = _run(env, connect=_no_cloud)
    assert code == 0, log
    assert "  target: Kubeflow Pipelines at https://kf.example.com/pipeline (auth none)" in log
    code, log = _run(runner_env("push_branch", workspace, target="kfp", build="false", **base),  # type: ignore[arg-type]
                     connect=_no_cloud)
    assert code == 2 and "::error title=Invalid action input::target: is kfp but vertexai.yml has no kfp section" in log
    code, log = _run(runner_env("push_branch", workspace, kfp_host="https://kf.example.com/pipeline", build="false",
                                **base), connect=_no_cloud)  # type: ignore[arg-type]
    assert code == 2 and "kfp-host: is set but the target is vertex" in log
    code, log = _run(runner_env("push_branch", workspace, build="false", **base), connect=_no_cloud)  # type: ignore[arg-type]
    assert code == 1 and "permissions: id-token: write" in log  # Vertex without a token: still an error


@pytest.mark.parametrize(("auth", "build", "needed"), [
    ({"mode": "none"}, "true", "nothing can be built"),  # decided before compiling: Cloud Build needs Google
    ({"mode": "iap", "client_id": "x.apps.googleusercontent.com", "service_account": "a@b.iam.gserviceaccount.com"},
     "false", "kfp.auth mode iap"),
])
def test_a_kfp_target_that_needs_google_still_requires_the_token(kfp, kfp_env, auth, build, needed) -> None:
    env = {**kfp_env("push_branch", auth), "INPUT_BUILD": build}
    code, log = _run(env, connect=_no_cloud)
    assert code == 1, log
    errors = [line for line in log.splitlines() if line.startswith("::error ")]
    assert len(errors) == 1 and needed in errors[0] and "id-token: write" in errors[0]
    assert not kfp.requests


def test_the_credential_rule_defers_only_what_the_config_can_change() -> None:
    def inputs(**values: str):
        return read_inputs({f"INPUT_{k.upper().replace('_', '-')}": v for k, v in values.items()})

    assert may_run_without_google(inputs(build="false"))
    assert may_run_without_google(inputs(build="false", target="kfp"))
    assert not may_run_without_google(inputs(build="false", target="vertex"))
    assert not may_run_without_google(inputs(build="true", target="kfp"))
    event = Event(name="push", repository="o/r", sha="a", head_sha="a", ref="refs/heads/x", branch="x",
                  default_branch="main", credentials=False)
    plan = ActionPlan("run-once", False, False, "why")
    require_credentials(event, plan, dry_run=False, google_needed=False, why="kfp.auth mode iap")
    with pytest.raises(AuthError, match="permissions: id-token: write"):
        require_credentials(event, plan, dry_run=False, google_needed=True, why="Vertex AI")
    require_credentials(event, plan, dry_run=True, google_needed=True, why="Vertex AI")


def test_two_jobs_racing_on_one_commit_keep_the_first_run(kfp, kfp_env) -> None:
    """Both jobs passed find_run before either created its run: the second keeps the first's, terminates its own."""
    from action.cloud import CloudTarget, RunScope
    from action.kfp_cloud import connect_kfp
    from action.main import compile_project

    env = kfp_env("push_branch")
    assert _run(env)[0] == 0
    first = _only(kfp.runs)
    project = Path(env["GITHUB_WORKSPACE"]) / env["INPUT_WORKING-DIRECTORY"]
    compiled = compile_project(project, None, "__default__", None, {})
    cloud = connect_kfp(CloudTarget("p", "r", None, None), compiled.config, env, lambda _s: None, lambda _s: None)
    raced = cloud.run_once(compiled, labels={}, params={}, scope=RunScope(HEAD, "feature/faster-prep"))
    assert raced.reused and raced.job_id == first["run_id"]
    assert len(kfp.runs) == 2 and kfp.terminated == set(kfp.runs) - {first["run_id"]}
    kfp.runs[first["run_id"]]["state"] = "SUCCEEDED"
    assert cloud.target.terminate(first["run_id"]) is False  # the server refuses finished runs (400)
    assert ("POST", f"/pipeline/apis/v2beta1/runs/{first['run_id']}:terminate") in kfp.requests


@pytest.mark.parametrize(("values", "message"), [
    ({"target": "kubeflow"}, "target: expected vertex or kfp"),
    ({"target": "kfp", "kfp-host": "kubeflow.example.com"}, "kfp-host: expected the KFP API URL"),
    ({"target": "vertex", "kfp-host": "https://kf.example.com/pipeline"}, "kfp-host: is set but target is vertex"),
])
def test_target_inputs_are_validated_with_the_others(values: dict[str, str], message: str) -> None:
    from kedro_vertex_ci.errors import ConfigError

    with pytest.raises(ConfigError) as err:
        read_inputs({f"INPUT_{k.upper()}": v for k, v in {**values, "mode": "bogus"}.items()})
    text = "\n".join(f"{p.key}: {p.message}" for p in err.value.problems)
    assert message in text and "mode: expected one of" in text  # all problems reported together
    parsed = read_inputs({"INPUT_TARGET": "KFP", "INPUT_KFP-HOST": "https://kf.example.com/pipeline/"})
    assert (parsed.target, parsed.kfp_host) == ("kfp", "https://kf.example.com/pipeline")
