"""The runtime-extras pages run: every fenced block with ``title="PATH"`` in docs/dynamic-config.md,
docs/on-exit.md and docs/networking.md is written into a generated project at PATH (``my_project`` is the
package), then the project is compiled and its steps run as Vertex would run them."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.extras.conftest import CLI, extras_project, forget_generated_packages, ok, run_step, step_commands
from tests.fakes.google import FakeGoogle

DOCS = Path(__file__).resolve().parents[1] / "docs"
_TITLED = re.compile(r'^```(\w+) title="([^"]+)"\n(.*?)^```', re.MULTILINE | re.DOTALL)
NODES = """
def make_value():
    return 5
"""


@pytest.fixture(autouse=True)
def _fresh_project_packages(tmp_path_factory: pytest.TempPathFactory):
    forget_generated_packages(tmp_path_factory.getbasetemp())
    yield
    forget_generated_packages(tmp_path_factory.getbasetemp())


def titled_blocks(page: str) -> dict[str, str]:
    """``{path: text}`` for every titled fenced block of ``docs/<page>``."""
    blocks = {path: text for _lang, path, text in _TITLED.findall((DOCS / page).read_text(encoding="utf-8"))}
    assert blocks, f"docs/{page} has no titled snippet"
    return blocks


def _install(project: Path, blocks: dict[str, str]) -> None:
    for path, text in blocks.items():
        target = project / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)


def _my_project(tmp_path: Path, **kwargs) -> Path:
    return extras_project(tmp_path, "my_project", nodes=NODES, **kwargs)


def test_dynamic_config_page(tmp_path):
    blocks = titled_blocks("dynamic-config.md")
    assert set(blocks) == {"conf/base/vertexai.yml", "src/my_project/warehouse.py"}
    project = _my_project(
        tmp_path,
        pipeline='node(make_value, None, "orders", name="make_value")',
        catalog={"orders": {"filepath": "data/orders.json", "credentials": "warehouse"}},
    )
    _install(project, blocks)
    providers = yaml.safe_load(blocks["conf/base/vertexai.yml"])["run_config"]["dynamic_config_providers"]
    iam = providers[1]["params"]
    fake = FakeGoogle().start()
    try:
        adc = tmp_path / "adc.json"
        adc.write_text(json.dumps({"type": "authorized_user", "client_id": "x", "client_secret": "y",
                                   "refresh_token": "1//refresh-SECRET", "token_uri": "https://unused/token"}))
        env = {"WAREHOUSE_PASSWORD": "s3cret-pw", "GOOGLE_APPLICATION_CREDENTIALS": str(adc),
               "KEDRO_VERTEX_CI_OAUTH2_ENDPOINT": fake.url, "KEDRO_VERTEX_CI_IAMCREDENTIALS_ENDPOINT": fake.url}
        for args in step_commands(project, "doc-run", tmp_path / "root"):
            result = run_step(project, args, env=env)
            ok(result)
            assert "s3cret-pw" not in result.stdout + result.stderr
        (call,) = fake.calls("POST", r":generateIdToken$")
    finally:
        fake.stop()
    assert iam["service_account"] in call.path and call.json["audience"] == iam["client_id"]
    credentials = yaml.safe_load((project / "conf" / "base" / "credentials.yml").read_text())
    assert credentials["warehouse"] == {"user": "etl-bot", "password": "s3cret-pw",
                                        "application_name": "kedro-doc-run"}
    assert credentials["gcp_credentials"]["MLFLOW_TRACKING_TOKEN"].count(".") == 2
    saved = json.loads((project / "data" / "orders.json").read_text())
    assert saved == {"data": 5, "credentials": credentials["warehouse"], "note": None}


def test_on_exit_page(tmp_path):
    blocks = titled_blocks("on-exit.md")
    project = _my_project(tmp_path, pipeline="")
    (project / "src" / "my_project" / "pipeline_registry.py").unlink()
    _install(project, blocks)
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1"}
    proc = subprocess.run([CLI, "run-local", "--json", "--run-id", "doc-exit"], cwd=project, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    steps = json.loads(proc.stdout)["steps"]
    assert steps[-1]["name"] == "on-exit-notify" and all(s["state"] == "done" for s in steps)
    sent = json.loads((project / "data" / "08_reporting" / "notification-doc-exit.json").read_text())
    assert sent == {"status": "SUCCEEDED", "run_id": "doc-exit", "job": sent["job"],
                    "message": f"pipeline {sent['job']} finished: SUCCEEDED"}
    assert sent["job"] not in ("", "local")


def test_networking_page(tmp_path):
    blocks = titled_blocks("networking.md")
    assert set(blocks) == {"conf/base/vertexai.yml"}
    project = _my_project(tmp_path, pipeline='node(make_value, None, "value", name="make_value")')
    _install(project, blocks)
    aliases = yaml.safe_load(blocks["conf/base/vertexai.yml"])["run_config"]["network"]["host_aliases"]
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1\tlocalhost\n")
    (args,) = step_commands(project, "doc-net", tmp_path / "root")
    assert [args[i + 1] for i, a in enumerate(args) if a == "--host-alias"] == [
        f"{a['ip']}={','.join(a['hostnames'])}" for a in aliases
    ]
    ok(run_step(project, args, env={"KEDRO_VERTEX_CI_HOSTS_FILE": str(hosts)}))
    lines = hosts.read_text().splitlines()
    assert lines[0] == "127.0.0.1\tlocalhost"
    for alias in aliases:
        assert f"{alias['ip']}\t{' '.join(alias['hostnames'])}" in lines
    page = [line.strip(" ") for line in (DOCS / "networking.md").read_text().splitlines()]
    block = lines[lines.index("# BEGIN kedro-vertex-ci host aliases"):]
    start = page.index(block[0])
    assert page[start:start + len(block)] == block  # the page shows exactly what the step writes
