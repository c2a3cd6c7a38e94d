"""The cloud commands against a Kubeflow Pipelines target: the real CLI, the real ``kfp.Client``, a strict fake."""

from __future__ import annotations

import json
import threading

import pytest

from kedro_vertex_ci.errors import AuthError
from kedro_vertex_ci.kubeflow.auth import KfpAccess, dex_login
from kedro_vertex_ci.kubeflow.client import KfpTarget, cron_for_kfp
from tests.fakes.kfp_server import DEX_PASSWORD, DEX_USER, FakeKfp, Reject, check_model

from .conftest import run_cli


def _only(table: dict) -> dict:
    assert len(table) == 1, table
    return next(iter(table.values()))


def test_run_once_uploads_once_and_runs_with_typed_parameters(kfp_server, project_for):
    project = project_for(kfp_server.host)
    first = run_cli(project, "run-once")
    assert first.returncode == 0, first.stderr
    run = _only(kfp_server.runs)
    params = run["runtime_config"]["parameters"]
    assert params["start"] == 3 and isinstance(params["start"], int)
    assert run["runtime_config"]["pipeline_root"] == "s3://runs/kfp-demo"
    assert f"{kfp_server.url}/#/runs/details/{run['run_id']}" in first.stdout
    assert _only(kfp_server.experiments)["display_name"] == "kfp-demo"
    pipeline = _only(kfp_server.pipelines)
    versions = len(kfp_server.versions)  # the upload's first version, and ours named by the spec's hash
    again = run_cli(project, "run-once")
    assert again.returncode == 0, again.stderr
    assert len(kfp_server.runs) == 2 and len(kfp_server.pipelines) == 1 and len(kfp_server.versions) == versions
    assert all(r["pipeline_version_reference"]["pipeline_id"] == pipeline["pipeline_id"] for r in kfp_server.runs.values())
    changed = run_cli(project, "run-once", "--param", "start=7")
    assert changed.returncode == 0, changed.stderr
    assert len(kfp_server.versions) == versions + 1  # a different spec: a new version of the same pipeline
    latest = max(kfp_server.runs.values(), key=lambda r: r["run_id"])
    assert latest["runtime_config"]["parameters"]["start"] == 7
    uncached = run_cli(project, "run-once", "--no-cache")
    assert uncached.returncode == 0, uncached.stderr
    newest = max(kfp_server.versions.values(), key=lambda v: v["pipeline_version_id"])["pipeline_spec"]
    options = [task.get("cachingOptions", {}) for task in newest["root"]["dag"]["tasks"].values()]
    assert options and all(not o.get("enableCache") for o in options)


def test_run_once_wait_follows_the_run_and_fails_when_it_fails(kfp_server, project_for):
    project = project_for(kfp_server.host)
    ok = run_cli(project, "run-once", "--wait")
    assert ok.returncode == 0 and "succeeded" in ok.stdout, ok.stdout + ok.stderr
    kfp_server.run_states = ["PENDING", "RUNNING", "FAILED"]
    failed = run_cli(project, "run-once", "--wait")
    assert failed.returncode == 1 and "ended FAILED" in failed.stderr and "Traceback" not in failed.stderr


def test_schedule_twice_keeps_exactly_one_enabled_recurring_run(kfp_server, project_for):
    project = project_for(kfp_server.host, schedules={"default_schedule": {"cron_expression": "0 3 * * *"}})
    for _ in range(2):
        proc = run_cli(project, "schedule")
        assert proc.returncode == 0, proc.stderr
    enabled = kfp_server.enabled_recurring_runs()
    assert len(enabled) == 1 and len(kfp_server.recurring) == 1
    assert enabled[0]["trigger"]["cron_schedule"]["cron"] == "0 0 3 * * *"  # KFP's six fields, seconds first
    assert enabled[0]["no_catchup"] is True


