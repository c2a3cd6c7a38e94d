"""The cloud commands end to end on a real `kedro new` project, against the loopback fake and the emulator."""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile

import pytest
from click.testing import CliRunner

from kedro_vertex_ci.cli import cli
from tests.conftest import CLI
from tests.fakes.google import OIDC_REQUEST_TOKEN

from .conftest import PROJECT, REGION


def _invoke(project, env, *args):
    result = CliRunner().invoke(cli, ["--project", str(project), *args], env=env, catch_exceptions=False)
    return result


def _secrets(fake):
    return [*fake.issued_tokens, OIDC_REQUEST_TOKEN]


def _assert_no_secret(text: str, fake) -> None:
    for line in text.splitlines():
        if line.startswith("::add-mask::"):
            continue
        for secret in _secrets(fake):
            assert secret not in line


def test_run_once_submits_the_compiled_spec_with_identity_network_and_git_labels(fake, cli_env, cloud_project):
    result = _invoke(cloud_project, cli_env, "run-once", "--labels", "Owner=Data Team")
    assert result.exit_code == 0, result.output
    request, = fake.calls("POST", "pipelineJobs")
    assert request.bearer in fake.issued_tokens and request.bearer.startswith("ya29.sa-")
    body = request.json
    job_id = request.query["pipelineJobId"][0]
    assert job_id.startswith("demo-experiment-")
    assert body["serviceAccount"] == "runner@demo-project.iam.gserviceaccount.com"
    assert body["network"] == "projects/123456789012/global/networks/ml-vpc"
    assert body["runtimeConfig"]["gcsOutputDirectory"] == "gs://demo-bucket/pipelines"
    assert body["labels"] == {"team": "ml", "git-sha": "0123456789abcdef0123456789abcdef01234567",
                              "git-branch": "feature-fast-compile", "kvc_project": "demo-experiment",
                              "kvc_pipeline": "default", "kvc_kedro_project": "demo", "owner": "data-team"}
    assert body["pipelineSpec"]["deploymentSpec"]["executors"]
    console = f"https://console.cloud.google.com/vertex-ai/locations/{REGION}/pipelines/runs/{job_id}?project={PROJECT}"
    assert console in result.output
    _assert_no_secret(result.output, fake)


def test_run_once_wait_follows_and_fails_when_the_run_fails(fake, cli_env, cloud_project):
    # one RUNNING poll goes to waiting for the run's experiment context, one to following the run
    fake.job_states = ["PIPELINE_STATE_PENDING", "PIPELINE_STATE_RUNNING", "PIPELINE_STATE_RUNNING",
                       "PIPELINE_STATE_FAILED"]
    result = _invoke(cloud_project, cli_env, "run-once", "--wait")
    assert result.exit_code == 1
    assert "RUNNING" in result.output and "ended PIPELINE_STATE_FAILED" in result.output
    assert "Traceback" not in result.output


def test_run_once_wait_succeeds(fake, cli_env, cloud_project):
    result = _invoke(cloud_project, cli_env, "run-once", "--wait", "--no-cache")
    assert result.exit_code == 0, result.output
    assert "succeeded" in result.output
    tasks = fake.calls("POST", "pipelineJobs")[0].json["pipelineSpec"]["root"]["dag"]["tasks"]
    assert all(t["cachingOptions"]["enableCache"] is False for t in tasks.values())


def test_run_once_retries_then_translates_permanent_errors(fake, cli_env, cloud_project):
    fake.inject("POST", "pipelineJobs", status=503, times=1)
    ok = _invoke(cloud_project, cli_env, "run-once")
    assert ok.exit_code == 0, ok.output
    assert "retrying submit the pipeline job" in ok.output

    fake.inject("POST", "pipelineJobs", status=403, times=1)
    denied = _invoke(cloud_project, cli_env, "run-once")
    assert denied.exit_code == 1
    assert "roles/aiplatform.user" in denied.output and "Traceback" not in denied.output


def test_missing_oidc_permission_fails_before_any_vertex_call(fake, cli_env, cloud_project):
    env = {**cli_env, "ACTIONS_ID_TOKEN_REQUEST_URL": "", "ACTIONS_ID_TOKEN_REQUEST_TOKEN": ""}
    result = _invoke(cloud_project, env, "run-once")
    assert result.exit_code == 1 and "id-token: write" in result.output
    assert not fake.requests


def test_schedule_twice_keeps_one_schedule_per_project_and_pipeline(fake, cli_env, cloud_project):
    first = _invoke(cloud_project, cli_env, "schedule")
    assert first.exit_code == 0, first.output
    second = _invoke(cloud_project, cli_env, "schedule", "--cron", "30 2 * * MON")
    assert second.exit_code == 0, second.output
    training = _invoke(cloud_project, cli_env, "schedule", "-p", "training", "--cron", "TZ=America/New_York 0 1 * * *")
    assert training.exit_code == 0, training.output

    default, = fake.active_schedules("kvc-demo-experiment-default")
    assert default["cron"] == "TZ=Europe/Warsaw 30 2 * * MON"
    assert "replaced 1" in second.output
    train, = fake.active_schedules("kvc-demo-experiment-training")
    assert train["cron"] == "TZ=America/New_York 0 1 * * *"
    job = default["createPipelineJobRequest"]["pipelineJob"]
    assert job["labels"]["kvc_pipeline"] == "default" and job["serviceAccount"].startswith("runner@")


