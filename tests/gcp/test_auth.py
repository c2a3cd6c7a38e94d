"""Workload Identity Federation and credential files with real google-auth against the loopback fake."""

from __future__ import annotations

import json

import pytest

from kedro_vertex_ci.errors import AuthError
from kedro_vertex_ci.gcp.auth import (
    AuthRequest,
    external_account_info,
    github_masker,
    load_credentials,
    parse_provider,
)
from kedro_vertex_ci.gcp.endpoints import Endpoints, resolve_endpoints
from tests.fakes.google import OIDC_REQUEST_TOKEN

from .conftest import PROJECT, SERVICE_ACCOUNT


def _request(fake, endpoints, env, **kwargs):
    return AuthRequest(project_id=PROJECT, endpoints=endpoints, environ=env,
                       workload_identity_provider=kwargs.pop("provider", fake.provider_name), **kwargs)


def test_direct_federation_exchanges_github_oidc_token_at_sts(fake, endpoints, github_env):
    credentials = load_credentials(_request(fake, endpoints, github_env))

    oidc, = fake.calls("GET", "/github/oidc")
    assert oidc.bearer == OIDC_REQUEST_TOKEN
    assert oidc.query["audience"] == [f"https://iam.googleapis.com/{fake.provider_name}"]
    sts, = fake.calls("POST", "^/v1/token$")
    form = sts.form
    assert form["grant_type"] == "urn:ietf:params:oauth:grant-type:token-exchange"
    assert form["audience"] == f"//iam.googleapis.com/{fake.provider_name}"
    assert form["subject_token_type"] == "urn:ietf:params:oauth:token-type:jwt"
    assert form["scope"] == "https://www.googleapis.com/auth/cloud-platform"
    assert form["subject_token"].count(".") == 2
    assert credentials.token == fake.issued_tokens[-1]
    assert not fake.calls("POST", "generateAccessToken")


def test_impersonation_uses_the_federated_token_to_mint_a_service_account_token(fake, endpoints, github_env):
    credentials = load_credentials(_request(fake, endpoints, github_env, service_account=SERVICE_ACCOUNT))

    sts, = fake.calls("POST", "^/v1/token$")
    assert sts.form["scope"] == "https://www.googleapis.com/auth/iam"
    impersonation, = fake.calls("POST", "generateAccessToken")
    assert impersonation.path == f"/v1/projects/-/serviceAccounts/{SERVICE_ACCOUNT}:generateAccessToken"
    assert impersonation.bearer == fake.issued_tokens[0]  # the STS token
    assert impersonation.json["scope"] == ["https://www.googleapis.com/auth/cloud-platform"]
    assert credentials.token.startswith("ya29.sa-")


def test_missing_oidc_variables_name_id_token_permission_and_forks(fake, endpoints):
    with pytest.raises(AuthError, match="id-token: write") as err:
        load_credentials(_request(fake, endpoints, {"GITHUB_ACTIONS": "true"}))
    assert "fork" in str(err.value)
    assert not fake.requests


@pytest.mark.parametrize(("provider", "fix"), [
    ("projects/123456789012/locations/global/workloadIdentityPools/github", "names a pool, not a provider"),
    ("projects/demo-project/locations/global/workloadIdentityPools/github/providers/repo", "project NUMBER"),
    ("github/repo", "not a provider resource name"),
])
def test_malformed_provider_is_rejected_before_any_call(fake, endpoints, github_env, provider, fix):
    with pytest.raises(AuthError, match=fix):
        load_credentials(_request(fake, endpoints, github_env, provider=provider))
    assert not fake.requests


def test_provider_accepts_the_full_audience_form():
    name = "projects/1/locations/global/workloadIdentityPools/p/providers/x"
    assert parse_provider(f"//iam.googleapis.com/{name}") == name


def test_unknown_provider_gives_invalid_target_hint(fake, endpoints, github_env):
    other = "projects/123456789012/locations/global/workloadIdentityPools/github/providers/nope"
    with pytest.raises(AuthError, match="invalid_target") as err:
        load_credentials(_request(fake, endpoints, github_env, provider=other))
    assert "project number" in str(err.value)


def test_impersonation_denied_names_workload_identity_user_role(fake, endpoints, github_env):
    with pytest.raises(AuthError, match="roles/iam.workloadIdentityUser"):
        load_credentials(_request(fake, endpoints, github_env,
                                  service_account="other@demo-project.iam.gserviceaccount.com"))


def test_credentials_file_from_google_github_actions_auth_is_retargeted_and_scoped(
        fake, endpoints, github_env, tmp_path):
    """The gha-creds-*.json file the auth action writes: public URLs in it, our endpoints win."""
    public = Endpoints()
    oidc_url = f"{fake.oidc_url}&audience=https%3A%2F%2Fiam.googleapis.com%2F{fake.provider_name}"
    info = external_account_info(fake.provider_name, oidc_url, OIDC_REQUEST_TOKEN, public, SERVICE_ACCOUNT)
    path = tmp_path / "gha-creds-0123abcd.json"
    path.write_text(json.dumps(info))

    credentials = load_credentials(AuthRequest(project_id=PROJECT, endpoints=endpoints,
                                               environ={"GOOGLE_APPLICATION_CREDENTIALS": str(path)}))

    assert fake.calls("POST", "^/v1/token$") and fake.calls("POST", "generateAccessToken")
    assert credentials.token.startswith("ya29.sa-")
    assert not fake.calls(path_regex="cloudresourcemanager|/v1/projects/[^-]")  # no project lookup


