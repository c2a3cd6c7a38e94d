"""The request-header providers: choice from params, token caching until near expiry, MLflow's entry point.

The IAM provider runs against the loopback fake Google (real google-auth refresh + generateIdToken); the
entry-point test goes through MLflow's own ``resolve_request_headers``, the function its REST client calls.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from kedro_vertex_ci import mlflow_auth
from kedro_vertex_ci.mlflow_auth import (
    PARAMS_ENV,
    GoogleIAMHeaderProvider,
    GoogleOAuthHeaderProvider,
    TokenHeaderProvider,
    check_params,
    jwt_expiry,
    provider_env,
    provider_from_params,
)
from tests.fakes.google import desk_login_env as google_env
from tests.mlflow.conftest import CLIENT_ID, MLFLOW_SA


def _jwt(claims: dict) -> str:
    def part(value: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256'})}.{part(claims)}.c2ln"


class Counting(TokenHeaderProvider):
    """Mints ``token-N`` expiring ``lifetime`` seconds after the injected clock."""

    def __init__(self, **params):
        super().__init__(**params)
        self.now = 1_000_000.0
        self.minted = 0

    def fetch_token(self):
        self.minted += 1
        return f"token-{self.minted}", self.now + float(self.params.get("lifetime", 3600))


def test_token_is_cached_until_shortly_before_it_expires():
    provider = Counting(lifetime=3600)
    assert provider.token(now=provider.now) == "token-1"
    assert provider.token(now=provider.now + 3600 - mlflow_auth.REFRESH_MARGIN - 1) == "token-1"
    assert provider.token(now=provider.now + 3600 - mlflow_auth.REFRESH_MARGIN) == "token-2"
    assert provider.request_headers() in ({"Authorization": "Bearer token-2"}, {"Authorization": "Bearer token-3"})


def test_expiry_comes_from_the_jwt_when_the_source_gives_none():
    class FromJwt(TokenHeaderProvider):
        def fetch_token(self):
            return _jwt({"exp": 2_000_000}), None

    provider = FromJwt()
    first = provider.token(now=1_000_000)
    assert provider.token(now=2_000_000 - mlflow_auth.REFRESH_MARGIN - 1) == first
    assert jwt_expiry(first) == 2_000_000.0
    assert jwt_expiry("not-a-jwt") is None and jwt_expiry(_jwt({"aud": "x"})) is None


@pytest.mark.parametrize(
    ("params", "kind"),
    [
        ({"client_id": CLIENT_ID, "service_account": MLFLOW_SA}, GoogleIAMHeaderProvider),
        ({"client_id": CLIENT_ID}, GoogleOAuthHeaderProvider),
        ({"cls": "tests.mlflow.test_mlflow_auth.Counting", "lifetime": 60}, Counting),
    ],
)
def test_params_choose_the_provider(params, kind):
    provider = provider_from_params(params)
    assert type(provider) is kind
    assert provider.params == {k: v for k, v in params.items() if k != "cls"}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"service_account": MLFLOW_SA}, "give client_id"),
        ({"client_id": ""}, "client_id must be a non-empty string"),
        ({"client_id": CLIENT_ID, "audience": "x"}, "unknown key(s) ['audience']"),
        ({"cls": "NoDots"}, "class path"),
    ],
)
def test_bad_params_are_named(params, message):
    assert message in (check_params(params) or "")
    with pytest.raises(ValueError, match="request_header_provider_params"):
        provider_from_params(params)


def test_cls_must_be_importable_and_a_token_provider():
    with pytest.raises(ValueError, match="cannot import 'no_such_pkg.Provider'"):
        provider_from_params({"cls": "no_such_pkg.Provider"})
    with pytest.raises(ValueError, match="not a subclass"):
        provider_from_params({"cls": "json.JSONDecoder"})


def test_provider_env_is_compact_sorted_json_and_empty_without_params():
    assert provider_env({}) == {}
    assert provider_env({"service_account": MLFLOW_SA, "client_id": CLIENT_ID}) == {
        PARAMS_ENV: json.dumps({"client_id": CLIENT_ID, "service_account": MLFLOW_SA}, separators=(",", ":"))
    }


def test_iam_provider_mints_an_id_token_for_the_client_id(fake_google, tmp_path, monkeypatch):
    for name, value in google_env(fake_google, tmp_path).items():
        monkeypatch.setenv(name, value)
    provider = GoogleIAMHeaderProvider(client_id=CLIENT_ID, service_account=MLFLOW_SA)
    headers = provider.request_headers()
    assert headers == provider.request_headers()  # cached: one generateIdToken for both
    (call,) = fake_google.calls("POST", r":generateIdToken$")
    assert MLFLOW_SA in call.path and call.json == {"audience": CLIENT_ID, "includeEmail": True}
    token = headers["Authorization"].removeprefix("Bearer ")
    payload = token.split(".")[1]
    assert json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))) == {
        "aud": CLIENT_ID, "email": MLFLOW_SA
    }


def test_mlflow_loads_the_entry_point_and_sends_the_header_only_when_configured(tmp_path):
    """A fresh interpreter: MLflow's registry loads our entry point; the params env switches it on."""
    (tmp_path / "static_provider.py").write_text(textwrap.dedent("""
        from kedro_vertex_ci.mlflow_auth import TokenHeaderProvider

        class Static(TokenHeaderProvider):
            def fetch_token(self):
                return "static-" + self.params["suffix"], None
    """))
    script = textwrap.dedent(f"""
        import json, os
        from mlflow.tracking.request_header.registry import resolve_request_headers
        off = resolve_request_headers()
        os.environ[{PARAMS_ENV!r}] = json.dumps({{"cls": "static_provider.Static", "suffix": "abc"}})
        on = resolve_request_headers()
        print(json.dumps([off.get("Authorization"), on.get("Authorization")]))
    """)
    env = {k: v for k, v in os.environ.items() if k != PARAMS_ENV}
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), env.get("PYTHONPATH", "")])
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == [None, "Bearer static-abc"]


