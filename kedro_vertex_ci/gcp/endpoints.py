"""Where each Google API lives: default public endpoints, overridable per service.

Users behind Private Service Connect / VPC Service Controls point the tool at their own endpoints, and tests
point the real client libraries at loopback fakes. Precedence: ``KEDRO_VERTEX_CI_<SERVICE>_ENDPOINT`` in the
environment, then ``endpoints.<service>`` in vertexai.yml, then Google's public endpoint.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

SERVICES = ("vertex", "cloudbuild", "storage", "sts", "iamcredentials", "oauth2", "artifactregistry")
ENV_PREFIX = "KEDRO_VERTEX_CI_"


@dataclass(frozen=True)
class Endpoints:
    """Base URLs (scheme + host[:port], no path) per service; ``None`` means Google's public endpoint."""

    vertex: str | None = None
    cloudbuild: str | None = None
    storage: str | None = None
    sts: str | None = None
    iamcredentials: str | None = None
    oauth2: str | None = None  # where user (gcloud) credentials refresh; environment only
    artifactregistry: str | None = None

    def artifactregistry_url(self) -> str:
        return self.artifactregistry or "https://artifactregistry.googleapis.com"

    def vertex_url(self, region: str) -> str:
        return self.vertex or f"https://{region}-aiplatform.googleapis.com"

    def cloudbuild_url(self) -> str:
        return self.cloudbuild or "https://cloudbuild.googleapis.com"

    def storage_url(self) -> str:
        return self.storage or "https://storage.googleapis.com"

    def sts_token_url(self) -> str:
        return f"{self.sts or 'https://sts.googleapis.com'}/v1/token"

    def oauth2_token_url(self) -> str | None:
        return f"{self.oauth2}/token" if self.oauth2 else None

    def impersonation_url(self, service_account: str) -> str:
        return self.iamcredentials_method(service_account, "generateAccessToken")

    def iamcredentials_method(self, service_account: str, method: str) -> str:
        base = self.iamcredentials or "https://iamcredentials.googleapis.com"
        return f"{base}/v1/projects/-/serviceAccounts/{service_account}:{method}"


def _clean(url: Any) -> str | None:
    if url is None or str(url).strip() == "":
        return None
    return str(url).strip().rstrip("/")


def resolve_endpoints(configured: Mapping[str, Any] | Any | None, environ: Mapping[str, str]) -> Endpoints:
    """Merge the config's ``endpoints`` (a mapping or an object with attributes) with environment overrides."""
    values: dict[str, str | None] = {}
    for service in SERVICES:
        from_config = (configured.get(service) if isinstance(configured, Mapping)
                       else getattr(configured, service, None))
        from_env = environ.get(f"{ENV_PREFIX}{service.upper()}_ENDPOINT")
        values[service] = _clean(from_env) or _clean(from_config)
    return Endpoints(**values)