def test_invalid_cron_is_rejected_before_any_call(fake, cli_env, cloud_project):
    result = _invoke(cloud_project, cli_env, "schedule", "--cron", "0 25 * * *")
    assert result.exit_code == 2 and "25 is outside 0-23" in result.output
    assert not fake.requests


def test_build_uploads_a_clean_context_and_returns_the_pushed_digest(fake, cli_env, cloud_project, bucket):
    bucket("demo-bucket")
    (cloud_project / ".git").mkdir(exist_ok=True)
    (cloud_project / ".git" / "config").write_text("[core]\n")
    (cloud_project / "gha-creds-1234.json").write_text("{}")
    (cloud_project / "my-key.json").write_text(json.dumps({"type": "service_account", "private_key": "x"}))
    for folder in ("data/01_raw", "data/02_intermediate", "conf/local"):
        (cloud_project / folder).mkdir(parents=True, exist_ok=True)
    (cloud_project / "data" / "01_raw" / "in.csv").write_text("a\n1\n")
    (cloud_project / "data" / "02_intermediate" / "big.parquet").write_text("local only")
    (cloud_project / "conf" / "local" / "credentials.yml").write_text("secret: 1\n")
    (cloud_project / ".dockerignore").write_text("notebooks/\n*.log\n")
    (cloud_project / "run.log").write_text("noise")

    result = _invoke(cloud_project, cli_env, "build")
    assert result.exit_code == 0, result.output

    create, = fake.calls("POST", "/builds$")
    assert create.path == f"/v1/projects/{PROJECT}/locations/{REGION}/builds"
    body = create.json
    repo = "europe-docker.pkg.dev/demo-project/kvc/demo"
    sha = "0123456789abcdef0123456789abcdef01234567"
    assert body["images"] == [f"{repo}:{sha}", f"{repo}:feature-Fast-Compile"]
    build_args = body["steps"][-1]["args"]
    assert "--cache-from" in build_args and f"{repo}:feature-Fast-Compile" in build_args
    assert "BUILDKIT_INLINE_CACHE=1" in build_args
    assert body["serviceAccount"] == "projects/demo-project/serviceAccounts/builder@demo-project.iam.gserviceaccount.com"
    assert body["options"]["logging"] in ("CLOUD_LOGGING_ONLY", 5)

    digest_line = [line for line in result.output.splitlines() if line.startswith("image=")]
    assert digest_line and digest_line[0].startswith(f"image={repo}@sha256:")
    assert "logs: https://console.cloud.google.com/cloud-build/builds" in result.output

    source = body["source"]["storageSource"]
    blob = bucket.client.bucket(source["bucket"]).blob(source["object"])
    with tarfile.open(fileobj=io.BytesIO(blob.download_as_bytes()), mode="r:gz") as tar:
        names = set(tar.getnames())
    assert "Dockerfile" in names and "data/01_raw/in.csv" in names and "src/demo/pipeline_registry.py" in names
    for leaked in (".git/config", "gha-creds-1234.json", "my-key.json", "data/02_intermediate/big.parquet",
                   "conf/local/credentials.yml", "run.log"):
        assert leaked not in names
    _assert_no_secret(result.output, fake)


def test_build_no_wait_prints_the_build_id(fake, cli_env, cloud_project, bucket):
    bucket("demo-bucket")
    result = _invoke(cloud_project, cli_env, "build", "--no-wait")
    assert result.exit_code == 0, result.output
    assert f"build_id={next(iter(fake.builds))}" in result.output
    assert not fake.calls("GET", "operations")


def test_build_into_a_missing_bucket_names_the_bucket(fake, cli_env, cloud_project):
    (cloud_project / "conf" / "base" / "vertexai.yml").write_text(
        (cloud_project / "conf" / "base" / "vertexai.yml").read_text() + "  staging_bucket: no-such-bucket\n")
    result = _invoke(cloud_project, cli_env, "build")
    assert result.exit_code == 1
    assert "gs://no-such-bucket does not exist" in result.output and "gcloud storage buckets create" in result.output


def test_run_once_with_build_pins_the_image_by_digest(fake, cli_env, cloud_project, bucket):
    bucket("demo-bucket")
    result = _invoke(cloud_project, cli_env, "run-once", "--build")
    assert result.exit_code == 0, result.output
    spec = fake.calls("POST", "pipelineJobs")[0].json["pipelineSpec"]
    images = {e["container"]["image"] for e in spec["deploymentSpec"]["executors"].values()}
    assert len(images) == 1
    image, = images
    assert image.startswith("europe-docker.pkg.dev/demo-project/kvc/demo@sha256:")


