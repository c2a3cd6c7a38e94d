"""Runs a schedule starts join ``run_config.experiment_name`` from their own steps (issue 16, point 1).

The real path end to end: ``schedule`` deploys through the CLI to the fake; the fake fires the schedule as Vertex
does (a RUNNING job with ``scheduleName``, its ``system.PipelineRun`` context made asynchronously); each step of
that job runs as the real ``kedro-vertex-ci step`` process with the job's placeholders substituted as Vertex would,
authenticating with google-auth against the fake. The Metadata calls are checked request by request.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from kedro_vertex_ci.cli import cli
from tests.fakes.google import FakeGoogle, desk_login_env

from .conftest import REGION

STORE = f"projects/123456789012/locations/{REGION}/metadataStores/default"
EXPERIMENT = f"{STORE}/contexts/demo-experiment"
STEP = str(Path(sys.executable).parent / "kedro-vertex-ci")


def _deploy_schedule(fake: FakeGoogle, project: Path, env: dict[str, str]) -> str:
    """``schedule -p training``: the pipeline is then named demo-experiment-training. (The default pipeline is
    named like the experiment, demo-experiment, which Vertex's system.Pipeline context then holds: see
    test_a_pipeline_named_like_the_experiment_is_refused_with_the_reason.)"""
    # kedro-mlflow is installed in the dev venv; its hooks would want an MLflow store this project lacks
    settings = project / "src" / "demo" / "settings.py"
    settings.write_text(settings.read_text() + '\nDISABLE_HOOKS_FOR_PLUGINS = ("kedro_mlflow",)\n')
    result = CliRunner().invoke(cli, ["--project", str(project), "schedule", "-p", "training"], env=env,
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert not fake.calls(path_regex="metadataStores")  # deploying touches no experiment: the runs will
    sid, = fake.schedules
    return sid


def _steps(job: dict[str, Any], root: Path) -> list[list[str]]:
    """Each executor's argv with the placeholders replaced the way Vertex replaces them for this job."""
    spec = job["pipelineSpec"]
    values = {name: d.get("defaultValue") for name, d in
              spec["root"].get("inputDefinitions", {}).get("parameters", {}).items()}
    values.update((job.get("runtimeConfig") or {}).get("parameterValues") or {})
    fixed = {"{{$.pipeline_job_name}}": job["name"].rsplit("/", 1)[-1], "{{$.pipeline_job_uuid}}": "uuid-1",
             "{{$.pipeline_root}}": str(root), "{{$.pipeline_job_resource_name}}": job["name"]}

    def render(item: str) -> str:
        item = re.sub(r"\{\{\$\.inputs\.parameters\['([^']+)'\]\}\}", lambda m: str(values[m.group(1)]), item)
        for token, value in fixed.items():
            item = item.replace(token, value)
        assert "{{$" not in item, item
        return item

    executors = spec["deploymentSpec"]["executors"]
    return [[*c["container"]["command"], *map(render, c["container"]["args"])]
            for c in (executors[name] for name in sorted(executors))]