def test_importing_the_module_does_not_import_mlflow():
    code = "import sys, kedro_vertex_ci.mlflow_auth, kedro_vertex_ci.mlflow_run; print('mlflow' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).parent)
    assert proc.stdout.strip() == "False", proc.stderr[-2000:]


class _FakeMetadata:
    """The GCE metadata server a Vertex step talks to: the ping and the identity (ID token) endpoint."""

    def __init__(self) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        from urllib.parse import parse_qs, urlsplit

        self.requests: list[str] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                fake.requests.append(self.path)
                parts = urlsplit(self.path)
                if self.headers.get("Metadata-Flavor") != "Google":
                    self.send_response(403)
                    self.end_headers()
                    return
                if parts.path.endswith("/service-accounts/default/identity"):
                    audience = parse_qs(parts.query)["audience"][0]
                    body = _jwt({"aud": audience, "email": "pipeline@demo-project.iam.gserviceaccount.com",
                                 "exp": 4_000_000_000}).encode()
                    kind = "application/text"
                elif parts.path.endswith("/service-accounts/default/"):
                    body = json.dumps({"email": "pipeline@demo-project.iam.gserviceaccount.com",
                                       "aliases": ["default"], "scopes": []}).encode()
                    kind = "application/json"
                else:
                    body, kind = b"ok", "application/text"
                self.send_response(200)
                self.send_header("Metadata-Flavor", "Google")
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        import threading

        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"


def test_oauth_provider_gets_the_steps_own_id_token_from_the_metadata_server(tmp_path):
    """``client_id`` alone, as on Vertex: google-auth asks the metadata server for an ID token."""
    metadata = _FakeMetadata()
    try:
        script = textwrap.dedent(f"""
            from kedro_vertex_ci.mlflow_auth import GoogleOAuthHeaderProvider
            provider = GoogleOAuthHeaderProvider(client_id={CLIENT_ID!r})
            first = provider.request_headers()
            assert provider.request_headers() == first
            print(first["Authorization"])
        """)
        env = {k: v for k, v in os.environ.items()
               if k not in ("GOOGLE_APPLICATION_CREDENTIALS", "NO_GCE_CHECK")}
        env.update(GCE_METADATA_HOST=metadata.host, GCE_METADATA_IP=metadata.host)
        proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    finally:
        metadata.server.shutdown()
        metadata.server.server_close()
    assert proc.returncode == 0, proc.stderr[-3000:]
    token = proc.stdout.strip().removeprefix("Bearer ")
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["aud"] == CLIENT_ID
    identity = [r for r in metadata.requests if "/identity" in r]
    assert len(identity) == 1  # cached: the second request_headers() minted nothing


def test_a_token_that_cannot_be_minted_is_logged_with_the_config_key_and_the_fix(
    fake_google, tmp_path, monkeypatch, caplog
):
    from kedro_vertex_ci.errors import AuthError
    from kedro_vertex_ci.mlflow_auth import VertexRequestHeaderProvider

    for name, value in google_env(fake_google, tmp_path).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv(PARAMS_ENV, json.dumps({"client_id": CLIENT_ID, "service_account": MLFLOW_SA}))
    fake_google.inject("POST", r":generateIdToken$", status=403)
    provider = VertexRequestHeaderProvider()
    assert provider.in_context()
    with pytest.raises(AuthError, match="roles/iam.serviceAccountOpenIdTokenCreator"):
        provider.request_headers()
    (record,) = [r for r in caplog.records if r.name == "kedro_vertex_ci.mlflow_auth"]
    assert "run_config.mlflow.request_header_provider_params" in record.getMessage()
    monkeypatch.delenv(PARAMS_ENV)
    assert not provider.in_context()
