"""Permanent errors become one paragraph naming the role, API or bucket; transient ones are retried."""

from __future__ import annotations

import pytest
from google.api_core import exceptions as api

from kedro_vertex_ci.gcp.hints import Where, explain
from kedro_vertex_ci.gcp.retry import RetryPolicy, call_with_retry, is_transient


@pytest.mark.parametrize(("err", "where", "expected"), [
    (api.Forbidden("denied"), Where("vertex", "p", "r", service_account="sa@p.iam.gserviceaccount.com"),
     ["roles/aiplatform.user", "sa@p.iam.gserviceaccount.com", "aiplatform.googleapis.com"]),
    (api.Forbidden("Cloud Build API has not been used in project 1 before or it is disabled"),
     Where("cloudbuild", "p"), ["gcloud services enable cloudbuild.googleapis.com --project=p"]),
    (api.Forbidden("denied"), Where("storage", "p", bucket="stage"), ["roles/storage.objectAdmin", "gs://stage"]),
    (api.NotFound("nope"), Where("storage", "p", "europe-west4", bucket="stage"),
     ["gcloud storage buckets create gs://stage --project=p --location=europe-west4"]),
    (api.NotFound("nope"), Where("vertex", "p", "mars-1"), ["check project_id (p) and region (mars-1)"]),
    (api.BadRequest("if 'build.service_account' is specified, the build must ..."), Where("cloudbuild", "p"),
     ["CLOUD_LOGGING_ONLY"]),
])
def test_hint_names_the_fix(err, where, expected):
    message = str(explain(err, where))
    for part in expected:
        assert part in message
    assert "\n" not in message


@pytest.mark.parametrize(("err", "transient"), [
    (api.TooManyRequests("slow down"), True), (api.InternalServerError("x"), True),
    (api.ServiceUnavailable("x"), True), (api.GatewayTimeout("x"), True), (ConnectionResetError(), True),
    (api.Forbidden("x"), False), (api.NotFound("x"), False), (api.BadRequest("x"), False),
    (api.Conflict("x"), False), (ValueError("bug"), False),
])
def test_transient_classification(err, transient):
    assert is_transient(err) is transient


def test_backoff_grows_and_is_bounded():
    waits: list[float] = []
    calls: list[int] = []

    def flaky() -> None:
        calls.append(1)
        raise api.ServiceUnavailable("down")

    policy = RetryPolicy(attempts=4, base_delay=1.0, max_delay=3.0)
    with pytest.raises(api.ServiceUnavailable):
        call_with_retry(flaky, what="x", policy=policy, sleep=waits.append)
    assert len(calls) == 4 and len(waits) == 3
    assert 0.8 <= waits[0] <= 1.0 and 1.6 <= waits[1] <= 2.0 and 2.4 <= waits[2] <= 3.0