def test_list_pipelines_shows_schedules_and_runs(fake, cli_env, cloud_project):
    assert _invoke(cloud_project, cli_env, "run-once").exit_code == 0
    assert _invoke(cloud_project, cli_env, "schedule").exit_code == 0
    as_json = _invoke(cloud_project, cli_env, "list-pipelines", "--json")
    assert as_json.exit_code == 0, as_json.output
    rows = json.loads(as_json.output[as_json.output.index("["):])
    assert {r["kind"] for r in rows} == {"run", "schedule"}
    run = next(r for r in rows if r["kind"] == "run")
    assert run["link"].startswith("https://console.cloud.google.com/vertex-ai/locations/")
    listing = [r for r in fake.calls("GET", "pipelineJobs$")]
    assert listing[-1].query["filter"] == ['labels.kvc_project="demo-experiment"']
    table = _invoke(cloud_project, cli_env, "list-pipelines")
    assert "KIND" in table.output and "kvc-demo-experiment-default" in table.output


def test_ui_prints_the_console_url_without_a_browser(cloud_project):
    result = _invoke(cloud_project, {"CI": "true"}, "ui")
    assert result.exit_code == 0
    assert "https://console.cloud.google.com/vertex-ai/pipelines?project=demo-project&region=europe-west4" in result.output


@pytest.mark.slow
def test_real_cli_subprocess_schedules_through_env_endpoints_and_masks_tokens(fake, cli_env, cloud_project):
    env = {**os.environ, **cli_env}
    done = subprocess.run([CLI, "schedule"], cwd=cloud_project, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    assert len(fake.active_schedules("kvc-demo-experiment-default")) == 1
    assert fake.calls("POST", "generateAccessToken")
    masked = [line for line in done.stdout.splitlines() if line.startswith("::add-mask::")]
    assert f"::add-mask::{OIDC_REQUEST_TOKEN}" in masked
    assert any(line.removeprefix("::add-mask::").startswith("ya29.sa-") for line in masked)
    _assert_no_secret(done.stdout + done.stderr, fake)
    again = subprocess.run([CLI, "schedule"], cwd=cloud_project, env=env, capture_output=True, text=True, timeout=180)
    assert again.returncode == 0, again.stderr
    assert len(fake.active_schedules("kvc-demo-experiment-default")) == 1


def test_run_once_wait_timeout_says_the_run_goes_on(fake, cli_env, cloud_project):
    fake.job_states = ["PIPELINE_STATE_PENDING", "PIPELINE_STATE_RUNNING"]
    result = _invoke(cloud_project, {**cli_env, "KEDRO_VERTEX_CI_POLL_SECONDS": "0.05"}, "run-once", "--wait",
                     "--timeout", "0.2")
    assert result.exit_code == 1
    assert "still PIPELINE_STATE_RUNNING" in result.output and "keeps running" in result.output


def test_vpc_without_project_number_is_a_config_error_before_any_call(fake, cli_env, cloud_project):
    config = cloud_project / "conf" / "base" / "vertexai.yml"
    config.write_text(config.read_text().replace("projects/123456789012/global/networks/ml-vpc", "ml-vpc"))
    result = _invoke(cloud_project, cli_env, "run-once")
    assert result.exit_code == 2
    assert "run_config.network.vpc" in result.output and "projects/PROJECT_NUMBER/global/networks/ml-vpc" in result.output
    assert not fake.requests


def test_schedule_with_build_pins_the_digest_in_the_scheduled_spec(fake, cli_env, cloud_project, bucket):
    bucket("demo-bucket")
    result = _invoke(cloud_project, cli_env, "schedule", "--build")
    assert result.exit_code == 0, result.output
    schedule, = fake.active_schedules()
    spec = schedule["createPipelineJobRequest"]["pipelineJob"]["pipelineSpec"]
    images = {e["container"]["image"] for e in spec["deploymentSpec"]["executors"].values()}
    assert len(images) == 1 and "@sha256:" in images.pop()
    assert result.output.count("build WORKING") == 1


def test_schedule_creates_nothing_the_config_does_not_ask_for(fake, cli_env, cloud_project):
    """No schedules in vertexai.yml and no --cron: exit 2 before any call, no daily/hourly default appears."""
    config = cloud_project / "conf" / "base" / "vertexai.yml"
    text = config.read_text()
    start = text.index("  schedules:\n")
    config.write_text(text[:start] + text[text.index("build:\n"):])
    result = _invoke(cloud_project, cli_env, "schedule")
    assert result.exit_code == 2, result.output
    assert "no schedule configured for pipeline '__default__'" in result.output and "--cron" in result.output
    assert not fake.requests
    asked = _invoke(cloud_project, cli_env, "schedule", "--cron", "15 5 * * *")
    assert asked.exit_code == 0, asked.output
    only, = fake.active_schedules()
    assert only["cron"].endswith("15 5 * * *")