def _run_step(argv: list[str], project: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    assert argv[:2] == ["kedro-vertex-ci", "step"]
    proc = subprocess.run([STEP, *argv[1:]], cwd=project, env={**os.environ, **env}, capture_output=True,
                          text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    return proc


def _step_env(fake: FakeGoogle, tmp_path: Path, **extra: str) -> dict[str, str]:
    """What a step on Vertex has: default credentials (here a user login refreshed at the fake), no CLI config."""
    return {**desk_login_env(fake, tmp_path), "KEDRO_VERTEX_CI_VERTEX_ENDPOINT": fake.url,
            "KEDRO_VERTEX_CI_POLL_SECONDS": "0.05", "GOOGLE_CLOUD_PROJECT": "demo-project", **extra}


def _metadata_calls(fake: FakeGoogle, since: int) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in fake.requests[since:] if "/metadataStores" in r.path]


def test_each_scheduled_run_joins_the_experiment_once(fake, cli_env, cloud_project, tmp_path):
    sid = _deploy_schedule(fake, cloud_project, cli_env)
    env = _step_env(fake, tmp_path)
    job = fake.fire_schedule(sid, run_context_after_polls=3)  # the run context appears while the step waits
    first, *rest = _steps(job, tmp_path / "root")
    assert first[first.index("--pipeline-job") + 1] == job["name"]

    before = len(fake.requests)
    proc = _run_step(first, cloud_project, env)
    assert f"added scheduled run {job['name'].rsplit('/', 1)[-1]} to Vertex AI experiment demo-experiment" \
        in proc.stderr
    run_context = f"{STORE}/contexts/{job['name'].rsplit('/', 1)[-1]}"
    assert _metadata_calls(fake, before) == [
        ("GET", f"/v1/{EXPERIMENT}"),  # 404: the first scheduled run creates the experiment
        ("POST", f"/v1/{STORE}/contexts"),
        ("POST", f"/v1/{EXPERIMENT}:addContextChildren"),
    ]
    created, = fake.calls("POST", r"/contexts$")
    assert created.query == {"contextId": ["demo-experiment"]}
    assert created.json == {"displayName": "demo-experiment", "schemaTitle": "system.Experiment",
                            "schemaVersion": "0.0.1", "metadata": {"experiment_deleted": False}}
    added, = fake.calls("POST", r":addContextChildren$")
    assert added.json == {"childContexts": [run_context]}
    assert added.bearer in fake.issued_tokens
    job_reads = [r for r in fake.requests[before:] if r.method == "GET" and r.path == f"/v1/{job['name']}"]
    assert len(job_reads) >= 3  # it polled until Vertex had made the run context
    assert fake.children_of(EXPERIMENT) == [run_context]

    # another step of the same run (or the same step retried): one read of the job, nothing else
    before = len(fake.requests)
    again = _run_step(rest[0] if rest else first, cloud_project, env)
    assert "added scheduled run" not in again.stderr and "WARNING" not in again.stderr
    assert _metadata_calls(fake, before) == []
    assert [(r.method, r.path) for r in fake.requests[before:] if "/v1/projects/" in r.path] == \
           [("GET", f"/v1/{job['name']}")]

    # the schedule's next run: the Metadata API refuses (a missing role); a loud warning, the step succeeds
    second = fake.fire_schedule(sid)
    fake.inject("POST", r":addContextChildren$", status=403, times=1)
    before = len(fake.requests)
    proc = _run_step(_steps(second, tmp_path / "root")[0], cloud_project, env)
    assert "WARNING: this scheduled run was not added to Vertex AI experiment 'Demo Experiment'" in proc.stderr
    assert "HTTP 403" in proc.stderr and "roles/aiplatform.user" in proc.stderr
    assert "Completed 1 out of 1 tasks" in proc.stdout + proc.stderr  # the nodes ran all the same
    # the experiment was reused (no second create); a permission error is not retried
    assert _metadata_calls(fake, before) == [("GET", f"/v1/{EXPERIMENT}"),
                                             ("POST", f"/v1/{EXPERIMENT}:addContextChildren")]
    assert fake.children_of(EXPERIMENT) == [run_context]


def _seed_schedule(fake: FakeGoogle, spec: dict[str, Any]) -> str:
    fake.schedules["7"] = {"name": f"projects/123456789012/locations/{REGION}/schedules/7", "displayName": "nightly",
                           "state": "ACTIVE", "_seq": 7, "createPipelineJobRequest": {"pipelineJob": {
                               "pipelineSpec": spec, "runtimeConfig": {"gcsOutputDirectory": "gs://demo-bucket/p"}}}}
    return "7"


def _api(fake: FakeGoogle, tmp_path: Path, monkeypatch) -> Any:
    from kedro_vertex_ci.runtime.experiment import MetadataRest, _session

    for key, value in _step_env(fake, tmp_path).items():
        monkeypatch.setenv(key, value)
    return MetadataRest(_session(os.environ), fake.url, sleep=lambda s: None)


def test_a_one_off_run_is_left_to_run_once(fake, tiny_spec, tmp_path, monkeypatch):
    from kedro_vertex_ci.runtime.experiment import join_scheduled_run, vertex_job

    job = fake.fire_schedule(_seed_schedule(fake, tiny_spec))
    fake.jobs[job["name"].rsplit("/", 1)[-1]].pop("scheduleName")
    api = _api(fake, tmp_path, monkeypatch)
    assert join_scheduled_run(api, vertex_job(job["name"]), "Demo Experiment", None, 1, 0) is None
    assert not fake.calls(path_regex="metadataStores")


def test_a_pipeline_named_like_the_experiment_is_refused_with_the_reason(fake, tiny_spec, tmp_path, monkeypatch):
    """Vertex names a run's system.Pipeline context after the pipeline: an experiment cannot share that id."""
    import pytest

    from kedro_vertex_ci.errors import CloudError
    from kedro_vertex_ci.runtime.experiment import join_scheduled_run, vertex_job

    spec = {**tiny_spec, "pipelineInfo": {**tiny_spec["pipelineInfo"], "name": "demo-experiment"}}
    job = fake.fire_schedule(_seed_schedule(fake, spec))
    with pytest.raises(CloudError, match="context 'demo-experiment' of type system.Pipeline, not an experiment"):
        join_scheduled_run(_api(fake, tmp_path, monkeypatch), vertex_job(job["name"]), "Demo Experiment", None, 1, 0)
    assert not fake.calls("POST", r":addContextChildren$") and not fake.calls("POST", r"/contexts$")


def test_only_a_vertex_job_resource_name_starts_the_join():
    from kedro_vertex_ci.runtime.experiment import JobRef, vertex_job

    name = "projects/123/locations/us-central1/pipelineJobs/nightly-20260101"
    assert vertex_job(name) == JobRef(name, "123", "us-central1")
    for other in ("projects/local/locations/local/pipelineJobs/run-1",  # run-local
                  "{{$.pipeline_job_resource_name}}", "run-abc", "", None,
                  f"{name}/extra"):
        assert vertex_job(other) is None


def test_a_later_run_reuses_the_experiment_and_a_missing_run_context_is_waited_for_boundedly(
        fake, tiny_spec, tmp_path, monkeypatch):
    import pytest

    from kedro_vertex_ci.errors import CloudError
    from kedro_vertex_ci.runtime.experiment import join_scheduled_run, vertex_job

    sid = _seed_schedule(fake, tiny_spec)
    api = _api(fake, tmp_path, monkeypatch)
    first, second = fake.fire_schedule(sid), fake.fire_schedule(sid)
    assert join_scheduled_run(api, vertex_job(first["name"]), "Demo Experiment", "Nightly", 1, 0)
    before = len(fake.requests)
    assert join_scheduled_run(api, vertex_job(second["name"]), "Demo Experiment", "Nightly", 1, 0)
    assert _metadata_calls(fake, before) == [("GET", f"/v1/{EXPERIMENT}"),
                                             ("POST", f"/v1/{EXPERIMENT}:addContextChildren")]
    assert fake.contexts[EXPERIMENT]["description"] == "Nightly"
    assert len(fake.children_of(EXPERIMENT)) == 2

    stuck = fake.fire_schedule(sid, run_context_after_polls=10**6)  # Vertex never makes the run context
    with pytest.raises(CloudError, match="no run context for the job within 0.2 s"):
        join_scheduled_run(api, vertex_job(stuck["name"]), "Demo Experiment", None, 0.2, 0.01, sleep=time.sleep)
    assert len(fake.children_of(EXPERIMENT)) == 2
