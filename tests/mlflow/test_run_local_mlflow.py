"""``run-local`` of a kedro-mlflow project against a real MLflow server: one run per pipeline job.

The compiled spec is the one Vertex would get: ``mlflow-start-run`` writes the run id to its output
parameter file, run-local hands it to every step (``taskOutputParameter``), kedro-mlflow in each step
resumes that run, and ``mlflow-end-run`` (the exit handler) sets the final status. Every request reaches
the server through a recording proxy, with the Google ID token of the request-header provider.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from kedro_vertex_ci.testing.projectgen import build_nodes, expected_outputs
from tests.fakes.google import desk_login_env as google_env
from tests.mlflow.conftest import CLIENT_ID, MLFLOW_SA, mlflow_project, run_local, step_logs

pytestmark = pytest.mark.slow
IAM = {"client_id": CLIENT_ID, "service_account": MLFLOW_SA}


def _client(server: str):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=server)


def _runs(server: str, experiment: str) -> list:
    client = _client(server)
    found = client.get_experiment_by_name(experiment)
    assert found is not None, f"experiment {experiment!r} was never created"
    return client.search_runs([found.experiment_id])


def _claims(jwt: str) -> dict:
    payload = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def test_one_run_gets_every_steps_params_and_metrics_with_the_job_tags(
    tmp_path: Path, mlflow_server, proxy, fake_google
):
    project = mlflow_project(tmp_path, "mlflow_ok", proxy.url, "kvc-ok", header_params=IAM)
    before = len(proxy.seen)
    proc, result = run_local(project, "mlf-ok-1", env=google_env(fake_google, tmp_path))
    assert result["state"] == "succeeded", step_logs(result)
    names = [s["name"] for s in result["steps"]]
    assert names[0] == "mlflow-start-run" and names[-1] == "mlflow-end-run" and len(names) == 5

    (run,) = _runs(mlflow_server, "kvc-ok")
    assert run.info.status == "FINISHED"
    assert run.data.tags["vertexai_run_id"] == "mlf-ok-1"
    assert run.data.tags["vertexai_job_name"] == result["job_name"]
    # params logged by kedro-mlflow's hook in the first and the last step, the metric saved in the last one
    assert run.data.params == {"start": "1", "increment": "1"}
    expected = expected_outputs(build_nodes("chain", 3))["ds_2"]
    assert run.data.metrics == {"ds_2": float(expected)}
    run_dir = Path(result["run_dir"])
    assert (run_dir / "outputs" / "mlflow-start-run" / "run_id").read_text() == run.info.run_id

    seen = proxy.seen[before:]
    assert seen, "no request reached the MLflow server through the proxy"
    tokens = {auth for _, _, auth in seen}
    assert len(tokens) == 1 and None not in tokens, tokens  # every request, one cached token per process
    (token,) = tokens
    assert _claims(token.removeprefix("Bearer ")) == {"aud": CLIENT_ID, "email": MLFLOW_SA}
    minted = fake_google.calls("POST", r":generateIdToken$")
    assert 5 <= len(minted) <= 5 * 2  # one per step process (each caches it), not one per request
    assert len(seen) > len(minted)
    assert token.removeprefix("Bearer ") not in step_logs(result)  # never logged


def test_a_failed_step_leaves_the_run_failed_with_what_ran_before(
    tmp_path: Path, mlflow_server, proxy, fake_google
):
    project = mlflow_project(tmp_path, "mlflow_fail", proxy.url, "kvc-fail", params={"increment": "oops"})
    proc, result = run_local(project, "mlf-fail-1")
    assert proc.returncode == 1
    states = {s["name"]: s["state"] for s in result["steps"]}
    assert states["mlflow-start-run"] == "done" and states["mlflow-end-run"] == "done", step_logs(result)
    assert "failed" in states.values()

    (run,) = _runs(mlflow_server, "kvc-fail")
    assert run.info.status == "FAILED"
    assert run.data.tags["vertexai_run_id"] == "mlf-fail-1"
    assert run.data.params["start"] == "1"  # logged by the first step, before the last one failed
    assert "ds_2" not in run.data.metrics


def test_rerunning_the_same_job_reuses_its_run(tmp_path: Path, mlflow_server, proxy):
    """A retried start (same pipeline job uuid) finds the run by its tag instead of starting another."""
    project = mlflow_project(tmp_path, "mlflow_again", proxy.url, "kvc-again")
    for _ in range(2):
        proc, result = run_local(project, "mlf-again-1")
        assert result["state"] == "succeeded", step_logs(result)
    (run,) = _runs(mlflow_server, "kvc-again")
    assert run.info.status == "FINISHED"


@pytest.mark.parametrize(("increment", "status"), [(1, "FINISHED"), ("oops", "FAILED")])
def test_an_on_exit_pipeline_logs_into_the_run_and_ends_it(tmp_path: Path, mlflow_server, proxy, increment, status):
    """With run_config.on_exit_pipeline the on-exit step is the exit task: its nodes resume the job's run,
    then it sets the final status (no separate mlflow-end-run task)."""
    experiment = f"kvc-exit-{status.lower()}"
    project = mlflow_project(
        tmp_path, "mlflow_exit", proxy.url, experiment,
        params={"increment": increment}, pipelines={"notify": ["node_0"]}, on_exit_pipeline="notify",
    )
    proc, result = run_local(project, f"mlf-exit-{status.lower()}")
    names = [s["name"] for s in result["steps"]]
    assert names[0] == "mlflow-start-run" and "mlflow-end-run" not in names
    exit_step = result["steps"][-1]
    assert exit_step["name"].startswith("on-exit") and exit_step["state"] == "done", step_logs(result)

    (run,) = _runs(mlflow_server, experiment)
    assert run.info.status == status
    assert run.data.tags["vertexai_run_id"] == f"mlf-exit-{status.lower()}"
    assert "notify" in run.data.tags["pipeline_names"]  # the on-exit step's session logged into this run
