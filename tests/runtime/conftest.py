"""Fixtures for the step runtime: a real Kedro project made by ``kedro new``, step processes, a GCS emulator."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")
os.environ.setdefault("NO_GCE_CHECK", "true")  # no metadata-server probe (non-loopback) from test code

BIN = Path(sys.executable).parent
STEP = str(BIN / "kedro-vertex-ci")
BUCKET = "kvc-runtime-test"

NODES = """
import time


def make(n):
    return list(range(n))


def double(xs):
    return [2 * x for x in xs]


def total(xs, ys):
    return {"total": sum(xs) + sum(ys), "xs": xs, "ys": ys}


def mutate_and_sum(xs):
    xs.append(1000)
    return sum(xs)


def report(label, tag, n, status, env_run_id):
    return {"label": label, "tag": tag, "n": n, "status": status, "env_run_id": env_run_id}


def sleep_forever(xs):
    time.sleep(120)
    return xs


def show(model):
    return model


def big(xs):
    import numpy as np

    return np.random.default_rng(0).random(16_000_000)  # 128 MB, incompressible: a slow write


def ask(xs):
    return input("Continue? [y/N] ")


def boom(xs):
    raise RuntimeError("boom from a user node")
"""

PIPELINES = """
from kedro.pipeline import Pipeline, node

from .nodes import ask, big, boom, double, make, mutate_and_sum, report, show, sleep_forever, total


def register_pipelines():
    chain = Pipeline(
        [
            node(make, "params:n", "a", name="make"),
            node(double, "a", "b", name="double"),
            node(total, ["a", "b"], "result", name="total"),
        ]
    )
    inside = Pipeline(
        [
            node(make, "params:n", "a", name="make"),
            node(mutate_and_sum, "a", "a_sum", name="a_mutate"),  # runs before double: Kedro orders ties by name
            node(double, "a", "b", name="double"),
            node(total, ["a", "b"], "result", name="total"),
        ]
    )
    odd = Pipeline(
        [
            node(make, "params:n", "odd:set/x", name="make_odd"),
            node(double, "odd:set/x", "ns.odd/y", name="double_odd"),
            node(total, ["odd:set/x", "ns.odd/y"], "result", name="total_odd"),
        ]
    )
    misc = Pipeline(
        [
            node(
                report,
                ["params:label", "params:tag", "params:n", "params:status", "params:env_run_id"],
                "report",
                name="report",
            ),
            node(make, "params:n", "s", name="make_s"),
            node(sleep_forever, "s", "slept", name="sleep"),
            node(boom, "s", "never", name="boom"),
            node(ask, "s", "answer", name="ask"),
            node(big, "s", "big_out", name="big"),
            node(show, "params:model", "model_report", name="show_model"),
        ]
    )
    return {"__default__": chain, "inside": inside, "odd": odd, "misc": misc}
"""

HOOKS = '''
import os

from kedro.framework.hooks import hook_impl


class CountKedroStarts:
    """Appends one line per Kedro context created, so tests can count Kedro starts per process."""

    @hook_impl
    def after_context_created(self, context):
        path = os.environ.get("RTDEMO_STARTS_FILE")
        if path:
            with open(path, "a", encoding="utf-8") as out:
                out.write(f"{os.getpid()}\\n")
'''

SETTINGS = """
from rtdemo.hooks import CountKedroStarts

HOOKS = (CountKedroStarts(),)
# kedro-mlflow is installed in the dev venv; its hooks would need an MLflow store this project lacks.
DISABLE_HOOKS_FOR_PLUGINS = ("kedro_mlflow",)
from omegaconf.resolvers import oc

# The project opted into oc.env (Kedro disables it by default): the step exports KEDRO_CONFIG_RUN_ID.
CONFIG_LOADER_ARGS = {"base_env": "base", "default_run_env": "local", "custom_resolvers": {"oc.env": oc.env}}
"""

CATALOG = """
result:
  type: json.JSONDataset
  filepath: data/${vertex:run_id}/result.json

model_report:
  type: json.JSONDataset
  filepath: data/${vertex:run_id}/model.json

report:
  type: json.JSONDataset
  filepath: data/report-${vertex:job_name}-${vertex:commit_id}.json
"""

PARAMETERS = """
n: 4
label: from-yaml
tag: "${vertex:run_id}|${vertex:job_name}|${vertex:commit_id}|${vertex:branch_name}|${vertex:team,ds}"
status: ${vertex:pipeline_status}
env_run_id: ${oc.env:KEDRO_CONFIG_RUN_ID}
model:
  lr: 0.01
  depth: 2
"""


def _kedro_new(parent: Path) -> Path:
    subprocess.run(
        [
            str(BIN / "kedro"),
            "new",
            "--name",
            "rtdemo",
            "--tools",
            "none",
            "--example",
            "n",
            "--telemetry",
            "no",
        ],
        cwd=parent,
        check=True,
        capture_output=True,
        env={**os.environ, "KEDRO_DISABLE_TELEMETRY": "true"},
    )
    return parent / "rtdemo"


@pytest.fixture(scope="session")
def rt_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Kedro 1.x project created by ``kedro new``, with our nodes, pipelines, catalog and parameters."""
    project = _kedro_new(tmp_path_factory.mktemp("rt"))
    package = project / "src" / "rtdemo"
    files = {
        package / "nodes.py": NODES,
        package / "pipeline_registry.py": PIPELINES,
        package / "hooks.py": HOOKS,
        package / "settings.py": SETTINGS,
        project / "conf" / "base" / "catalog.yml": CATALOG,
        project / "conf" / "base" / "parameters.yml": PARAMETERS,
    }
    for path, text in files.items():
        path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return project


def step(
    project: Path,
    *args: str,
    env: dict[str, str] | None = None,
    timeout: float = 120,
    stdin: int | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``kedro-vertex-ci step ARGS`` as its own process in ``project``, as a Vertex task would."""
    full_env = {**os.environ, "COLUMNS": "200", **(env or {})}
    return subprocess.run(
        [STEP, "step", *args],
        cwd=project,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL if stdin is None else stdin,
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def gcs_emulator() -> Iterator[str]:
    """gcp-storage-emulator on a free loopback port with bucket :data:`BUCKET`; yields its base URL."""
    port = _free_port()
    proc = subprocess.Popen(
        [
            str(BIN / "gcp-storage-emulator"),
            "start",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--in-memory",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for_port(port, proc)
        _create_bucket(url, BUCKET)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _wait_for_port(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("gcp-storage-emulator exited at start")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("gcp-storage-emulator did not start")


def _create_bucket(url: str, bucket: str) -> None:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    client = storage.Client(
        project="test", credentials=AnonymousCredentials(), client_options={"api_endpoint": url}
    )
    client.create_bucket(bucket)
