"""An ``s3://`` pipeline root (Kubeflow on MinIO/S3): run-local's steps exchange data through a real S3 API.

The S3 server is moto's standalone server on 127.0.0.1; the steps find it the way pods find MinIO, through
``AWS_ENDPOINT_URL`` and the usual ``AWS_*`` credentials in their environment.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from kedro_vertex_ci.testing import make_project

from .conftest import CLI

KEYS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing-SECRET", "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture
def s3_server() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


def _s3(url: str):
    import boto3

    return boto3.client("s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id="testing",
                        aws_secret_access_key="testing-SECRET")


def test_intermediate_data_crosses_steps_through_s3(s3_server: str, tmp_path: Path) -> None:
    _s3(s3_server).create_bucket(Bucket="kvc-runs")
    project = make_project(tmp_path, "s3demo", shape="diamond", n=4, catalog=["ds_3"], vertexai={
        "project_id": "p-1", "region": "europe-west1",
        "run_config": {"image": "x:1", "target": "kfp", "root": "s3://kvc-runs/pipelines"},
        "kfp": {"host": "http://127.0.0.1:9/pipeline"}})
    env = {**os.environ, **KEYS, "AWS_ENDPOINT_URL": s3_server, "KEDRO_DISABLE_TELEMETRY": "true"}
    proc = subprocess.run([CLI, "run-local", "--pipeline-root", "s3://kvc-runs/pipelines", "--run-id", "s3run",
                           "--json"], cwd=project, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert json.loads(proc.stdout)["state"] == "succeeded"
    listed = _s3(s3_server).list_objects_v2(Bucket="kvc-runs", Prefix="pipelines/kedro-vertex-ci/s3run/")
    stored = {item["Key"].rsplit("/", 1)[-1] for item in listed.get("Contents", [])}
    assert {"ds_0.bin", "ds_1.bin", "ds_2.bin"} <= stored, stored  # every step-to-step dataset went through S3
    assert json.loads((project / "data" / "ds_3.json").read_text()) is not None  # the catalog output was written
