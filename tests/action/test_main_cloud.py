"""The action end to end against the loopback fakes: Google (STS, IAM, OIDC, Cloud Build, Vertex), the
storage emulator and a fake GitHub API, on a real `kedro new` project, one recorded payload per event."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from action.main import run
from tests.fakes.github_api import FakeGitHub
from tests.fakes.google import OIDC_REQUEST_TOKEN, FakeGoogle
from tests.gcp.conftest import SERVICE_ACCOUNT

from .conftest import GITHUB_TOKEN, read_outputs, runner_env

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub(GITHUB_TOKEN) as server:
        yield server


@pytest.fixture
def action_env(fake: FakeGoogle, storage_emulator: str, github: FakeGitHub, cloud_project: Path, bucket
               ) -> Callable[..., dict[str, str]]:
    """Runner variables for one event, pointed at the fakes; the project lives in a workspace subfolder."""
    bucket("demo-bucket")

    def make(case: str, **inputs: str) -> dict[str, str]:
        env = runner_env(
            case, cloud_project.parent, api_url=github.url, working_directory=cloud_project.name,
            requirements="", workload_identity_provider=fake.provider_name, service_account=SERVICE_ACCOUNT,
            **inputs,
        )
        env["ACTIONS_ID_TOKEN_REQUEST_URL"] = fake.oidc_url
        env["ACTIONS_ID_TOKEN_REQUEST_TOKEN"] = OIDC_REQUEST_TOKEN
        for service in ("VERTEX", "CLOUDBUILD", "STS", "IAMCREDENTIALS", "ARTIFACTREGISTRY"):
            env[f"KEDRO_VERTEX_CI_{service}_ENDPOINT"] = fake.url
        env["KEDRO_VERTEX_CI_STORAGE_ENDPOINT"] = storage_emulator
        env["KEDRO_VERTEX_CI_POLL_SECONDS"] = "0"
        env["GOOGLE_CLOUD_PROJECT"] = "demo-project"
        env["GOOGLE_APPLICATION_CREDENTIALS"] = ""
        return env

    return make


def run_action(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    stream = io.StringIO()
    code = run(dict(os.environ), stream=stream)
    return code, stream.getvalue()


def assert_no_secret(text: str, fake: FakeGoogle) -> None:
    secrets = [*fake.issued_tokens, OIDC_REQUEST_TOKEN, GITHUB_TOKEN]
    assert fake.issued_tokens  # the exchange really happened
    for line in text.splitlines():
        if not line.startswith("::add-mask::"):
            assert not any(secret in line for secret in secrets), line


def images_in(spec: dict) -> set[str]:
    return {e["container"]["image"] for e in spec["deploymentSpec"]["executors"].values()}


def test_pull_request_builds_runs_once_and_keeps_one_comment(action_env, fake, github, monkeypatch) -> None:
    env = action_env("pull_request")
    code, log = run_action(env, monkeypatch)
    assert code == 0, log
    outputs = read_outputs(Path(env["GITHUB_OUTPUT"]))
    assert outputs["image-digest"].startswith("sha256:") and outputs["job-id"]
    assert outputs["run-url"] == (
        f"https://console.cloud.google.com/vertex-ai/locations/europe-west4/pipelines/runs/{outputs['job-id']}"
        "?project=demo-project"
    )
    build = fake.calls("POST", "builds")[0].json
    assert any(f":{'4f2c1a9be3d84c7f9a0e1b2c3d4e5f6a7b8c9d0e'}" in tag for tag in build["images"])
    job = fake.calls("POST", "pipelineJobs")[0].json
    assert images_in(job["pipelineSpec"]) == {f"europe-docker.pkg.dev/demo-project/kvc/demo@{outputs['image-digest']}"}
    assert job["labels"]["github-pr"] == "17" and job["labels"]["git-sha"] == "4f2c1a9be3d84c7f9a0e1b2c3d4e5f6a7b8c9d0e"
    assert job["serviceAccount"] == "runner@demo-project.iam.gserviceaccount.com"
    comments = github.state.comments[17]
    assert len(comments) == 1
    body = comments[0]["body"]
    assert body.startswith("<!-- kedro-vertex-ci pipeline=__default__ project=")
    for expected in (outputs["run-url"], "cloud-build/builds", outputs["image-digest"], "| Steps | 2 |", "flowchart TD"):
        assert expected in body
    summary = Path(env["GITHUB_STEP_SUMMARY"]).read_text()
    assert "Submitted a run" in summary and outputs["run-url"] in summary and "```mermaid" in summary
    assert "::group::Build the image with Cloud Build" in log
    assert_no_secret(log + summary + body, fake)

    # the next push to the PR updates the same comment in place
    code, log = run_action(action_env("pull_request", wait="true"), monkeypatch)
    assert code == 0, log
    comments = github.state.comments[17]
    assert len(comments) == 1 and "**PIPELINE_STATE_SUCCEEDED**" in comments[0]["body"]
    assert [r.method for r in github.calls() if r.method != "GET"] == ["POST", "PATCH", "PATCH"]


def test_push_to_a_branch_finds_its_pr_for_the_comment(action_env, fake, github, monkeypatch) -> None:
    github.state.commit_pulls["4f2c1a9be3d84c7f9a0e1b2c3d4e5f6a7b8c9d0e"] = [23]
    code, log = run_action(action_env("push_branch", build="false"), monkeypatch)
    assert code == 0, log
    assert not fake.calls("POST", "builds")  # build: false
    assert len(fake.calls("POST", "pipelineJobs")) == 1
    assert len(github.state.comments[23]) == 1
    assert any(r.path.endswith("/commits/4f2c1a9be3d84c7f9a0e1b2c3d4e5f6a7b8c9d0e/pulls") for r in github.calls("GET"))


def test_push_to_main_replaces_the_schedule(action_env, fake, github, monkeypatch) -> None:
    for _ in range(2):
        env = action_env("push_main", cron="0 6 * * 1")
        code, log = run_action(env, monkeypatch)
        assert code == 0, log
    assert not fake.calls("POST", "pipelineJobs")
    active = fake.active_schedules()
    assert len(active) == 1 and active[0]["cron"].endswith("0 6 * * 1")
    outputs = read_outputs(Path(env["GITHUB_OUTPUT"]))
    assert outputs["schedule-name"] == active[0]["name"] and outputs["job-id"] == ""
    assert not github.calls()  # no PR, no comment
    spec = active[0]["createPipelineJobRequest"]["pipelineJob"]["pipelineSpec"]
    assert all("@sha256:" in image for image in images_in(spec))


def test_workflow_dispatch_runs_once_with_params(action_env, fake, github, monkeypatch) -> None:
    code, log = run_action(action_env("workflow_dispatch", build="false", params="x=5"), monkeypatch)
    assert code == 0, log
    spec = fake.calls("POST", "pipelineJobs")[0].json["pipelineSpec"]
    defaults = {k: v.get("defaultValue") for k, v in spec["root"]["inputDefinitions"]["parameters"].items()}
    assert 5 in defaults.values() or 5.0 in defaults.values(), defaults
    assert not github.calls()


def test_fork_pr_never_reaches_the_cloud(action_env, fake, github, monkeypatch) -> None:
    env = action_env("pull_request_fork")
    del env["ACTIONS_ID_TOKEN_REQUEST_URL"], env["ACTIONS_ID_TOKEN_REQUEST_TOKEN"]
    monkeypatch.delenv("ACTIONS_ID_TOKEN_REQUEST_URL", raising=False)
    monkeypatch.delenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN", raising=False)
    code, log = run_action(env, monkeypatch)
    assert code == 0, log
    assert not fake.requests and not github.calls()
    assert "compiled and validated only" in log


def test_a_failed_run_with_wait_fails_the_step_and_says_so(action_env, fake, github, monkeypatch) -> None:
    fake.job_states = ["PIPELINE_STATE_PENDING", "PIPELINE_STATE_FAILED"]
    code, log = run_action(action_env("pull_request", build="false", wait="true"), monkeypatch)
    assert code == 1
    assert "::error title=Vertex run failed::the pipeline run ended PIPELINE_STATE_FAILED" in log
    assert "**PIPELINE_STATE_FAILED**" in github.state.comments[17][0]["body"]


@pytest.mark.timeout(1200)
def test_two_runs_racing_on_one_pr_leave_one_comment(action_env, fake, github) -> None:
    """Two real action processes on the same PR, listing comments in lockstep (the create/create race)."""
    github.state.list_barrier = threading.Barrier(2, timeout=600)  # a loaded CI machine starts them far apart
    # force: two distinct runs (without it the second finds the first's run and reuses it)
    env = {**os.environ, **action_env("pull_request", build="false", force="true"), "PYTHONPATH": str(REPO)}
    procs = []
    for index in range(2):
        run_env = {**env, "GITHUB_OUTPUT": f"{env['GITHUB_OUTPUT']}.{index}",
                   "GITHUB_STEP_SUMMARY": f"{env['GITHUB_STEP_SUMMARY']}.{index}"}
        procs.append(subprocess.Popen([sys.executable, "-P", "-m", "action"], env=run_env, cwd=env["GITHUB_WORKSPACE"],
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    logs = [proc.communicate(timeout=900)[0] for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], logs
    assert len(fake.calls("POST", "pipelineJobs")) == 2
    assert len(github.calls("POST")) == 2  # both created one: the race happened
    assert len(github.state.comments[17]) == 1
    job_ids = {read_outputs(Path(f"{env['GITHUB_OUTPUT']}.{i}"))["job-id"] for i in range(2)}
    assert any(job_id in github.state.comments[17][0]["body"] for job_id in job_ids)
    for log in logs:
        assert_no_secret(log, fake)


def _new_commit_on_the_pr(env: dict[str, str], folder: Path, sha: str) -> dict[str, str]:
    """The same PR after another push: the recorded payload with a new head commit."""
    payload = json.loads(Path(env["GITHUB_EVENT_PATH"]).read_text())
    payload["pull_request"]["head"]["sha"] = sha
    path = folder / "pull_request_next.json"
    path.write_text(json.dumps(payload))
    return {**env, "GITHUB_EVENT_PATH": str(path)}


def test_one_run_per_commit_superseded_runs_cancelled_and_github_quirks_survived(
        action_env, fake, github, monkeypatch, tmp_path) -> None:
    """Issue 12, points 1, 4, 5 and 6 on one PR, as api.github.com and Vertex behave.

    1. pull_request: the comment list lags behind the create (no IndexError, one comment, outputs written).
    2. The push of the same commit (the generated workflow triggers both): this commit's run is reused — no
       second build, no second Vertex job — through a secondary rate limit on GitHub.
    3. A new commit on the PR: the still-running job of the old commit is cancelled, and the comment says so.
    """
    first_sha = "4f2c1a9be3d84c7f9a0e1b2c3d4e5f6a7b8c9d0e"
    github.state.list_lag = 1
    env = action_env("pull_request")
    code, log = run_action(env, monkeypatch)
    assert code == 0, log
    first = read_outputs(Path(env["GITHUB_OUTPUT"]))
    assert first["job-id"].endswith("-4f2c1a9be3d8") and first["state"] == "PIPELINE_STATE_PENDING"
    assert first["image"] == f"europe-docker.pkg.dev/demo-project/kvc/demo@{first['image-digest']}"
    assert len(github.state.comments[17]) == 1

    github.state.list_lag = 0
    github.state.commit_pulls[first_sha] = [17]
    github.state.rate_limit("secondary", 1)
    env = action_env("push_branch")
    code, log = run_action(env, monkeypatch)
    assert code == 0, log
    assert "::notice title=One run per commit::" in log
    assert read_outputs(Path(env["GITHUB_OUTPUT"]))["job-id"] == first["job-id"]
    assert len(fake.calls("POST", r"/builds$")) == 1 and len(fake.calls("POST", r"/pipelineJobs$")) == 1
    assert len(github.state.comments[17]) == 1 and "not resubmitted" in github.state.comments[17][0]["body"]

    late = _new_commit_on_the_pr(action_env("pull_request"), tmp_path, "6" * 40)
    late["GITHUB_RUN_ID"] = "9876543200"  # an older workflow run that submits late cancels nothing newer
    code, log = run_action({**late, "INPUT_BUILD": "false"}, monkeypatch)
    assert code == 0 and "cancelled superseded" not in log, log
    env = _new_commit_on_the_pr(action_env("pull_request"), tmp_path, "5" * 40)
    env["GITHUB_RUN_ID"] = "9876543299"
    code, log = run_action(env, monkeypatch)
    assert code == 0, log
    second = read_outputs(Path(env["GITHUB_OUTPUT"]))
    assert second["job-id"] != first["job-id"]
    assert fake.job_state(first["job-id"]) == "PIPELINE_STATE_CANCELLED"
    late_job = next(j for j in fake.jobs if j.endswith("-666666666666"))
    assert fake.job_state(late_job) == "PIPELINE_STATE_CANCELLED"  # run 9876543200 < 9876543299
    assert fake.calls("POST", rf"/pipelineJobs/{first['job-id']}:cancel$")
    body = github.state.comments[17][0]["body"]
    assert "Superseded runs cancelled" in body and first["job-id"] in body and second["job-id"] in body, log
    filters = [r.query.get("filter", [""])[0] for r in fake.calls("GET", r"/pipelineJobs$")]
    assert any('labels.git-sha="4f2c1a9be3d84c7f9a0e1b2c3d4e5f6a7b8c9d0e"' in f for f in filters)
    assert any('labels.git-branch="feature-faster-prep"' in f for f in filters)


def test_an_image_already_tagged_with_the_commit_is_not_rebuilt(action_env, fake, github, monkeypatch) -> None:
    """Artifact Registry already has IMAGE:<commit> (an earlier run built it): run it, build nothing."""
    digest = "sha256:" + "ab" * 32
    fake.tag_image(f"europe-docker.pkg.dev/demo-project/kvc/demo:{'e' * 40}", digest)
    env = action_env("workflow_dispatch")
    code, log = run_action(env, monkeypatch)
    assert code == 0, log
    assert not fake.calls("POST", r"/builds$")
    assert fake.calls("GET", r"/tags/e{40}$")
    job = fake.calls("POST", r"/pipelineJobs$")[0].json
    assert images_in(job["pipelineSpec"]) == {f"europe-docker.pkg.dev/demo-project/kvc/demo@{digest}"}
    outputs = read_outputs(Path(env["GITHUB_OUTPUT"]))
    assert outputs["image-digest"] == digest
    forced = action_env("workflow_dispatch", force="true")
    code, log = run_action(forced, monkeypatch)
    assert code == 0, log
    assert len(fake.calls("POST", r"/builds$")) == 1  # force: true rebuilds


def test_mode_unschedule_deletes_the_pipelines_schedule_and_tolerates_none(action_env, fake, github,
                                                                            monkeypatch) -> None:
    code, log = run_action(action_env("push_main", cron="0 6 * * 1", build="false"), monkeypatch)
    assert code == 0, log
    scheduled, = fake.active_schedules()
    code, log = run_action(action_env("push_main", mode="unschedule"), monkeypatch)
    assert code == 0, log
    assert not fake.schedules and not fake.calls("POST", "builds")
    assert read_outputs(Path(action_env("push_main")["GITHUB_OUTPUT"]))["schedule-name"] == scheduled["name"]
    again, log = run_action(action_env("push_main", mode="unschedule"), monkeypatch)
    assert again == 0 and "nothing to delete" in log


def test_a_kfp_target_builds_with_cloud_build_and_runs_on_kubeflow(action_env, fake, github, monkeypatch) -> None:
    """Issue 15: the target and kfp-host inputs switch a Vertex project to KFP; the image is still built by Cloud
    Build (Google credentials through WIF) and the KFP run's pipeline version runs exactly that digest."""
    from tests.fakes.kfp_server import FakeKfp

    kfp = FakeKfp().start()
    try:
        env = action_env("pull_request", target="kfp", kfp_host=kfp.host)
        code, log = run_action(env, monkeypatch)
        assert code == 0, log
        outputs = read_outputs(Path(env["GITHUB_OUTPUT"]))
        assert len(fake.calls("POST", r"/builds$")) == 1 and not fake.calls("POST", r"/pipelineJobs$")
        assert len(kfp.runs) == 1
        run_ = next(iter(kfp.runs.values()))
        version = kfp.versions[run_["pipeline_version_reference"]["pipeline_version_id"]]
        assert images_in(version["pipeline_spec"]) == {
            f"europe-docker.pkg.dev/demo-project/kvc/demo@{outputs['image-digest']}"}
        assert outputs["run-url"] == f"{kfp.url}/#/runs/details/{run_['run_id']}"
        assert outputs["run-url"] in github.state.comments[17][0]["body"]
    finally:
        kfp.stop()
