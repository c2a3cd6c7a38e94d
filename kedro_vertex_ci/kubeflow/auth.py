"""Getting past what guards a Kubeflow Pipelines API: nothing, a bearer token, Google's IAP, or Dex.

Each mode ends as the three things ``kfp.Client`` accepts: a fixed token, a cookie, or a credentials object
whose hook sets a fresh token before every request. Secrets are handed to ``mask`` the moment they exist and
never appear in a message.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import AuthError, ConfigError, Problem

IAP_CLIENT_ID_ENV = "IAP_CLIENT_ID"
SESSION_COOKIES = ("authservice_session", "oauth2_proxy_kubeflow")  # oidc-authservice, oauth2-proxy (KF >= 1.7)
_REFRESH_MARGIN_S = 300
_TIMEOUT_S = 30


@dataclass(frozen=True)
class KfpAccess:
    """What ``kfp.Client`` is given: at most one of a token, a cookie header, or refreshing credentials."""

    existing_token: str | None = None
    cookies: str | None = None
    credentials: Any = None
    describe: str = "no authentication"


def token_from(file: str | None, env_name: str | None, environ: Mapping[str, str]) -> str:
    """The bearer token of auth mode ``token``: the file (e.g. the in-cluster projected token) or the variable."""
    if file:
        try:
            token = Path(file).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as err:
            raise ConfigError([Problem("vertexai.yml", "kfp.auth.token_file", f"cannot read {file}: {err}")]) from err
        where = f"token_file {file}"
    else:
        token = (environ.get(env_name or "") or "").strip()
        where = f"${env_name}"
    if not token:
        raise ConfigError([Problem("vertexai.yml", "kfp.auth", f"{where} is empty: no bearer token to send")])
    return token


class RefreshingIdToken:
    """A ``kfp`` TokenCredentials: an IAP ID token minted again shortly before it expires."""

    def __init__(self, mint: Callable[[], str]):
        self._mint = mint
        self._token: str | None = None
        self._expires_at = 0.0

    def token(self) -> str:
        if self._token is None or time.time() > self._expires_at - _REFRESH_MARGIN_S:
            self._token = self._mint()
            self._expires_at = _expiry(self._token)
        return self._token

    def refresh_api_key_hook(self, config: Any) -> None:
        config.api_key["authorization"] = self.token()


def _expiry(jwt: str) -> float:
    """The ``exp`` claim of a JWT (not verified: IAP does that); an hour from now if it has none."""
    try:
        payload = jwt.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return float(claims.get("exp") or time.time() + 3600)
    except (IndexError, ValueError, TypeError):
        return time.time() + 3600


def iap_client_id(configured: str | None, environ: Mapping[str, str]) -> str:
    client_id = configured or environ.get(IAP_CLIENT_ID_ENV)
    if not client_id:
        raise ConfigError([Problem("vertexai.yml", "kfp.auth.client_id",
                                   f"auth mode iap needs the OAuth client id of the IAP in front of Kubeflow "
                                   f"(set kfp.auth.client_id or ${IAP_CLIENT_ID_ENV})")])
    return client_id


def dex_credentials(username_env: str, password_env: str, environ: Mapping[str, str]) -> tuple[str, str]:
    user, password = environ.get(username_env), environ.get(password_env)
    if not user or not password:
        raise ConfigError([Problem("vertexai.yml", "kfp.auth",
                                   f"auth mode dex reads the login from ${username_env} and ${password_env}; "
                                   "set both (in CI: repository secrets)")])
    return user, password


def dex_login(host: str, user: str, password: str, mask: Callable[[str], None] = lambda _s: None,
              session: Any = None) -> str:
    """Log in through Dex's local (email) connector as a browser would; return the session cookie header.

    Follows the redirects from the Kubeflow host to Dex, picks the local connector when Dex offers a choice,
    posts the login form and keeps the session cookie oidc-authservice (or oauth2-proxy) sets on the way back.
    """
    import requests

    base = _origin(host)
    http = session or requests.Session()
    try:
        page = http.get(base + "/", timeout=_TIMEOUT_S, allow_redirects=True)
        if "/dex/" not in urllib.parse.urlsplit(page.url).path:
            raise AuthError(f"{base} did not redirect to a Dex login page (it answered {page.status_code} at "
                            f"{page.url}): is it a Kubeflow behind Dex? For IAP use kfp.auth.mode iap")
        if urllib.parse.urlsplit(page.url).path.rstrip("/").endswith("/dex/auth"):
            page = http.get(page.url.replace("/dex/auth?", "/dex/auth/local?", 1), timeout=_TIMEOUT_S)
        done = http.post(page.url, data={"login": user, "password": password}, timeout=_TIMEOUT_S,
                         allow_redirects=True)
    except requests.RequestException as err:
        raise AuthError(f"cannot reach {base} to log in through Dex: {type(err).__name__}") from err
    for name in SESSION_COOKIES:
        value = http.cookies.get(name)
        if value:
            mask(value)
            return f"{name}={value}"
    if "/dex/auth/local" in done.url:
        raise AuthError(f"Dex at {base} refused the login in the variables named by kfp.auth.username_env / "
                        "password_env (wrong user or password)")
    raise AuthError(f"logged in through Dex at {base}, but no session cookie ({' or '.join(SESSION_COOKIES)}) "
                    "came back: is oidc-authservice or oauth2-proxy in front of Kubeflow?")


def _origin(host: str) -> str:
    parts = urllib.parse.urlsplit(host)
    return f"{parts.scheme}://{parts.netloc}"