def test_missing_credentials_file_is_a_clear_error(endpoints, tmp_path):
    with pytest.raises(AuthError, match="does not exist"):
        load_credentials(AuthRequest(project_id=PROJECT, endpoints=endpoints,
                                     environ={"GOOGLE_APPLICATION_CREDENTIALS": str(tmp_path / "nope.json")}))


def test_tokens_are_masked_in_github_actions_and_never_printed(fake, endpoints, github_env, capfd):
    credentials = load_credentials(_request(fake, endpoints, github_env, service_account=SERVICE_ACCOUNT),
                                   mask=github_masker(github_env))
    out, err = capfd.readouterr()
    secrets = [credentials.token, OIDC_REQUEST_TOKEN]
    for secret in secrets:
        assert f"::add-mask::{secret}" in out.splitlines()
    for line in (out + err).splitlines():
        if not line.startswith("::add-mask::"):
            assert not any(s in line for s in secrets)
    # a later refresh (tokens expire) is masked too
    import google.auth.transport.requests

    credentials.refresh(google.auth.transport.requests.Request())
    out, _ = capfd.readouterr()
    assert out.splitlines() == [f"::add-mask::{credentials.token}"]


def test_no_masking_outside_github_actions(fake, endpoints, github_env, capfd):
    env = {**github_env, "GITHUB_ACTIONS": "false"}
    credentials = load_credentials(_request(fake, endpoints, env), mask=github_masker(env))
    out, err = capfd.readouterr()
    assert credentials.token not in out + err and OIDC_REQUEST_TOKEN not in out + err


def test_sts_outage_is_retried(fake, endpoints, github_env):
    fake.inject("POST", "^/v1/token$", status=503, times=1)
    fake.inject("GET", "/github/oidc", drop=True, times=1)
    credentials = load_credentials(_request(fake, endpoints, github_env))
    assert credentials.token
    assert len(fake.calls("POST", "^/v1/token$")) >= 2


def test_environment_overrides_win_over_config():
    configured = {"vertex": "https://vertex.example/", "storage": "https://storage.example"}
    env = {"KEDRO_VERTEX_CI_VERTEX_ENDPOINT": "http://127.0.0.1:9", "KEDRO_VERTEX_CI_STS_ENDPOINT": "http://sts"}
    resolved = resolve_endpoints(configured, env)
    assert resolved.vertex == "http://127.0.0.1:9"
    assert resolved.storage == "https://storage.example"
    assert resolved.sts_token_url() == "http://sts/v1/token"
    assert resolved.cloudbuild_url() == "https://cloudbuild.googleapis.com"
    assert Endpoints().vertex_url("us-central1") == "https://us-central1-aiplatform.googleapis.com"


def _with_oauth2(endpoints, fake):
    import dataclasses

    return dataclasses.replace(endpoints, oauth2=fake.url)


def _adc_file(tmp_path, fake, refresh_token="1//refresh-SECRET"):
    """What `gcloud auth application-default login` leaves in the gcloud config folder."""
    folder = tmp_path / "gcloud"
    folder.mkdir()
    (folder / "application_default_credentials.json").write_text(json.dumps({
        "type": "authorized_user", "client_id": "764086051850-x.apps.googleusercontent.com",
        "client_secret": "d-FL95Q19q7MQmFpd7hHD0Ty", "refresh_token": refresh_token,
        "token_uri": "https://oauth2.googleapis.com/token"}))
    return folder


def test_application_default_credentials_at_a_desk(fake, endpoints, tmp_path, monkeypatch):
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(_adc_file(tmp_path, fake)))
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    credentials = load_credentials(AuthRequest(project_id=PROJECT, endpoints=_with_oauth2(endpoints, fake),
                                               environ={}))
    refresh, = fake.calls("POST", "^/token$")
    assert refresh.form["grant_type"] == "refresh_token"
    assert credentials.token.startswith("ya29.user-")


def test_expired_desk_login_says_how_to_log_in_again(fake, endpoints, tmp_path, monkeypatch):
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(_adc_file(tmp_path, fake, refresh_token="revoked")))
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    with pytest.raises(AuthError, match="gcloud auth application-default login"):
        load_credentials(AuthRequest(project_id=PROJECT, endpoints=_with_oauth2(endpoints, fake), environ={}))


def test_no_credentials_at_all(endpoints, tmp_path, monkeypatch):
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "empty"))
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    with pytest.raises(AuthError, match="No Google credentials found"):
        load_credentials(AuthRequest(project_id=PROJECT, endpoints=endpoints, environ={}))


def test_id_token_for_an_iap_audience_is_minted_with_the_federated_identity(fake, endpoints, credentials, capfd):
    from kedro_vertex_ci.gcp.auth import fetch_id_token

    fake.inject("POST", "generateIdToken", status=503)
    token = fetch_id_token(credentials, SERVICE_ACCOUNT, "https://mlflow.example.com", endpoints,
                           mask=github_masker({"GITHUB_ACTIONS": "true"}))
    request = fake.calls("POST", "generateIdToken")[-1]
    assert request.path == f"/v1/projects/-/serviceAccounts/{SERVICE_ACCOUNT}:generateIdToken"
    assert request.bearer == credentials.token
    assert request.json == {"audience": "https://mlflow.example.com", "includeEmail": True}
    assert token.count(".") == 2
    assert capfd.readouterr().out.splitlines() == [f"::add-mask::{token}"]
