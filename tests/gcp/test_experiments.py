"""Runs join the Vertex AI experiment named by ``run_config.experiment_name`` (kedro-vertexai #171).

Against the loopback fake: the Metadata API calls our CLI makes, and — as the oracle for the request shapes —
the calls google-cloud-aiplatform's own ``Experiment.get_or_create`` makes against the same fake.
"""

from __future__ import annotations

from click.testing import CliRunner

from kedro_vertex_ci.cli import cli

from .conftest import REGION

STORE = f"projects/123456789012/locations/{REGION}/metadataStores/default"
EXPERIMENT = f"{STORE}/contexts/demo-experiment"


def _invoke(project, env, *args):
    return CliRunner().invoke(cli, ["--project", str(project), *args], env=env, catch_exceptions=False)


def _set_description(project, text: str) -> None:
    path = project / "conf" / "base" / "vertexai.yml"
    path.write_text(path.read_text().replace("  experiment_name: Demo Experiment\n",
                                             f"  experiment_name: Demo Experiment\n  experiment_description: {text}\n"))


def test_run_once_creates_the_experiment_then_a_second_run_reuses_it(fake, cli_env, cloud_project):
    _set_description(cloud_project, "Nightly demo")
    first = _invoke(cloud_project, cli_env, "run-once")
    assert first.exit_code == 0, first.output
    assert f"/experiments/locations/{REGION}/experiments/demo-experiment/runs" in first.output

    created, = fake.calls("POST", r"/metadataStores/default/contexts$")
    assert created.query["contextId"] == ["demo-experiment"]
    assert created.json == {"displayName": "demo-experiment", "schemaTitle": "system.Experiment",
                            "schemaVersion": "0.0.1", "metadata": {"experiment_deleted": False},
                            "description": "Nightly demo"}
    assert len(fake.calls("POST", r"/metadataStores$")) == 1  # the default store did not exist yet
    job_id = fake.calls("POST", "pipelineJobs")[0].query["pipelineJobId"][0]
    added, = fake.calls("POST", r":addContextChildren$")
    assert added.path.endswith("/contexts/demo-experiment:addContextChildren")
    assert added.json == {"childContexts": [f"{STORE}/contexts/{job_id}"]}
    # the job was created after the experiment: a bad experiment stops a run before it starts
    paths = [r.path for r in fake.requests]
    assert paths.index(created.path) < paths.index(fake.calls("POST", "pipelineJobs")[0].path)

    second = _invoke(cloud_project, cli_env, "run-once")
    assert second.exit_code == 0, second.output
    assert len(fake.calls("POST", r"/contexts$")) == 1 and len(fake.calls("POST", r"/metadataStores$")) == 1
    assert not fake.calls("PATCH", "contexts")  # same description: nothing to update
    assert len(fake.children_of(EXPERIMENT)) == 2
    assert all(fake.contexts[c]["schemaTitle"] == "system.PipelineRun" for c in fake.children_of(EXPERIMENT))


def test_a_changed_description_updates_the_experiment(fake, cli_env, cloud_project):
    assert _invoke(cloud_project, cli_env, "run-once").exit_code == 0
    _set_description(cloud_project, "Now with a description")
    result = _invoke(cloud_project, cli_env, "run-once")
    assert result.exit_code == 0, result.output
    patch, = fake.calls("PATCH", "contexts/demo-experiment")
    assert patch.query["updateMask"] == ["description"]
    assert fake.contexts[EXPERIMENT]["description"] == "Now with a description"


def test_a_context_of_another_kind_stops_the_run_before_it_is_submitted(fake, cli_env, cloud_project):
    fake.metadata_stores.add(f"{REGION}/default")
    fake.contexts[EXPERIMENT] = {"name": EXPERIMENT, "schemaTitle": "system.PipelineRun"}
    result = _invoke(cloud_project, cli_env, "run-once")
    assert result.exit_code == 1
    assert "not an experiment" in result.output and "experiment_name" in result.output
    assert "Traceback" not in result.output
    assert not fake.calls("POST", "pipelineJobs")


def test_no_experiment_name_means_no_metadata_calls(fake, cli_env, cloud_project):
    path = cloud_project / "conf" / "base" / "vertexai.yml"
    path.write_text(path.read_text().replace("  experiment_name: Demo Experiment\n", ""))
    assert _invoke(cloud_project, cli_env, "run-once").exit_code == 0
    assert not fake.calls(None, "metadataStores")


def test_our_experiment_request_is_the_one_aiplatform_sends(fake, credentials):
    """Oracle: aiplatform's Experiment.get_or_create against the same fake sends the same create body."""
    from google.cloud import aiplatform

    from kedro_vertex_ci.gcp.experiments import ensure_experiment
    from kedro_vertex_ci.gcp.vertex import Vertex

    from .conftest import PROJECT

    aiplatform.init(project=PROJECT, location=REGION, credentials=credentials, api_endpoint=fake.url,
                    api_transport="rest")
    aiplatform.Experiment.get_or_create("theirs", description="same words")
    their_calls = [(r.method, r.path.replace("theirs", "ID")) for r in fake.requests if "metadataStores" in r.path]
    theirs, = fake.calls("POST", r"/contexts$")

    ensure_experiment(Vertex(PROJECT, REGION, credentials, _endpoints(fake)), "ours", "same words")
    ours = fake.calls("POST", r"/contexts$")[1]
    our_calls = [(r.method, r.path.replace("ours", "ID")) for r in fake.requests
                 if "metadataStores" in r.path][len(their_calls):]
    assert their_calls[-3:] == our_calls  # the store exists now: both read it, look the context up, create it
    assert theirs.query["contextId"] == ["theirs"] and ours.query["contextId"] == ["ours"]
    assert {**theirs.json, "displayName": "x"} == {**ours.json, "displayName": "x"}
    assert theirs.json["displayName"] == "theirs" and ours.json["displayName"] == "ours"


def _endpoints(fake):
    from kedro_vertex_ci.gcp.endpoints import Endpoints

    return Endpoints(vertex=fake.url)


def test_the_default_pipeline_is_not_named_like_its_experiment(fake, cli_env, cloud_project):
    """Vertex ML Metadata keeps pipeline and experiment contexts in one id space: same name, failed job."""
    result = _invoke(cloud_project, cli_env, "run-once", "--wait")
    assert result.exit_code == 0, result.output
    job, = fake.jobs.values()
    assert job["pipelineSpec"]["pipelineInfo"]["name"] == "demo-experiment-pipeline"
    assert job["jobDetail"]["pipelineContext"]["schemaTitle"] == "system.Pipeline"
    assert fake.contexts[EXPERIMENT]["schemaTitle"] == "system.Experiment"
    assert fake.children_of(EXPERIMENT) == [job["jobDetail"]["pipelineRunContext"]["name"]]
