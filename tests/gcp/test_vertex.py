"""Runs and schedules through the real aiplatform_v1 REST clients against the loopback fake."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timezone

import pytest

from kedro_vertex_ci.errors import CloudError, ConfigError
from kedro_vertex_ci.gcp import names
from kedro_vertex_ci.gcp.retry import RetryPolicy
from kedro_vertex_ci.gcp.schedules import deploy_schedule, normalize_cron, resolve_settings, schedule_body
from kedro_vertex_ci.gcp.vertex import JobSettings, Vertex, pipeline_job_body

from .conftest import PROJECT, REGION, SERVICE_ACCOUNT

FAST = RetryPolicy(attempts=4, base_delay=0.0)


@pytest.fixture
def vertex(credentials, endpoints):
    return Vertex(PROJECT, REGION, credentials, endpoints, policy=FAST, sleep=lambda _s: None)


def _settings(**extra) -> JobSettings:
    values = dict(display_name="Demo Pipeline", root="demo-bucket/runs", service_account=SERVICE_ACCOUNT,
                  network="projects/123/global/networks/vpc", labels={"team": "ml"})
    values.update(extra)
    return JobSettings(**values)


def test_submit_sends_spec_root_identity_network_labels_with_exchanged_token(fake, vertex, tiny_spec, credentials):
    body = pipeline_job_body(tiny_spec, _settings(enable_caching=False))
    job = vertex.submit(body, "demo-20260101000000-abc123")

    request, = fake.calls("POST", "pipelineJobs")
    assert request.path == f"/v1/projects/{PROJECT}/locations/{REGION}/pipelineJobs"
    assert request.query["pipelineJobId"] == ["demo-20260101000000-abc123"]
    assert request.bearer == credentials.token and request.bearer.startswith("ya29.sa-")
    sent = request.json
    assert sent["runtimeConfig"]["gcsOutputDirectory"] == "gs://demo-bucket/runs"
    assert sent["serviceAccount"] == SERVICE_ACCOUNT
    assert sent["network"] == "projects/123/global/networks/vpc"
    assert sent["labels"] == {"team": "ml"}
    assert {t["cachingOptions"]["enableCache"] for t in sent["pipelineSpec"]["root"]["dag"]["tasks"].values()} == {False}
    assert job["state"] == "PIPELINE_STATE_PENDING"


def test_customjob_steps_declaring_artifacts_are_accepted_as_emitted(fake, vertex):
    """run_config.artifacts on steps with a machine_type: the launcher tasks keep their output artifacts."""
    from kedro_vertex_ci import spec
    from tests.test_customjob_parity import CASES

    emitted = spec.spec_to_dict(spec.emit(CASES["artifacts-on-machines"]))
    vertex.submit(pipeline_job_body(emitted, _settings()), "artifacts-1")
    stored = fake.jobs["artifacts-1"]["pipelineSpec"]
    assert stored == emitted
    assert set(stored["components"]["comp-train-a"]["outputDefinitions"]["artifacts"]) == {"model_a"}


def test_fake_rejects_a_spec_that_is_not_a_pipeline_spec(fake, vertex, tiny_spec):
    bad = {**tiny_spec, "root": {"dag": {"tasks": {"t": {"noSuchField": 1}}}}}
    with pytest.raises(CloudError, match="rejected the request as invalid"):
        vertex.submit(pipeline_job_body(bad, _settings()), "bad-1")


def test_wait_follows_states_until_terminal(fake, vertex, tiny_spec):
    job = vertex.submit(pipeline_job_body(tiny_spec, _settings()), "run-1")
    seen: list[str] = []
    final = vertex.wait(job["name"], on_update=lambda j: seen.append(j["state"]), poll_seconds=0)
    assert seen == ["PIPELINE_STATE_RUNNING", "PIPELINE_STATE_SUCCEEDED"]
    assert final["state"] == "PIPELINE_STATE_SUCCEEDED"


def test_submit_retries_transient_faults_and_dropped_connections(fake, vertex, tiny_spec):
    fake.inject("POST", "pipelineJobs", status=503, times=1)
    fake.inject("POST", "pipelineJobs", status=429, times=1)
    fake.inject("POST", "pipelineJobs", drop=True, times=1)
    job = vertex.submit(pipeline_job_body(tiny_spec, _settings()), "retry-1")
    assert job["name"].endswith("/pipelineJobs/retry-1")
    assert len(fake.calls("POST", "pipelineJobs")) == 4
    assert list(fake.jobs) == ["retry-1"]


def test_lost_response_after_create_is_not_a_failure(fake, vertex, tiny_spec):
    """The create got through but the answer was lost: the retry sees 409 and reads the job instead."""
    fake.inject("POST", "pipelineJobs", drop_after=True)
    job = vertex.submit(pipeline_job_body(tiny_spec, _settings()), "twice-1")
    assert job["name"].endswith("/twice-1") and list(fake.jobs) == ["twice-1"]
    assert len(fake.calls("POST", "pipelineJobs")) == 2
    assert fake.calls("GET", "pipelineJobs/twice-1")


def test_retries_are_bounded(fake, vertex, tiny_spec):
    fake.inject("POST", "pipelineJobs", status=500, times=10)
    with pytest.raises(CloudError, match="Vertex AI call failed"):
        vertex.submit(pipeline_job_body(tiny_spec, _settings()), "down-1")
    assert len(fake.calls("POST", "pipelineJobs")) == FAST.attempts


@pytest.mark.parametrize(("status", "body", "hint"), [
    (403, None, "roles/aiplatform.user"),
    (403, {"error": {"code": 403, "status": "PERMISSION_DENIED",
                     "message": "Vertex AI API has not been used in project 1 before or it is disabled."}},
     "gcloud services enable aiplatform.googleapis.com"),
    (404, None, "check project_id"),
])
def test_permanent_errors_become_one_paragraph_hints_without_retry(fake, vertex, tiny_spec, status, body, hint):
    fake.inject("POST", "pipelineJobs", status=status, body=body, times=1)
    with pytest.raises(CloudError, match=hint) as err:
        vertex.submit(pipeline_job_body(tiny_spec, _settings()), "denied-1")
    assert "\n" not in str(err.value)
    assert len(fake.calls("POST", "pipelineJobs")) == 1


def test_job_ids_are_valid_for_vertex_even_from_messy_names():
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    job = names.job_id("My Experiment_Name / Überpipeline", now, "A1b2C3")
    assert job == "my-experiment-name-berpipeline-20260102030405-a1b2c3"
    long = names.job_id("x" * 300, now, "abc")
    assert len(long) <= 128 and long.endswith("-20260102030405-abc")
    assert names.job_id("__default__", now, "z").startswith("default-")


def test_git_labels_from_github_pull_request():
    context = names.git_context({"GITHUB_SHA": "A" * 40, "GITHUB_REF": "refs/pull/42/merge",
                                 "GITHUB_REF_NAME": "42/merge", "GITHUB_HEAD_REF": "Feature/Fast_Thing"})
    assert names.git_labels(context) == {"git-sha": "a" * 40, "git-branch": "feature-fast_thing", "github-pr": "42"}


# ------------------------------------------------------------------ schedules

@pytest.mark.parametrize(("cron", "tz", "expected"), [
    ("0 3 * * MON-FRI", None, ("0 3 * * MON-FRI", None)),
    ("TZ=Europe/Warsaw  */15 * * * *", None, ("*/15 * * * *", "Europe/Warsaw")),
    ("0 0 1 JAN,jul *", "America/New_York", ("0 0 1 JAN,jul *", "America/New_York")),
])
def test_cron_accepted(cron, tz, expected):
    assert normalize_cron(cron, tz) == expected


@pytest.mark.parametrize(("cron", "tz", "message"), [
    ("0 3 * *", None, "expected 5"),
    ("61 * * * *", None, "outside 0-59"),
    ("0 0 * * FUNDAY", None, "is not a number"),
    ("*/0 * * * *", None, "positive"),
    ("0 0 * * *", "Mars/Olympus", "IANA"),
    ("TZ=Europe/Paris 0 0 * * *", "Europe/Warsaw", "once"),
])
def test_cron_rejected(cron, tz, message):
    with pytest.raises(ConfigError, match=message):
        normalize_cron(cron, tz)


def test_schedule_settings_layer_default_pipeline_and_overrides():
    table = {"default_schedule": {"cron_expression": "0 * * * *", "timezone": "UTC", "max_run_count": 5},
             "training": {"cron_expression": "0 4 * * *", "allow_queueing": True}}
    settings = resolve_settings(table, "training", {"timezone": "Europe/Warsaw"})
    assert (settings.cron_expression, settings.timezone, settings.allow_queueing, settings.max_run_count) == (
        "0 4 * * *", "Europe/Warsaw", True, 5)
    with pytest.raises(ConfigError, match="unknown key"):
        resolve_settings({"training": {"cron": "0 * * * *"}}, "training")


def _schedule(vertex, tiny_spec, commit: str):
    settings = resolve_settings({"default_schedule": {"cron_expression": "0 4 * * *", "timezone": "Europe/Warsaw"}},
                                "__default__")
    job = pipeline_job_body(tiny_spec, _settings(labels={"git-sha": commit}))
    return schedule_body(names.schedule_display_name("Spaceflights Demo", "__default__"), settings,
                         vertex.parent, job)


def test_schedule_body_on_the_wire(fake, vertex, tiny_spec):
    deployed = deploy_schedule(vertex, _schedule(vertex, tiny_spec, "c1"))
    request, = fake.calls("POST", "schedules")
    sent = request.json
    assert sent["displayName"] == "kvc-spaceflights-demo-default"
    assert sent["cron"] == "TZ=Europe/Warsaw 0 4 * * *"
    assert sent["maxConcurrentRunCount"] == "1"
    assert sent["createPipelineJobRequest"]["parent"] == f"projects/{PROJECT}/locations/{REGION}"
    assert sent["createPipelineJobRequest"]["pipelineJob"]["labels"] == {"git-sha": "c1"}
    assert deployed.replaced == ()


def test_deploying_twice_leaves_one_schedule_with_the_new_spec(fake, vertex, tiny_spec):
    first = deploy_schedule(vertex, _schedule(vertex, tiny_spec, "c1"))
    second = deploy_schedule(vertex, _schedule(vertex, tiny_spec, "c2"))
    active = fake.active_schedules("kvc-spaceflights-demo-default")
    assert [s["name"] for s in active] == [second.schedule["name"]]
    assert active[0]["createPipelineJobRequest"]["pipelineJob"]["labels"] == {"git-sha": "c2"}
    assert second.replaced == (first.schedule["name"],)
    filters = [r.query["filter"][0] for r in fake.calls("GET", "schedules$")]
    assert filters == ['display_name="kvc-spaceflights-demo-default"'] * 2


def test_other_pipelines_schedules_are_untouched(fake, vertex, tiny_spec):
    other = {**_schedule(vertex, tiny_spec, "c1"), "displayName": "kvc-spaceflights-demo-training"}
    vertex.create_schedule(other)
    deploy_schedule(vertex, _schedule(vertex, tiny_spec, "c1"))
    deploy_schedule(vertex, _schedule(vertex, tiny_spec, "c2"))
    assert len(fake.active_schedules("kvc-spaceflights-demo-training")) == 1
    assert len(fake.active_schedules("kvc-spaceflights-demo-default")) == 1


def test_racing_deploys_leave_exactly_one_schedule(fake, credentials, endpoints, tiny_spec):
    fake.schedule_create_delay = 0.05  # both deploys list before either has created
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def deploy(commit: str) -> None:
        client = Vertex(PROJECT, REGION, credentials, endpoints, policy=FAST, sleep=lambda _s: None)
        try:
            start.wait()
            deploy_schedule(client, _schedule(client, tiny_spec, commit))
        except BaseException as err:  # surfaced below
            errors.append(err)

    threads = [threading.Thread(target=deploy, args=(f"c{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    assert len(fake.calls("POST", "schedules")) == 4
    assert len(fake.active_schedules("kvc-spaceflights-demo-default")) == 1


def test_schedule_create_retries_on_unavailable(fake, vertex, tiny_spec):
    fake.inject("POST", "schedules", status=503, times=2)
    deploy_schedule(vertex, _schedule(vertex, tiny_spec, "c1"))
    assert len(fake.active_schedules()) == 1


@pytest.mark.parametrize(("overrides", "message"), [
    ({"start_time": "tomorrow"}, "RFC 3339"),
    ({"start_time": "2030-01-02T00:00:00Z", "end_time": "2030-01-01T00:00:00Z"}, "not after"),
    ({"max_concurrent_run_count": 0}, "at least 1"),
])
def test_schedule_settings_rejected_offline(overrides, message):
    with pytest.raises(ConfigError, match=message):
        resolve_settings({}, "__default__", {"cron_expression": "0 1 * * *", **overrides})


def test_a_stalled_request_times_out_and_is_retried(fake, credentials, endpoints, tiny_spec):
    client = Vertex(PROJECT, REGION, credentials, endpoints, policy=FAST, sleep=lambda _s: None,
                    request_timeout=0.5)
    fake.inject("POST", "pipelineJobs", delay=1.5)
    job = client.submit(pipeline_job_body(tiny_spec, _settings()), "slow-1")
    assert job["name"].endswith("/slow-1")
    assert len(fake.calls("POST", "pipelineJobs")) == 2
    time.sleep(1.2)  # the stalled first request finishes late and must not have made a second job
    assert list(fake.jobs) == ["slow-1"]
