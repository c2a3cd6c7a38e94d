"""Credentials for every Google client: Workload Identity Federation from GitHub Actions, a credentials file, or ADC.

Three sources, tried in this order:

1. ``workload_identity_provider`` given: exchange the GitHub Actions OIDC token (``ACTIONS_ID_TOKEN_REQUEST_URL``
   / ``_TOKEN``) at STS for a federated token — directly, or impersonating ``service_account`` — with no JSON
   key and no separate auth action. google-auth does the exchange from an ``external_account`` description.
2. A credentials file (``GOOGLE_APPLICATION_CREDENTIALS``, e.g. the ``gha-creds-*.json`` written by
   google-github-actions/auth, a service-account key, or ``gcloud auth application-default login`` output).
3. Application Default Credentials.

Files are loaded without scopes and scoped afterwards: with scopes, google-auth looks the project up at a
hard-coded Resource Manager URL. Failures most users hit (no ``id-token: write``, a pool instead of a provider, a
project ID instead of its number, ``invalid_target``, a missing ``roles/iam.workloadIdentityUser`` binding) become
an :class:`~kedro_vertex_ci.errors.AuthError` whose message names the fix. Minted tokens are handed to ``mask``
(``::add-mask::`` in GitHub Actions) before anything else can print them.
"""

from __future__ import annotations

import json
import re
import sys
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from ..errors import AuthError
from .endpoints import Endpoints

SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
JWT_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:jwt"
_PROVIDER = re.compile(
    r"projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)/workloadIdentityPools/(?P<pool>[^/]+)"
    r"(?:/providers/(?P<provider>[^/]+))?"
)
_FORK_HINT = (
    "The GitHub OIDC variables ACTIONS_ID_TOKEN_REQUEST_URL / ACTIONS_ID_TOKEN_REQUEST_TOKEN are not set. "
    "Give the job `permissions: id-token: write` (job or workflow level). On pull requests from forks and on "
    "Dependabot runs GitHub never provides them: run the cloud steps only for branches of this repository "
    "(e.g. `if: github.event.pull_request.head.repo.full_name == github.repository`)."
)


@dataclass(frozen=True)
class AuthRequest:
    """What to authenticate with; ``environ`` is the process environment (passed in, not read here)."""

    project_id: str
    endpoints: Endpoints = field(default_factory=Endpoints)
    workload_identity_provider: str | None = None
    service_account: str | None = None  # impersonated after the federation exchange
    credentials_file: str | None = None
    environ: Mapping[str, str] = field(default_factory=dict)


def parse_provider(text: str) -> str:
    """Validate a WIF provider name and return it as ``projects/NUMBER/locations/global/.../providers/ID``."""
    value = text.strip()
    for prefix in ("https://iam.googleapis.com/", "//iam.googleapis.com/"):
        if value.startswith(prefix):
            value = value[len(prefix):]
    match = _PROVIDER.fullmatch(value)
    example = "projects/123456789012/locations/global/workloadIdentityPools/POOL/providers/PROVIDER"
    if not match:
        raise AuthError(f"workload_identity_provider {text!r} is not a provider resource name; expected {example}.")
    if not match["provider"]:
        raise AuthError(
            f"workload_identity_provider {text!r} names a pool, not a provider: append /providers/PROVIDER. "
            f"List them with `gcloud iam workload-identity-pools providers list "
            f"--workload-identity-pool={match['pool']} --location=global --project={match['project']}`."
        )
    if not match["project"].isdigit():
        raise AuthError(
            f"workload_identity_provider {text!r} uses the project ID {match['project']!r}; Workload Identity "
            f"needs the project NUMBER: `gcloud projects describe {match['project']} "
            f"--format='value(projectNumber)'`."
        )
    if match["location"] != "global":
        raise AuthError(f"workload_identity_provider {text!r}: workload identity pools live in locations/global.")
    return value


def validate_service_account(email: str) -> str:
    email = email.strip()
    if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[a-z.]+", email):
        raise AuthError(f"service account {email!r} is not an email like NAME@PROJECT.iam.gserviceaccount.com.")
    return email


def github_oidc_url(environ: Mapping[str, str], audience: str) -> tuple[str, str]:
    """The OIDC request URL (with the audience) and the bearer token GitHub gives the job, or a clear error."""
    url = environ.get("ACTIONS_ID_TOKEN_REQUEST_URL", "")
    token = environ.get("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "")
    if not url or not token:
        raise AuthError(_FORK_HINT)
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}audience={urllib.parse.quote(audience, safe='')}", token


