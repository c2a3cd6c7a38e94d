"""Dynamic config providers in real step processes: compiled args → provider → credentials.yml → Kedro's catalog."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
import yaml

from kedro_vertex_ci.argv import parse_step_args
from kedro_vertex_ci.dynamic_config import (
    MLFlowGoogleIAMCredentialsProvider,
    canonical_class_path,
    deep_merge,
)

from .conftest import compiled_step_args, extras_project, ok, run_step, step_commands

NODES = """
def make_value():
    return 41


def add_one(x):
    return x + 1


def scaled(x, factor):
    return x * factor
"""

PROVIDERS = """
import os

from kedro_vertex_ci.dynamic_config import DynamicConfigProvider


class ApiTokenProvider(DynamicConfigProvider):
    \"\"\"A token per step: what a real provider would fetch from a token service.\"\"\"

    def __init__(self, config, audience, **params):
        super().__init__(config, **params)
        self.audience = audience

    @property
    def target_config_file(self):
        return "credentials.yml"

    def generate_config(self):
        with open(os.environ["CALLS_FILE"], "a") as out:
            out.write(self.config.run_id + "\\n")
        return {"api": {"token": f"tok-{self.audience}-{self.config.run_id}"}}


class BrokenProvider(DynamicConfigProvider):
    @property
    def target_config_file(self):
        return "credentials.yml"

    def generate_config(self):
        raise RuntimeError("token service unreachable")
"""

LEGACY_PROVIDER = """
from kedro_vertexai.dynamic_config import DynamicConfigProvider


class LegacyProvider(DynamicConfigProvider):
    \"\"\"Written against kedro-vertexai's base class, as existing projects have it.\"\"\"

    def __init__(self, config, **kwargs):
        super().__init__(config, **kwargs)
        self.value = kwargs["value"]

    @property
    def target_config_file(self):
        return "credentials.yml"

    def generate_config(self):
        return {"legacy": {"value": self.value}}
