"""``schedule --pause | --resume | --delete | --prune`` and stale schedules in ``list-pipelines``, against the fake."""

from __future__ import annotations

import json

from click.testing import CliRunner

from kedro_vertex_ci.cli import cli


def _invoke(project, env, *args):
    return CliRunner().invoke(cli, ["--project", str(project), *args], env=env, catch_exceptions=False)


def _states(fake, name="kvc-demo-experiment-default"):
    return [s["state"] for s in fake.schedules.values() if s["displayName"] == name]


def test_pause_resume_delete_keep_exactly_one_schedule(fake, cli_env, cloud_project):
    assert _invoke(cloud_project, cli_env, "schedule").exit_code == 0
    paused = _invoke(cloud_project, cli_env, "schedule", "--pause")
    assert paused.exit_code == 0, paused.output
    assert _states(fake) == ["PAUSED"]
    pause_call, = fake.calls("POST", r"/schedules/\d+:pause$")
    assert pause_call.json in ({}, None)

    again = _invoke(cloud_project, cli_env, "schedule", "--pause")  # idempotent: nothing active to pause
    assert again.exit_code == 0 and len(fake.calls("POST", ":pause$")) == 1

    # a racing deploy left a second, older schedule with the same name: resume keeps the newest only
    newest = max(fake.schedules.values(), key=lambda s: s["_seq"])
    duplicate = dict(newest, name=newest["name"][:-4] + "0001", _seq=1, createTime="2000-01-01T00:00:00Z")
    fake.schedules["0001"] = duplicate
    resumed = _invoke(cloud_project, cli_env, "schedule", "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert _states(fake) == ["ACTIVE"] and "0001" not in fake.schedules
    resume_call, = fake.calls("POST", ":resume$")
    assert resume_call.json in ({"catchUp": False}, {}, None)  # proto3 JSON may drop a false default

    deleted = _invoke(cloud_project, cli_env, "schedule", "--delete")
    assert deleted.exit_code == 0, deleted.output
    assert _states(fake) == []


def test_managing_a_schedule_that_does_not_exist_fails_clearly(fake, cli_env, cloud_project):
    for flag in ("--pause", "--resume", "--delete"):
        result = _invoke(cloud_project, cli_env, "schedule", flag, "-p", "training")
        assert result.exit_code == 1, (flag, result.output)
        assert "no schedule named kvc-demo-experiment-training" in result.output
        assert "Traceback" not in result.output
    unknown = _invoke(cloud_project, cli_env, "schedule", "--pause", "-p", "nope")
    assert unknown.exit_code == 2 and "no such pipeline" in unknown.output
    mixed = _invoke(cloud_project, cli_env, "schedule", "--delete", "--cron", "0 1 * * *")
    assert mixed.exit_code == 2 and "takes only -p/--pipeline" in mixed.output
    assert not fake.calls("POST", "schedules")


def test_renamed_experiment_leaves_a_stale_schedule_that_list_flags_and_prune_removes(fake, cli_env, cloud_project):
    assert _invoke(cloud_project, cli_env, "schedule").exit_code == 0
    # another project's schedule in the same region must never be touched
    foreign = _invoke(cloud_project, cli_env, "schedule", "-p", "training")
    assert foreign.exit_code == 0
    other = next(s for s in fake.schedules.values() if s["displayName"].endswith("-training"))
    other["createPipelineJobRequest"]["pipelineJob"]["labels"]["kvc_kedro_project"] = "someone-else"
    other["displayName"] = "kvc-someone-else-default"

    path = cloud_project / "conf" / "base" / "vertexai.yml"
    path.write_text(path.read_text().replace("experiment_name: Demo Experiment", "experiment_name: Renamed"))
    assert _invoke(cloud_project, cli_env, "schedule").exit_code == 0

    listed = _invoke(cloud_project, cli_env, "list-pipelines", "--json")
    assert listed.exit_code == 0, listed.output
    rows = [r for r in json.loads(listed.output[listed.output.index("["):]) if r["kind"] == "schedule"]
    assert {(r["name"], r["stale"]) for r in rows} == {("kvc-renamed-default", False),
                                                      ("kvc-demo-experiment-default", True)}
    table = _invoke(cloud_project, cli_env, "list-pipelines")
    assert "ACTIVE (stale)" in table.output and "schedule --prune" in table.output

    pruned = _invoke(cloud_project, cli_env, "schedule", "--prune")
    assert pruned.exit_code == 0, pruned.output
    assert sorted(s["displayName"] for s in fake.schedules.values()) == ["kvc-renamed-default",
                                                                         "kvc-someone-else-default"]
