"""A real MLflow tracking server on 127.0.0.1 (sqlite), a recording reverse proxy in front of it, the fake
Google endpoints, and generated Kedro projects that use kedro-mlflow.

The server starts once per session (≈25 s: database migrations); each test uses its own experiment.
The proxy records the ``Authorization`` header of every request, which is how the tests see that the
request-header provider's token reaches the server.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from kedro_vertex_ci.testing.projectgen import make_project
from tests.fakes.google import FakeGoogle

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")

BIN = Path(sys.executable).parent
CLIENT_ID = "764086051850-mlflow.apps.googleusercontent.com"
MLFLOW_SA = "mlflow-client@demo-project.iam.gserviceaccount.com"
_HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "host", "content-length"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


_RUNNING: dict[str, str] = {}  # one server per test process, whichever module asks first


@pytest.fixture(scope="session")
def mlflow_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """``mlflow server`` on a free loopback port; its URL. Stopped with its process group at session end.

    Modules outside this folder import this fixture (tests/test_docs_mlflow.py); the cache makes them share
    the one server instead of paying its start-up again.
    """
    if "url" not in _RUNNING:
        url, stop = _start_server(tmp_path_factory.mktemp("mlflow-server"))
        request.config.add_cleanup(stop)
        _RUNNING["url"] = url
    return _RUNNING["url"]


def _start_server(folder: Path) -> tuple[str, Callable[[], None]]:
    port = _free_port()
    env = dict(os.environ, MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false")  # no huey worker processes
    log = open(folder / "server.log", "wb")  # noqa: SIM115 - closed by stop()
    proc = subprocess.Popen(
        [str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}",
         "--default-artifact-root", (folder / "artifacts").as_uri()],
        stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
    )

    def stop() -> None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=20)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()

    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, proc, folder / "server.log")
    except BaseException:
        stop()
        raise
    return url, stop


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"mlflow server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.25)
    pytest.fail(f"mlflow server not healthy after {timeout} s:\n{log.read_text()[-3000:]}")


@dataclass
class RecordingProxy:
    """Forwards every request to ``upstream`` and remembers (method, path, Authorization header)."""

    upstream: str
    seen: list[tuple[str, str, str | None]] = field(default_factory=list)

    def start(self) -> RecordingProxy:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _forward(self) -> None:
                proxy.seen.append((self.command, self.path, self.headers.get("Authorization")))
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_HEADERS}
                request = urllib.request.Request(proxy.upstream + self.path, data=body, headers=headers,
                                                 method=self.command)
                try:
                    with urllib.request.urlopen(request, timeout=60) as response:
                        status, payload, reply = response.status, response.read(), response.headers
                except urllib.error.HTTPError as err:
                    status, payload, reply = err.code, err.read(), err.headers
                self.send_response(status)
                for key, value in reply.items():
                    if key.lower() not in _HOP_HEADERS:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _forward

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"


@pytest.fixture(scope="session")
def proxy(mlflow_server: str) -> Iterator[RecordingProxy]:
    running = RecordingProxy(mlflow_server).start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def fake_google() -> Iterator[FakeGoogle]:
    server = FakeGoogle().start()
    try:
        yield server
    finally:
        server.stop()




def mlflow_project(
    root: Path,
    name: str,
    tracking_uri: str,
    experiment: str,
    *,
    params: Mapping[str, Any] | None = None,
    header_params: Mapping[str, Any] | None = None,
    pipelines: Mapping[str, list[str]] | None = None,
    on_exit_pipeline: str | None = None,
) -> Path:
    """A 3-node chain project with kedro-mlflow: the last output is an MlflowMetricDataset (a metric)."""
    run_config: dict[str, Any] = {"image": "example/image:1"}
    if header_params:
        run_config["mlflow"] = {"request_header_provider_params": dict(header_params)}
    if on_exit_pipeline:
        run_config["on_exit_pipeline"] = on_exit_pipeline
    project = make_project(
        root, name, "chain", 3,
        catalog={"ds_2": {"type": "kedro_mlflow.io.metrics.MlflowMetricDataset"}},
        params=params,
        pipelines=pipelines,
        mlflow_hooks=True,
        vertexai={"project_id": "demo-project", "region": "europe-west4", "run_config": run_config},
    )
    (project / "conf" / "local" / "mlflow.yml").write_text(yaml.safe_dump({
        "server": {"mlflow_tracking_uri": tracking_uri},
        "tracking": {"experiment": {"name": experiment}},
    }))
    return project


def run_local(project: Path, run_id: str, env: Mapping[str, str] | None = None,
              timeout: int = 300) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """``kedro-vertex-ci run-local --json`` in ``project``: (process, parsed result)."""
    full = dict(os.environ, **(env or {}))
    full["PATH"] = os.pathsep.join((str(BIN), full.get("PATH", "")))
    proc = subprocess.run(
        [str(BIN / "kedro-vertex-ci"), "run-local", "--json", "--run-id", run_id],
        cwd=project, env=full, capture_output=True, text=True, timeout=timeout,
    )
    try:
        result = json.loads(proc.stdout)
    except ValueError:
        pytest.fail(f"run-local printed no JSON (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc, result


def step_logs(result: Mapping[str, Any]) -> str:
    """Every step's log, headed by its name (for assertion messages)."""
    parts = []
    for step in result["steps"]:
        if step.get("log") and Path(step["log"]).is_file():
            parts.append(f"--- {step['name']} ({step['state']})\n{Path(step['log']).read_text()[-2500:]}")
    return "\n".join(parts)