"""


def _vertexai(providers: list[dict]) -> dict:
    return {
        "project_id": "demo-project",
        "region": "europe-west4",
        "run_config": {"image": "example/image:1", "dynamic_config_providers": providers},
    }


def _steps(project: Path, run_id: str, root: Path) -> list[list[str]]:
    return step_commands(project, run_id, root)


def _run_all(project: Path, steps: list[list[str]], env: dict[str, str] | None = None):
    """Every step in order; the last result (each must succeed)."""
    result = None
    for args in steps:
        result = run_step(project, args, env=env)
        ok(result)
    return result


@pytest.fixture
def token_project(tmp_path: Path) -> Path:
    package = "tokproj"
    return extras_project(
        tmp_path,
        "tokproj",
        nodes=NODES,
        files={"providers.py": PROVIDERS},
        pipeline='node(make_value, None, "value", name="make_value"), '
        'node(scaled, ["value", "params:factor"], "scaled", name="scale")',
        params={"factor": 2},
        catalog={"scaled": {"filepath": "data/scaled.json", "credentials": "api"}},
        vertexai=_vertexai(
            [{"cls": f"{package}.providers.ApiTokenProvider", "params": {"audience": "mlflow"}}]
        ),
    )


def test_provider_writes_credentials_that_the_same_steps_catalog_uses(token_project, tmp_path):
    steps = _steps(token_project, "run-7", tmp_path / "root")
    assert len(steps) == 2 and all("--dynamic-config" in args for args in steps)
    calls = tmp_path / "calls.txt"
    _run_all(token_project, steps, env={"CALLS_FILE": str(calls)})
    saved = json.loads((token_project / "data" / "scaled.json").read_text())
    assert saved["data"] == 82
    assert saved["credentials"] == {"token": "tok-mlflow-run-7"}
    written = token_project / "conf" / "base" / "credentials.yml"
    assert yaml.safe_load(written.read_text()) == {"api": {"token": "tok-mlflow-run-7"}}
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    assert calls.read_text().split() == ["run-7", "run-7"]  # once per step


def test_generated_config_merges_into_an_existing_file_provider_wins(token_project, tmp_path):
    credentials = token_project / "conf" / "base" / "credentials.yml"
    credentials.write_text(yaml.safe_dump({"api": {"token": "stale", "user": "svc"}, "db": {"password": "p"}}))
    steps = _steps(token_project, "run-8", tmp_path / "root")
    calls = tmp_path / "calls.txt"
    _run_all(token_project, steps, env={"CALLS_FILE": str(calls)})
    assert yaml.safe_load(credentials.read_text()) == {
        "api": {"token": "tok-mlflow-run-8", "user": "svc"},
        "db": {"password": "p"},
    }
    saved = json.loads((token_project / "data" / "scaled.json").read_text())
    assert saved["credentials"] == {"token": "tok-mlflow-run-8", "user": "svc"}
    _run_all(token_project, steps, env={"CALLS_FILE": str(calls)})  # a rerun: same file, no duplicates
    assert yaml.safe_load(credentials.read_text())["api"] == {"token": "tok-mlflow-run-8", "user": "svc"}
    assert not list(credentials.parent.glob(".credentials.yml.*"))  # no temp file left behind


def test_providers_run_in_a_project_without_parameters(tmp_path):
    """kedro-vertexai skipped providers when a project had no parameters; a provider must always run."""
    project = extras_project(
        tmp_path,
        "noparams",
        nodes=NODES,
        files={"legacy_provider.py": LEGACY_PROVIDER},
        pipeline='node(make_value, None, "value", name="make_value"), '
        'node(add_one, "value", "result", name="add_one")',
        params={},
        catalog={"result": {"filepath": "data/result.json", "credentials": "legacy"}},
        vertexai=_vertexai([{"cls": "noparams.legacy_provider.LegacyProvider", "params": {"value": "v-1"}}]),
    )
    assert not yaml.safe_load((project / "conf" / "base" / "parameters.yml").read_text())
    steps = _steps(project, "run-np", tmp_path / "root")
    assert not [a for args in steps for a in args if a.startswith("--param")]
    _run_all(project, steps)
    saved = json.loads((project / "data" / "result.json").read_text())
    assert saved == {"data": 42, "credentials": {"value": "v-1"}, "note": None}


def test_a_failing_provider_fails_the_step_with_one_line_naming_it(token_project, tmp_path):
    vertexai = _vertexai([{"cls": "tokproj.providers.BrokenProvider"}])
    (token_project / "conf" / "base" / "vertexai.yml").write_text(yaml.safe_dump(vertexai))
    first = _steps(token_project, "run-9", tmp_path / "root")[0]
    result = run_step(token_project, first)
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "kedro-vertex-ci step: error: dynamic config provider tokproj.providers.BrokenProvider: "
        "RuntimeError: token service unreachable"
    )
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "root" / "kedro-vertex-ci" / "run-9").exists()  # no node ran, nothing written


def test_a_provider_that_cannot_be_imported_names_the_class(token_project, tmp_path):
    vertexai = _vertexai([{"cls": "tokproj.providers.Missing", "params": {}}])
    (token_project / "conf" / "base" / "vertexai.yml").write_text(yaml.safe_dump(vertexai))
    first = _steps(token_project, "run-10", tmp_path / "root")[0]
    result = run_step(token_project, first)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert "dynamic config provider tokproj.providers.Missing: cannot import it" in last


def test_providers_travel_as_one_json_argv_item_that_parses_back(token_project):
    args = next(iter(compiled_step_args(token_project).values()))
    item = args[args.index("--dynamic-config") + 1]
    assert json.loads(item) == [{"cls": "tokproj.providers.ApiTokenProvider", "params": {"audience": "mlflow"}}]
    inv = parse_step_args(step_commands(token_project, "r", Path("/tmp/root"))[0])
    assert [(p.cls, dict(p.params)) for p in inv.config_providers] == [
        ("tokproj.providers.ApiTokenProvider", {"audience": "mlflow"})
    ]


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("kedro_vertexai.auth.gcp.MLFlowGoogleIAMCredentialsProvider",
         "kedro_vertex_ci.dynamic_config.MLFlowGoogleIAMCredentialsProvider"),
        ("kedro_vertexai.auth.gcp.MLFlowGoogleOAuthCredentialsProvider",
         "kedro_vertex_ci.dynamic_config.MLFlowGoogleOAuthCredentialsProvider"),
        ("kedro_vertexai.dynamic_config.DynamicConfigProvider",
         "kedro_vertex_ci.dynamic_config.DynamicConfigProvider"),
        ("my_project.providers.Mine", "my_project.providers.Mine"),
    ],
)
def test_predecessor_class_paths_map_to_ours(given, expected):
    assert canonical_class_path(given) == expected


def test_deep_merge_keeps_siblings_and_lets_the_provider_win():
    existing = {"a": {"x": 1, "y": {"k": 1}}, "b": 2}
    generated = {"a": {"y": {"k": 2}, "z": 3}, "b": {"now": "mapping"}}
    assert deep_merge(existing, generated) == {"a": {"x": 1, "y": {"k": 2}, "z": 3}, "b": {"now": "mapping"}}
    assert existing == {"a": {"x": 1, "y": {"k": 1}}, "b": 2}


def test_google_iam_provider_is_compiled_under_our_class_path(tmp_path):
    project = extras_project(
        tmp_path,
        "gcpmap",
        nodes=NODES,
        pipeline='node(make_value, None, "value", name="make_value")',
        vertexai=_vertexai([{
            "cls": "kedro_vertexai.auth.gcp.MLFlowGoogleIAMCredentialsProvider",
            "params": {"client_id": "c", "service_account": "sa@p.iam.gserviceaccount.com"},
        }]),
    )
    (args,) = compiled_step_args(project).values()
    (provider,) = json.loads(args[args.index("--dynamic-config") + 1])
    assert provider["cls"] == f"{MLFlowGoogleIAMCredentialsProvider.__module__}.MLFlowGoogleIAMCredentialsProvider"


def test_legacy_base_class_imports_resolve_to_ours_in_every_spelling(tmp_path):
    """Run in a fresh interpreter: the aliases are installed only where kedro-vertexai is absent."""
    import subprocess
    import sys

    code = (
        "from kedro_vertex_ci.dynamic_config import ConfigProvider, StepContext, load_provider\n"
        "from pathlib import Path\n"
        "load_provider(ConfigProvider('kedro_vertexai.auth.gcp.MLFlowGoogleOAuthCredentialsProvider', "
        "{'client_id': 'c'}), StepContext(Path('.'), None))\n"
        "import kedro_vertexai.dynamic_config, kedro_vertexai.auth.gcp\n"
        "from kedro_vertexai.dynamic_config import DynamicConfigProvider as A\n"
        "from kedro_vertex_ci.dynamic_config import DynamicConfigProvider as B\n"
        "assert A is B is kedro_vertexai.dynamic_config.DynamicConfigProvider\n"
        "assert kedro_vertexai.auth.gcp.MLFlowGoogleIAMCredentialsProvider.__module__ == 'kedro_vertex_ci.dynamic_config'\n"
        "print('ok')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert proc.stdout.strip() == "ok", proc.stderr