def test_concurrent_schedules_leave_one(kfp_server, project_for):
    kfp_server.create_delay = 0.3
    project = project_for(kfp_server.host)
    results: list = []
    threads = [threading.Thread(target=lambda: results.append(run_cli(project, "schedule", "--cron", "15 * * * *")))
               for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(r.returncode == 0 for r in results), [r.stderr for r in results]
    assert len(kfp_server.enabled_recurring_runs()) == 1 and len(kfp_server.recurring) == 1


def test_a_deploy_never_deletes_a_newer_recurring_run_made_while_it_listed(kfp_server, project_for):
    project = project_for(kfp_server.host)
    assert run_cli(project, "schedule", "--cron", "15 * * * *").returncode == 0
    name = _only(kfp_server.recurring)["display_name"]
    racing: list[str] = []
    kfp_server.after_recurring_list.append(lambda: racing.append(kfp_server.add_concurrent_recurring(name)))
    proc = run_cli(project, "schedule", "--cron", "15 * * * *")
    assert proc.returncode == 0, proc.stderr
    # The racing deploy's run is newer than ours: it is the one to survive, and this deploy must not touch it.
    assert racing and racing[0] in kfp_server.recurring
    assert ("DELETE", f"/pipeline/apis/v2beta1/recurringruns/{racing[0]}") not in kfp_server.requests


def test_a_schedule_in_another_time_zone_is_refused_before_any_call(kfp_server, project_for):
    project = project_for(kfp_server.host)
    proc = run_cli(project, "schedule", "--cron", "TZ=Europe/Warsaw 0 3 * * *")
    assert proc.returncode == 2 and "cluster's time zone (UTC)" in proc.stderr
    assert not kfp_server.requests


def test_list_pipelines_and_ui(kfp_server, project_for):
    project = project_for(kfp_server.host)
    assert run_cli(project, "schedule", "--cron", "0 1 * * *").returncode == 0
    assert run_cli(project, "run-once").returncode == 0
    listed = run_cli(project, "list-pipelines", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [r["kind"] for r in rows] == ["schedule", "run"]
    assert rows[0]["cron"] == "0 0 1 * * *" and rows[1]["link"].startswith(f"{kfp_server.url}/#/runs/details/")
    ui = run_cli(project, "ui", "--print-only")
    assert ui.stdout.strip() == f"{kfp_server.url}/#/pipelines"


def test_bearer_token_from_the_environment(kfp_server, project_for):
    kfp_server.auth = "bearer"
    project = project_for(kfp_server.host, {"mode": "token", "token_env": "KFP_TOKEN"})
    ok = run_cli(project, "run-once", env={"KFP_TOKEN": kfp_server.bearer_token})
    assert ok.returncode == 0, ok.stderr
    wrong = run_cli(project, "run-once", env={"KFP_TOKEN": "not-the-token-SECRET"})
    assert wrong.returncode == 1 and "refused" in wrong.stderr and "kfp.auth" in wrong.stderr
    assert "SECRET" not in wrong.stdout + wrong.stderr and "Traceback" not in wrong.stderr
    missing = run_cli(project, "run-once", env={"KFP_TOKEN": ""})
    assert missing.returncode == 2 and "$KFP_TOKEN is empty" in missing.stderr


def test_dex_login_flow_and_wrong_password(kfp_server, project_for):
    kfp_server.auth = "dex"
    project = project_for(kfp_server.host, {"mode": "dex"})
    ok = run_cli(project, "run-once", env={"DEX_USERNAME": DEX_USER, "DEX_PASSWORD": DEX_PASSWORD})
    assert ok.returncode == 0, ok.stderr
    assert kfp_server.logins == 1 and len(kfp_server.runs) == 1
    wrong = run_cli(project, "run-once", env={"DEX_USERNAME": DEX_USER, "DEX_PASSWORD": "guess-SECRET"})
    assert wrong.returncode == 1 and "refused the login" in wrong.stderr
    assert "guess-SECRET" not in wrong.stdout + wrong.stderr and "Traceback" not in wrong.stderr
    unset = run_cli(project, "run-once", env={"DEX_USERNAME": "", "DEX_PASSWORD": ""})
    assert unset.returncode == 2 and "$DEX_USERNAME" in unset.stderr


def test_dex_mode_against_an_endpoint_without_dex_says_so(kfp_server):
    with pytest.raises(AuthError, match="did not redirect to a Dex login page"):
        dex_login(kfp_server.host, DEX_USER, DEX_PASSWORD)


def test_an_expired_dex_session_logs_in_again(kfp_server):
    kfp_server.auth = "dex"
    target = KfpTarget(kfp_server.host, lambda: KfpAccess(cookies=dex_login(kfp_server.host, DEX_USER, DEX_PASSWORD)))
    first = target.ensure_experiment("exp")
    kfp_server.expire_sessions()
    assert target.ensure_experiment("exp") == first
    assert kfp_server.logins == 2


def test_iap_id_token_for_the_client_id_through_workload_identity(kfp_server, project_for, fake, github_env):
    kfp_server.auth = "iap"
    project = project_for(kfp_server.host, {"mode": "iap", "client_id": kfp_server.iap_client_id,
                                            "service_account": "deployer@demo-project.iam.gserviceaccount.com"})
    env = {**github_env, "KEDRO_VERTEX_CI_STS_ENDPOINT": fake.url, "KEDRO_VERTEX_CI_IAMCREDENTIALS_ENDPOINT": fake.url,
           "KEDRO_VERTEX_CI_WORKLOAD_IDENTITY_PROVIDER": fake.provider_name, "GOOGLE_APPLICATION_CREDENTIALS": ""}
    ok = run_cli(project, "run-once", env=env)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    minted = [r for r in fake.requests if r.path.endswith(":generateIdToken")]
    assert minted and minted[0].json["audience"] == kfp_server.iap_client_id
    assert "::add-mask::" in ok.stdout  # the token is masked in GitHub logs the moment it exists
    kfp_server.iap_client_id = "another-client.apps.googleusercontent.com"
    refused = run_cli(project, "run-once", env=env)
    assert refused.returncode == 1 and "IAP" in refused.stderr


def test_cron_conversion():
    assert cron_for_kfp("0 3 * * 1", None) == "0 0 3 * * 1"
    assert cron_for_kfp("0 0 3 * * 1", "Etc/UTC") == "0 0 3 * * 1"


@pytest.mark.parametrize(("body", "message"), [
    ({"display_name": "x", "surprise": 1}, "unknown field 'surprise'"),
    ({"display_name": [5]}, "expected str"),
    ({"display_name": "x", "mode": "SOMETIMES"}, "is not one of"),
])
def test_the_fake_is_strict_like_the_server_models(body, message):
    with pytest.raises(Reject, match=message):
        check_model(body, "V2beta1RecurringRun", "recurring_run")


def test_the_fake_accepts_what_kfp_client_sends():
    import kfp_server_api

    model = kfp_server_api.V2beta1RecurringRun(display_name="x", mode="ENABLE", max_concurrency=1, no_catchup=True,
                                               trigger=kfp_server_api.V2beta1Trigger(
                                                   cron_schedule=kfp_server_api.V2beta1CronSchedule(cron="0 0 * * * *")))
    check_model(kfp_server_api.ApiClient().sanitize_for_serialization(model), "V2beta1RecurringRun", "recurring_run")
    assert isinstance(FakeKfp(), FakeKfp)
