"""The shipped Google provider in a real step: ADC → IAM Credentials generateIdToken (loopback fake) → credentials.yml."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.fakes.google import FakeGoogle, desk_login_env

from .conftest import extras_project, ok, run_step, step_commands

CLIENT_ID = "123-mlflow.apps.googleusercontent.com"
MLFLOW_SA = "mlflow-client@demo-project.iam.gserviceaccount.com"
NODES = """
def make_value():
    return 7
"""


@pytest.fixture
def fake() -> Iterator[FakeGoogle]:
    server = FakeGoogle().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def gcp_project(tmp_path: Path) -> Path:
    return extras_project(
        tmp_path,
        "gcpcreds",
        nodes=NODES,
        pipeline='node(make_value, None, "value", name="make_value")',
        catalog={"value": {"filepath": "data/value.json", "credentials": "gcp_credentials"}},
        vertexai={
            "project_id": "demo-project",
            "region": "europe-west4",
            "run_config": {
                "image": "example/image:1",
                "dynamic_config_providers": [
                    {  # kedro-vertexai's class path, as existing projects have it
                        "cls": "kedro_vertexai.auth.gcp.MLFlowGoogleIAMCredentialsProvider",
                        "params": {"client_id": CLIENT_ID, "service_account": MLFLOW_SA},
                    }
                ],
            },
        },
    )


def _claims(jwt: str) -> dict:
    payload = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def test_iam_provider_puts_an_id_token_for_the_client_id_into_credentials(gcp_project, fake, tmp_path):
    (args,) = step_commands(gcp_project, "run-g", tmp_path / "root")
    result = run_step(gcp_project, args, env=desk_login_env(fake, tmp_path))
    ok(result)

    (call,) = fake.calls("POST", r":generateIdToken$")
    assert MLFLOW_SA in call.path and call.json == {"audience": CLIENT_ID, "includeEmail": True}
    assert call.bearer in fake.issued_tokens  # the ADC access token minted by the refresh

    credentials = yaml.safe_load((gcp_project / "conf" / "base" / "credentials.yml").read_text())
    token = credentials["gcp_credentials"]["MLFLOW_TRACKING_TOKEN"]
    assert _claims(token) == {"aud": CLIENT_ID, "email": MLFLOW_SA}
    saved = json.loads((gcp_project / "data" / "value.json").read_text())
    assert saved["credentials"] == {"MLFLOW_TRACKING_TOKEN": token}  # Kedro's catalog got the fresh token
    assert token not in result.stdout + result.stderr  # never logged


def test_iam_denial_fails_the_step_with_the_role_to_grant(gcp_project, fake, tmp_path):
    fake.inject("POST", r":generateIdToken$", status=403)
    (args,) = step_commands(gcp_project, "run-d", tmp_path / "root")
    result = run_step(gcp_project, args, env=desk_login_env(fake, tmp_path))
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(  # compiled under our class path, so the message names ours
        "kedro-vertex-ci step: error: dynamic config provider "
        "kedro_vertex_ci.dynamic_config.MLFlowGoogleIAMCredentialsProvider: AuthError: Minting an ID token for "
        f"{MLFLOW_SA} was denied"
    ), last
    assert "roles/iam.serviceAccountOpenIdTokenCreator" in last
    assert not (gcp_project / "data" / "value.json").exists()
