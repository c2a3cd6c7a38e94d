"""``${vertex:scheduled_time}`` / ``${vertex:scheduled_date}`` (kedro-kubeflow #89, Airflow's ``ds``): the
schedule's fire time in a scheduled run, the job's create time in a one-off run; ``run-local`` plays both."""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

from kedro_vertex_ci.cli import cli
from kedro_vertex_ci.runtime.resolvers import run_time_values
from tests.conftest import minimal_vertexai

REGISTRY = """\
import json
import os

from kedro.pipeline import Pipeline, node


def record(day, stamp):
    with open(os.environ["KVC_TEST_OUT"], "a") as out:
        out.write(json.dumps({"day": day, "stamp": stamp}) + "\\n")
    return day


def register_pipelines():
    return {"__default__": Pipeline([node(record, ["params:day", "params:stamp"], "out", name="record")])}
"""


@pytest.fixture
def project(kedro_new_project: Path, fresh_demo_modules: None) -> Path:
    (kedro_new_project / "src" / "demo" / "pipeline_registry.py").write_text(REGISTRY)
    (kedro_new_project / "conf" / "base" / "parameters.yml").write_text(
        "day: ${vertex:scheduled_date}\nstamp: ${vertex:scheduled_time}\n")
    (kedro_new_project / "conf" / "base" / "vertexai.yml").write_text(minimal_vertexai())
    settings = kedro_new_project / "src" / "demo" / "settings.py"
    settings.write_text(settings.read_text() + '\nDISABLE_HOOKS_FOR_PLUGINS = ("kedro_mlflow",)\n')
    return kedro_new_project


@pytest.mark.parametrize(("scheduled", "created", "expected"), [
    ("2026-01-31T03:00:00Z", "2026-02-01T10:11:12.123Z", "2026-01-31T03:00:00Z"),
    ("2026-01-31T04:00:00+01:00", "", "2026-01-31T03:00:00Z"),  # given in another zone: UTC
    ("", "2026-02-01T10:11:12.123456Z", "2026-02-01T10:11:12Z"),  # a one-off run: its create time
    ("{{$.pipeline_job_schedule_time_utc}}", "2026-02-01T10:11:12Z", "2026-02-01T10:11:12Z"),
    ("1970-01-01T00:00:00Z", "2026-02-01T10:11:12Z", "2026-02-01T10:11:12Z"),  # zero time: not scheduled
])
def test_the_schedule_time_wins_else_the_create_time(scheduled, created, expected):
    values = run_time_values(scheduled, created)
    assert values == {"KEDRO_CONFIG_SCHEDULED_TIME": expected, "KEDRO_CONFIG_SCHEDULED_DATE": expected[:10]}


def test_compile_passes_the_run_times_only_to_projects_that_use_them(project: Path, kedro_new_project: Path):
    out = project / "p.json"
    result = CliRunner().invoke(cli, ["--project", str(project), "compile", "-o", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    spec = json.loads(out.read_text())
    args = spec["deploymentSpec"]["executors"]["exec-record"]["container"]["args"]
    assert args[args.index("--scheduled-time") + 1] == "{{$.pipeline_job_schedule_time_utc}}"
    assert args[args.index("--create-time") + 1] == "{{$.pipeline_job_create_time_utc}}"
    assert "day" not in spec["root"].get("inputDefinitions", {}).get("parameters", {})  # resolved per run

    (project / "conf" / "base" / "parameters.yml").write_text("day: x\nstamp: y\n")
    assert CliRunner().invoke(cli, ["--project", str(project), "compile", "-o", str(out)]).exit_code == 0
    plain = json.loads(out.read_text())["deploymentSpec"]["executors"]["exec-record"]["container"]["args"]
    assert "--scheduled-time" not in plain and "--create-time" not in plain


@pytest.mark.slow
def test_run_local_plays_a_scheduled_and_a_one_off_run(project: Path, tmp_path: Path):
    out = tmp_path / "seen.jsonl"
    env = {**os.environ, "KVC_TEST_OUT": str(out)}
    base = ["--project", str(project), "run-local", "--root", str(tmp_path / "runs")]
    scheduled = CliRunner().invoke(cli, [*base, "--scheduled-time", "2026-01-31T03:00:00Z"], env=env,
                                   catch_exceptions=False)
    assert scheduled.exit_code == 0, scheduled.output
    before = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    one_off = CliRunner().invoke(cli, base, env=env, catch_exceptions=False)
    assert one_off.exit_code == 0, one_off.output
    first, second = (json.loads(line) for line in out.read_text().splitlines())
    assert first == {"day": "2026-01-31", "stamp": "2026-01-31T03:00:00Z"}
    assert second["day"] in (before, datetime.now(timezone.utc).strftime("%Y-%m-%d"))
    assert second["stamp"].startswith(second["day"] + "T") and second["stamp"].endswith("Z")

    bad = CliRunner().invoke(cli, [*base, "--scheduled-time", "yesterday"], env=env)
    assert bad.exit_code == 2 and "RFC 3339" in bad.output