def external_account_info(
    provider: str, oidc_url: str, oidc_token: str, endpoints: Endpoints, service_account: str | None = None
) -> dict[str, Any]:
    """The ``external_account`` description google-auth turns into federated credentials (pure)."""
    info: dict[str, Any] = {
        "type": "external_account",
        "audience": f"//iam.googleapis.com/{provider}",
        "subject_token_type": JWT_TOKEN_TYPE,
        "token_url": endpoints.sts_token_url(),
        "credential_source": {
            "url": oidc_url,
            "headers": {"Authorization": f"Bearer {oidc_token}"},
            "format": {"type": "json", "subject_token_field_name": "value"},
        },
    }
    if service_account:
        info["service_account_impersonation_url"] = endpoints.impersonation_url(service_account)
        info["service_account_impersonation"] = {"token_lifetime_seconds": 3600}
    return info


def retarget_external_account(info: dict[str, Any], endpoints: Endpoints) -> dict[str, Any]:
    """Point a loaded ``external_account`` file at overridden STS / IAM credentials endpoints."""
    if info.get("type") != "external_account":
        return info
    info = dict(info)
    if endpoints.sts:
        info["token_url"] = endpoints.sts_token_url()
    url = info.get("service_account_impersonation_url")
    if url and endpoints.iamcredentials:
        email = url.rsplit("/serviceAccounts/", 1)[-1].split(":", 1)[0]
        info["service_account_impersonation_url"] = endpoints.impersonation_url(email)
    return info


def github_masker(environ: Mapping[str, str], stream: IO[str] | None = None) -> Callable[[str], None]:
    """A ``mask`` callback: in GitHub Actions, register each secret with ``::add-mask::`` before it can leak."""
    if environ.get("GITHUB_ACTIONS") != "true":
        return lambda _secret: None

    def mask(secret: str) -> None:
        if secret:
            out = stream or sys.stdout
            out.write(f"::add-mask::{secret}\n")
            out.flush()

    return mask


def load_credentials(request: AuthRequest, mask: Callable[[str], None] = lambda _s: None,
                     http: Any = None) -> Any:
    """Build, refresh and return scoped credentials; raise AuthError naming the fix when that fails."""
    if request.workload_identity_provider:
        credentials, how = _from_github_oidc(request, mask), "Workload Identity Federation"
    else:
        path = request.credentials_file or request.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
        if path:
            credentials, how = _from_file(Path(path), request.endpoints), f"credentials file {path}"
        else:
            credentials, how = _from_adc(request.endpoints), "Application Default Credentials"
    _refresh(credentials, request, how, http)
    _mask_every_token(credentials, mask)
    return credentials


def _from_github_oidc(request: AuthRequest, mask: Callable[[str], None]) -> Any:
    from google.auth import identity_pool

    provider = parse_provider(request.workload_identity_provider or "")
    service_account = validate_service_account(request.service_account) if request.service_account else None
    url, token = github_oidc_url(request.environ, f"https://iam.googleapis.com/{provider}")
    mask(token)
    info = external_account_info(provider, url, token, request.endpoints, service_account)
    return identity_pool.Credentials.from_info(info).with_scopes(list(SCOPES))


def _from_file(path: Path, endpoints: Endpoints) -> Any:
    import google.auth
    from google.auth import exceptions

    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise AuthError(f"credentials file {path} does not exist (GOOGLE_APPLICATION_CREDENTIALS).") from err
    except (OSError, ValueError) as err:
        raise AuthError(f"credentials file {path} is not readable JSON: {err}") from err
    try:
        credentials, _ = google.auth.load_credentials_from_dict(retarget_external_account(info, endpoints))
    except exceptions.GoogleAuthError as err:
        raise AuthError(f"credentials file {path} is not a credentials file google-auth accepts: {err}") from err
    token_url = endpoints.oauth2_token_url()
    if token_url and info.get("type") == "authorized_user":
        credentials = credentials.with_token_uri(token_url)
    return credentials.with_scopes(list(SCOPES)) if hasattr(credentials, "with_scopes") else credentials


def _from_adc(endpoints: Endpoints) -> Any:
    import google.auth
    from google.auth import exceptions

    try:
        credentials, _ = google.auth.default(scopes=list(SCOPES), quota_project_id=None)
    except exceptions.DefaultCredentialsError as err:
        raise AuthError(
            "No Google credentials found. At your desk run `gcloud auth application-default login`; in GitHub "
            "Actions set `workload_identity_provider` (and optionally `service_account`) with "
            "`permissions: id-token: write`, or set GOOGLE_APPLICATION_CREDENTIALS to a credentials file."
        ) from err
    token_url = endpoints.oauth2_token_url()
    if token_url and hasattr(credentials, "with_token_uri"):
        credentials = credentials.with_token_uri(token_url)
    return credentials


