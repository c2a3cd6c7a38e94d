"""Fixtures for the Google Cloud tier: the loopback fake of Google's APIs and gcp-storage-emulator."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.google import OIDC_REQUEST_TOKEN, FakeGoogle
from tests.gcp.specs import compile_tiny_spec

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")
os.environ["NO_GCE_CHECK"] = "True"

PROJECT = "demo-project"
REGION = "europe-west4"
SERVICE_ACCOUNT = "deployer@demo-project.iam.gserviceaccount.com"


@pytest.fixture
def fake() -> Iterator[FakeGoogle]:
    server = FakeGoogle().start()
    try:
        yield server
    finally:
        server.stop()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def storage_emulator() -> Iterator[str]:
    """gcp-storage-emulator on a free loopback port (in memory); yields its base URL."""
    port = _free_port()
    exe = Path(sys.executable).with_name("gcp-storage-emulator")
    proc = subprocess.Popen([str(exe), "start", "--host", "127.0.0.1", "--port", str(port), "--in-memory"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            time.sleep(0.05)
    else:
        proc.kill()
        raise RuntimeError("gcp-storage-emulator did not start")
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def endpoints(fake: FakeGoogle, storage_emulator: str):
    from kedro_vertex_ci.gcp.endpoints import Endpoints

    return Endpoints(vertex=fake.url, cloudbuild=fake.url, storage=storage_emulator, sts=fake.url,
                     iamcredentials=fake.url)


@pytest.fixture
def github_env(fake: FakeGoogle) -> dict[str, str]:
    """What a GitHub Actions job with `permissions: id-token: write` sees."""
    return {"ACTIONS_ID_TOKEN_REQUEST_URL": fake.oidc_url, "ACTIONS_ID_TOKEN_REQUEST_TOKEN": OIDC_REQUEST_TOKEN,
            "GITHUB_ACTIONS": "true", "GITHUB_SHA": "0123456789abcdef0123456789abcdef01234567",
            "GITHUB_REF_NAME": "feature/Fast-Compile", "GITHUB_REF": "refs/heads/feature/Fast-Compile"}


@pytest.fixture
def credentials(fake: FakeGoogle, endpoints, github_env):
    """Real google-auth federated credentials, impersonating the deployer service account, via the fake."""
    from kedro_vertex_ci.gcp.auth import AuthRequest, load_credentials

    return load_credentials(AuthRequest(project_id=PROJECT, endpoints=endpoints,
                                        workload_identity_provider=fake.provider_name,
                                        service_account=SERVICE_ACCOUNT, environ=github_env))


@pytest.fixture(scope="session")
def tiny_spec() -> dict:
    return compile_tiny_spec()


VERTEXAI_YML = """\
project_id: demo-project
region: europe-west4
run_config:
  image: europe-docker.pkg.dev/demo-project/kvc/demo:latest
  root: gs://demo-bucket/pipelines
  experiment_name: Demo Experiment
  service_account: runner@demo-project.iam.gserviceaccount.com
  network:
    vpc: projects/123456789012/global/networks/ml-vpc
  labels:
    team: ml
  schedules:
    default_schedule:
      cron_expression: "0 4 * * *"
      timezone: Europe/Warsaw
build:
  region: europe-west4
  service_account: builder@demo-project.iam.gserviceaccount.com
"""

REGISTRY = """\
from kedro.pipeline import Pipeline, node


def double(x):
    return 2 * x


def register_pipelines():
    main = Pipeline([node(double, "params:x", "y", name="first"), node(double, "y", "z", name="second")])
    return {"__default__": main, "training": main}
"""


@pytest.fixture
def cloud_project(kedro_new_project: Path) -> Path:
    """A real `kedro new` project with two nodes, a vertexai.yml, a Dockerfile, git metadata and local data."""
    project = kedro_new_project
    (project / "src" / "demo" / "pipeline_registry.py").write_text(REGISTRY)
    (project / "conf" / "base" / "parameters.yml").write_text("x: 1\n")
    (project / "conf" / "base" / "vertexai.yml").write_text(VERTEXAI_YML)
    (project / "Dockerfile").write_text("FROM python:3.11-slim\nCOPY . /app\n")
    return project


@pytest.fixture
def cli_env(fake: FakeGoogle, storage_emulator: str, github_env: dict[str, str]) -> dict[str, str]:
    """Environment that points the real CLI at the fakes and authenticates through WIF + impersonation."""
    env = dict(github_env)
    for service in ("VERTEX", "CLOUDBUILD", "STS", "IAMCREDENTIALS"):
        env[f"KEDRO_VERTEX_CI_{service}_ENDPOINT"] = fake.url
    env["KEDRO_VERTEX_CI_STORAGE_ENDPOINT"] = storage_emulator
    env["KEDRO_VERTEX_CI_WORKLOAD_IDENTITY_PROVIDER"] = fake.provider_name
    env["KEDRO_VERTEX_CI_SERVICE_ACCOUNT"] = SERVICE_ACCOUNT
    env["KEDRO_VERTEX_CI_POLL_SECONDS"] = "0"
    env["GOOGLE_CLOUD_PROJECT"] = PROJECT
    env["GOOGLE_APPLICATION_CREDENTIALS"] = ""
    return env


@pytest.fixture
def bucket(storage_emulator: str):
    """Create a bucket in the emulator; returns a function name -> google.cloud.storage.Bucket."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    client = storage.Client(project=PROJECT, credentials=AnonymousCredentials(),
                            client_options={"api_endpoint": storage_emulator})

    def make(name: str):
        existing = client.lookup_bucket(name)
        return existing or client.create_bucket(name)

    make.client = client
    return make
