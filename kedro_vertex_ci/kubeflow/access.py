"""``kfp.auth`` turned into a function returning fresh :class:`~.auth.KfpAccess` (the CLI and the Action share it).

The environment and the secret mask are parameters: the CLI passes ``os.environ`` and ``::add-mask::`` on
stdout, the Action its own runner's mask.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from . import auth

Mask = Callable[[str], None]


def access_factory(config: Any, environ: Mapping[str, str], mask: Mask, provider: str | None = None,
                   impersonate: str | None = None) -> Callable[[], auth.KfpAccess]:
    """Called again by :class:`~.client.KfpTarget` after a session expired (a Dex cookie, an IAP token)."""
    settings = config.kfp.auth
    environ = dict(environ)
    if settings.mode == "token":
        token = auth.token_from(settings.token_file, settings.token_env, environ)
        mask(token)
        return lambda: auth.KfpAccess(existing_token=token, describe="bearer token")
    if settings.mode == "dex":
        user, password = auth.dex_credentials(settings.username_env, settings.password_env, environ)
        mask(password)
        return lambda: auth.KfpAccess(cookies=auth.dex_login(config.kfp.host, user, password, mask),
                                      describe=f"Dex login of {user}")
    if settings.mode == "iap":
        return _iap_factory(config, environ, mask, provider, impersonate)
    return lambda: auth.KfpAccess()


def _iap_factory(config: Any, environ: Mapping[str, str], mask: Mask, provider: str | None,
                 impersonate: str | None) -> Callable[[], auth.KfpAccess]:
    from ..errors import ConfigError, Problem
    from ..gcp.auth import AuthRequest, fetch_id_token, load_credentials
    from ..gcp.endpoints import resolve_endpoints

    settings = config.kfp.auth
    client_id = auth.iap_client_id(settings.client_id, environ)
    account = settings.service_account or impersonate
    if not account:
        raise ConfigError([Problem("vertexai.yml", "kfp.auth.service_account",
                                   "auth mode iap mints the ID token IAP checks for a service account: set "
                                   "kfp.auth.service_account (or --impersonate-service-account) to one that "
                                   "IAP admits, and grant your identity roles/iam.serviceAccountOpenIdTokenCreator "
                                   "on it")])
    # google-auth's project and metadata probes must not wander off to GCE or Resource Manager.
    os.environ.setdefault("GOOGLE_CLOUD_PROJECT", config.project_id)
    os.environ.setdefault("NO_GCE_CHECK", "True")
    endpoints = resolve_endpoints(getattr(config, "endpoints", None), environ)
    request = AuthRequest(project_id=config.project_id, endpoints=endpoints, workload_identity_provider=provider,
                          environ=dict(environ))
    source = load_credentials(request, mask=mask)
    token = auth.RefreshingIdToken(lambda: fetch_id_token(source, account, client_id, endpoints, mask=mask))
    return lambda: auth.KfpAccess(credentials=token, describe=f"IAP ID token of {account}")
