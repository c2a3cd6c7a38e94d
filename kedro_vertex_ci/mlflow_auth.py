"""MLflow behind Google identity (IAP, Cloud Run): request-header providers that send a Google ID token.

MLflow asks every provider registered under its ``mlflow.request_header_provider`` entry point for headers
before each request to the tracking server. We register :class:`VertexRequestHeaderProvider`; it is active
only when ``KEDRO_VERTEX_CI_MLFLOW_AUTH`` holds the JSON of ``run_config.mlflow.request_header_provider_params``
from ``vertexai.yml`` — the compiler puts it into every step's environment — so a project needs no hook and
no settings.py change. The params choose the token source:

- ``client_id`` + ``service_account``: IAM Credentials ``generateIdToken`` for the service account with the
  OAuth client id as audience (the step's own identity needs roles/iam.serviceAccountOpenIdTokenCreator);
- ``client_id`` alone: an ID token of the step's own identity (metadata server on Vertex, or a
  service-account key file in ``GOOGLE_APPLICATION_CREDENTIALS``);
- ``cls: package.module.Class`` (+ its keyword arguments): your subclass of :class:`TokenHeaderProvider`.

Tokens are cached until :data:`REFRESH_MARGIN` seconds before they expire (the JWT's ``exp``) and are never
logged. Nothing here imports mlflow: MLflow only needs ``in_context()`` and ``request_headers()``.
"""

from __future__ import annotations

import base64
import importlib
import json
import logging
import os
import threading
import time
from collections.abc import Mapping
from typing import Any

PARAMS_ENV = "KEDRO_VERTEX_CI_MLFLOW_AUTH"
PARAMS_KEY = "run_config.mlflow.request_header_provider_params"
REFRESH_MARGIN = 300.0  # seconds before expiry a cached token is replaced
DEFAULT_LIFETIME = 3600.0  # Google ID tokens live one hour; used when a token carries no ``exp``
_log = logging.getLogger(__name__)


def provider_env(params: Mapping[str, Any]) -> dict[str, str]:
    """The step environment carrying ``params`` to the provider (pure; empty without params)."""
    if not params:
        return {}
    return {PARAMS_ENV: json.dumps(dict(params), sort_keys=True, separators=(",", ":"))}


def check_params(params: Mapping[str, Any]) -> str | None:
    """What is wrong with ``request_header_provider_params`` (None when usable); pure, no import of ``cls``."""
    if not params:
        return None
    cls = params.get("cls")
    if cls is not None:
        return None if isinstance(cls, str) and "." in cls else "cls must be a class path like pkg.module.Class"
    for key in ("client_id", "service_account"):
        if key in params and not (isinstance(params[key], str) and params[key].strip()):
            return f"{key} must be a non-empty string"
    if "client_id" not in params:
        return "give client_id (the OAuth client id of the MLflow server), with service_account for IAM"
    unknown = sorted(set(params) - {"client_id", "service_account"})
    if unknown:
        return f"unknown key(s) {unknown}: client_id, service_account or cls are expected"
    return None


def jwt_expiry(token: str) -> float | None:
    """The ``exp`` claim of a JWT (unverified: only to know when to fetch a new one)."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return float(claims["exp"])
    except (IndexError, ValueError, KeyError, TypeError):
        return None


class TokenHeaderProvider:
    """Base class: ``Authorization: Bearer <token>`` with the token cached until shortly before it expires.

    Subclass it and implement :meth:`fetch_token`; name the subclass in ``request_header_provider_params``
    as ``cls``; the other params arrive as keyword arguments (``self.params``).
    """

    def __init__(self, **params: Any):
        self.params = params
        self._lock = threading.Lock()
        self._token: str | None = None
        self._refresh_at = 0.0

    def fetch_token(self) -> tuple[str, float | None]:
        """A fresh token and its expiry (epoch seconds; None: read the JWT's ``exp``, else one hour)."""
        raise NotImplementedError

    def in_context(self) -> bool:
        return True

    def token(self, now: float | None = None) -> str:
        now = time.time() if now is None else now
        with self._lock:
            if self._token is None or now >= self._refresh_at:
                token, expires = self.fetch_token()
                expires = expires or jwt_expiry(token) or now + DEFAULT_LIFETIME
                self._token, self._refresh_at = token, expires - REFRESH_MARGIN
            return self._token

    def request_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token()}"}


class GoogleIAMHeaderProvider(TokenHeaderProvider):
    """An ID token for ``service_account`` with audience ``client_id``, from IAM Credentials generateIdToken."""

    def fetch_token(self) -> tuple[str, float | None]:
        from .gcp.auth import AuthRequest, fetch_id_token, load_credentials
        from .gcp.endpoints import resolve_endpoints

        endpoints = resolve_endpoints(None, os.environ)
        credentials = load_credentials(AuthRequest(project_id="", endpoints=endpoints, environ=dict(os.environ)))
        token = fetch_id_token(credentials, self.params["service_account"], self.params["client_id"], endpoints)
        return token, None


class GoogleOAuthHeaderProvider(TokenHeaderProvider):
    """An ID token of the step's own identity with audience ``client_id`` (google-auth's fetch_id_token)."""

    def fetch_token(self) -> tuple[str, float | None]:
        from google.auth.transport.requests import Request
        from google.oauth2 import id_token

        return str(id_token.fetch_id_token(Request(), self.params["client_id"])), None


def provider_from_params(params: Mapping[str, Any]) -> TokenHeaderProvider:
    """The provider ``request_header_provider_params`` describe. Raises ``ValueError`` naming the key."""
    problem = check_params(params)
    if problem:
        raise ValueError(f"{PARAMS_KEY}: {problem}")
    kwargs = dict(params)
    path = kwargs.pop("cls", None)
    if path is None:
        kind: type[TokenHeaderProvider] = (
            GoogleIAMHeaderProvider if "service_account" in kwargs else GoogleOAuthHeaderProvider
        )
        return kind(**kwargs)
    module_name, _, class_name = str(path).rpartition(".")
    try:
        found = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"{PARAMS_KEY}.cls: cannot import {path!r}: {err}") from err
    if not (isinstance(found, type) and issubclass(found, TokenHeaderProvider)):
        raise ValueError(f"{PARAMS_KEY}.cls: {path!r} is not a subclass of {__name__}.TokenHeaderProvider")
    return found(**kwargs)


class VertexRequestHeaderProvider:
    """The provider MLflow loads from our entry point; active when the step environment carries params."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._source: str | None = None
        self._delegate: TokenHeaderProvider | None = None

    def in_context(self) -> bool:
        return bool(os.environ.get(PARAMS_ENV))

    def request_headers(self) -> dict[str, str]:
        try:
            return self._provider().request_headers()
        except Exception as err:
            # MLflow turns this into a warning and sends the request without the header: say why here.
            _log.error("MLflow authorization header not added (%s): %s", PARAMS_KEY, err)
            raise

    def _provider(self) -> TokenHeaderProvider:
        source = os.environ.get(PARAMS_ENV, "")
        with self._lock:
            if self._delegate is None or source != self._source:
                try:
                    params = json.loads(source)
                except ValueError as err:
                    raise ValueError(f"{PARAMS_ENV} is not JSON: {err}") from err
                if not isinstance(params, dict):
                    raise ValueError(f"{PARAMS_ENV} must hold a JSON object")
                self._delegate, self._source = provider_from_params(params), source
            return self._delegate
