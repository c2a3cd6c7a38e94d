"""docs/mlflow.md is true: its config compiles into what it describes, its custom provider works as written,
and its dry run against a real MLflow server prints what the page shows."""

from __future__ import annotations

import base64
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from kedro_vertex_ci.compiler import compile_pipeline
from kedro_vertex_ci.mlflow_auth import PARAMS_ENV, check_params, provider_from_params
from kedro_vertex_ci.testing.projectgen import make_project
from tests.conftest import REPO
from tests.mlflow.conftest import mlflow_server, run_local, step_logs  # noqa: F401 - session fixture

DOC = REPO / "docs" / "mlflow.md"
PAGE_URI = "http://127.0.0.1:5000"


def _block(title: str) -> str:
    """The fenced block with this title (or, for untitled blocks, this language)."""
    for language, found, body in re.findall(r'```(\w+)(?: title="([^"]*)")?\n(.*?)```', DOC.read_text(), re.S):
        if found == title or (not found and language == title):
            return str(body)
    raise AssertionError(f"docs/mlflow.md has no block {title!r}")


def _project(tmp_path: Path, name: str, tracking_uri: str = PAGE_URI) -> Path:
    project = make_project(
        tmp_path, name, "chain", 3, mlflow_hooks=True, vertexai=_block("conf/base/vertexai.yml"),
        catalog={"ds_2": {"type": "kedro_mlflow.io.metrics.MlflowMetricDataset"}},
    )
    mlflow_yml = _block("conf/local/mlflow.yml").replace(PAGE_URI, tracking_uri)
    (project / "conf" / "local" / "mlflow.yml").write_text(mlflow_yml)
    return project


def test_the_pages_config_compiles_into_the_tasks_and_environment_it_describes(tmp_path: Path) -> None:
    compiled = compile_pipeline(_project(tmp_path, "docs_mlflow_compile"))
    params = yaml.safe_load(_block("conf/base/vertexai.yml"))["run_config"]["mlflow"]["request_header_provider_params"]
    handler = compiled.spec["components"]["comp-exit-handler-1"]["dag"]["tasks"]
    assert "mlflow-start-run" in handler and "mlflow-end-run" in compiled.spec["root"]["dag"]["tasks"]
    for name, task in handler.items():
        if name != "mlflow-start-run":
            assert task["inputs"]["parameters"]["mlflow_run_id"]["taskOutputParameter"]["producerTask"] == "mlflow-start-run"
    for executor in compiled.spec["deploymentSpec"]["executors"].values():
        (env,) = executor["container"]["env"]
        assert env["name"] == PARAMS_ENV and json.loads(env["value"]) == params
    assert set(params) == {"client_id", "service_account"}


def _jwt(claims: dict) -> str:
    def part(value: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256'})}.{part(claims)}.c2ln"


def test_the_pages_custom_provider_works_as_configured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "src" / "my_project"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "mlflow_token.py").write_text(_block("src/my_project/mlflow_token.py"))
    monkeypatch.syspath_prepend(str(tmp_path / "src"))
    token_file = tmp_path / "token"
    token_file.write_text(_jwt({"exp": 4_000_000_000}) + "\n")
    excerpt = yaml.safe_load(_block("conf/base/vertexai.yml (excerpt)"))
    params = {**excerpt["run_config"]["mlflow"]["request_header_provider_params"], "path": str(token_file)}
    assert check_params(params) is None
    provider = provider_from_params(params)
    headers = provider.request_headers()
    assert headers == {"Authorization": f"Bearer {token_file.read_text().strip()}"}
    token_file.write_text("rotated")
    assert provider.request_headers() == headers  # cached until shortly before the JWT's exp


@pytest.mark.slow
def test_the_pages_dry_run_prints_what_the_page_shows(tmp_path: Path, mlflow_server: str) -> None:  # noqa: F811
    project = _project(tmp_path, "docs_mlflow_run", tracking_uri=mlflow_server)
    project_config = project / "conf" / "base" / "vertexai.yml"
    config = yaml.safe_load(project_config.read_text())
    del config["run_config"]["mlflow"]  # the page's IAP settings need Google; the dry run here has none
    project_config.write_text(yaml.safe_dump(config))
    (command,) = [line for line in _block("bash").splitlines() if line.strip()]
    argv = shlex.split(command)
    assert argv[:2] == ["kedro-vertex-ci", "run-local"] and argv[2:] == ["--run-id", "my-run"]
    proc, result = run_local(project, "my-run")
    assert result["state"] == "succeeded", step_logs(result)
    script = _block("show_run.py").replace(PAGE_URI, mlflow_server)
    shown = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr[-3000:]
    assert shown.stdout == _block("text")