def _refresh(credentials: Any, request: AuthRequest, how: str, http: Any) -> None:
    from google.auth import exceptions
    from google.auth.transport.requests import Request

    from .retry import call_with_retry

    try:
        call_with_retry(lambda: credentials.refresh(http or Request()), what="token exchange")
    except (exceptions.RefreshError, exceptions.OAuthError) as err:
        raise AuthError(explain_refresh_error(err, request, how)) from err
    except exceptions.TransportError as err:
        raise AuthError(f"Could not reach the Google token endpoint for {how}: {_first_line(err)}") from err


def explain_refresh_error(err: Exception, request: AuthRequest, how: str) -> str:
    """One paragraph naming the fix for a failed token exchange (no token ever appears in it)."""
    text = " ".join(str(a) for a in err.args)
    sa = request.service_account or "the service account"
    provider = request.workload_identity_provider or "the provider"
    if "invalid_grant" in text and how == "Application Default Credentials":
        return ("Your gcloud login has expired or was revoked: run `gcloud auth application-default login` "
                "again (or set GOOGLE_APPLICATION_CREDENTIALS to a credentials file).")
    if "invalid_target" in text:
        return (f"STS rejected the audience for {provider} (invalid_target): the pool or provider does not exist, "
                f"is disabled, or the name uses a project ID instead of the project number. Check with `gcloud "
                f"iam workload-identity-pools providers describe` and copy its full `name`.")
    if "invalid_grant" in text or "unauthorized_client" in text:
        return (f"STS refused the GitHub OIDC token for {provider}: the provider's attribute condition or "
                f"attribute mapping does not accept this repository/branch (e.g. "
                f"`assertion.repository == 'OWNER/REPO'`), or the issuer is not "
                f"https://token.actions.githubusercontent.com.")
    if "getAccessToken" in text or "Unable to acquire impersonated credentials" in text or "PERMISSION_DENIED" in text:
        return (f"Impersonating {sa} was denied (iam.serviceAccounts.getAccessToken). Grant the federated "
                f"identity roles/iam.workloadIdentityUser on it: `gcloud iam service-accounts add-iam-policy-"
                f"binding {sa} --role=roles/iam.workloadIdentityUser --member=principalSet://iam.googleapis.com/"
                f"projects/NUMBER/locations/global/workloadIdentityPools/POOL/attribute.repository/OWNER/REPO`; "
                f"also enable the IAM Service Account Credentials API. New bindings take a few minutes to apply.")
    if "subject token" in text.lower():
        return (f"Could not fetch the GitHub OIDC token for {how}: {_redact(_first_line(err))}. "
                f"{_FORK_HINT}")
    return f"Could not get a Google access token with {how}: {_redact(_first_line(err))}"


def _first_line(err: Exception) -> str:
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__


def _redact(text: str) -> str:
    """Drop anything that looks like a bearer token or JWT from an error text."""
    text = re.sub(r"ya29\.[\w.\-]+", "ya29.***", text)
    return re.sub(r"eyJ[\w\-]+\.[\w\-]+\.[\w\-]*", "***jwt***", text)


def _mask_every_token(credentials: Any, mask: Callable[[str], None]) -> None:
    """Mask the current token and every token a later automatic refresh mints."""
    mask(getattr(credentials, "token", None) or "")
    original = credentials.refresh

    def refresh_and_mask(http: Any) -> None:
        original(http)
        mask(getattr(credentials, "token", None) or "")

    try:
        credentials.refresh = refresh_and_mask
    except AttributeError:
        pass


def fetch_id_token(credentials: Any, service_account: str, audience: str, endpoints: Endpoints,
                   mask: Callable[[str], None] = lambda _s: None) -> str:
    """An OIDC ID token for ``audience`` (e.g. an IAP-protected MLflow) minted for ``service_account``.

    Federated credentials cannot sign ID tokens themselves; IAM Credentials ``generateIdToken`` can, given
    roles/iam.serviceAccountOpenIdTokenCreator on the service account.
    """
    from google.api_core import exceptions
    from google.auth.transport.requests import AuthorizedSession

    from .hints import Where, explain
    from .retry import call_with_retry, http_status

    url = endpoints.iamcredentials_method(validate_service_account(service_account), "generateIdToken")
    session = AuthorizedSession(credentials)

    def post() -> str:
        response = session.post(url, json={"audience": audience, "includeEmail": True}, timeout=30)
        if response.status_code >= 400:
            raise exceptions.from_http_response(response)
        return str(response.json()["token"])

    try:
        token = call_with_retry(post, what="mint an ID token")
    except Exception as err:
        if http_status(err) == 403:
            raise AuthError(f"Minting an ID token for {service_account} was denied: grant the identity in use "
                            f"roles/iam.serviceAccountOpenIdTokenCreator on it.") from err
        if http_status(err) is not None:
            raise explain(err, Where("iamcredentials", "-", action="mint an ID token")) from err
        raise
    mask(token)
    return token
