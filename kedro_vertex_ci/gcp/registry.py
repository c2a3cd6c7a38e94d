"""Artifact Registry: is an image tag already pushed, and with which digest?

One build per commit: before starting Cloud Build, the Action asks Artifact Registry's ``tags.get``
(``GET /v1/projects/P/locations/L/repositories/R/packages/PKG/tags/TAG``, answering ``{name, version}`` where
``version`` ends in ``versions/sha256:…``) whether ``IMAGE:<commit>`` exists. Images elsewhere (gcr.io, other
registries) cannot be asked this way and are simply built.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass
from typing import Any

from .endpoints import Endpoints
from .hints import Where, explain
from .retry import DEFAULT_POLICY, RetryPolicy, call_with_retry

_PKG_DEV = re.compile(r"^(?P<location>[a-z0-9-]+)-docker\.pkg\.dev/(?P<project>[^/]+)/(?P<repo>[^/]+)/(?P<package>.+)$")


@dataclass(frozen=True)
class TagName:
    """An Artifact Registry tag resource, from ``LOCATION-docker.pkg.dev/PROJECT/REPO/IMAGE`` and a tag."""

    project: str
    location: str
    repository: str
    package: str  # the image path inside the repository; may contain "/"
    tag: str

    @property
    def resource(self) -> str:
        package = urllib.parse.quote(self.package, safe="")  # nested image names are %2F-encoded
        return (f"projects/{self.project}/locations/{self.location}/repositories/{self.repository}"
                f"/packages/{package}/tags/{urllib.parse.quote(self.tag, safe='')}")


def tag_name(repository: str, tag: str) -> TagName | None:
    """The tag resource for ``repository:tag``, or None when the image is not in Artifact Registry."""
    match = _PKG_DEV.match(repository)
    if not match:
        return None
    return TagName(match["project"], match["location"], match["repo"], match["package"], tag)


def digest_of_version(version: str) -> str | None:
    """``…/versions/sha256:abc`` → ``sha256:abc``."""
    last = urllib.parse.unquote(version.rsplit("/", 1)[-1])
    return last if last.startswith("sha256:") else None


def tagged_digest(repository: str, tag: str, credentials: Any, endpoints: Endpoints | None = None,
                  policy: RetryPolicy = DEFAULT_POLICY, timeout: float = 30.0) -> str | None:
    """The digest ``repository:tag`` points at in Artifact Registry; None when it is not there (or not AR)."""
    from google.api_core import exceptions
    from google.auth.transport.requests import AuthorizedSession

    name = tag_name(repository, tag)
    if name is None:
        return None
    url = f"{(endpoints or Endpoints()).artifactregistry_url()}/v1/{name.resource}"
    session = AuthorizedSession(credentials)

    def get() -> str | None:
        response = session.get(url, timeout=timeout)
        if response.status_code == 404:
            return None
        if response.status_code >= 400:
            raise exceptions.from_http_response(response)
        return digest_of_version(str(response.json().get("version") or ""))

    try:
        return call_with_retry(get, what="look up the image tag", policy=policy)
    except Exception as err:
        from .retry import http_status

        if http_status(err) is None:
            raise
        raise explain(err, Where("artifactregistry", name.project, name.location,
                                 action=f"look up {repository}:{tag}")) from err
