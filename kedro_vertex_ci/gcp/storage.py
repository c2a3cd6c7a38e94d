"""Uploads to Cloud Storage (the Cloud Build source tarball) through google-cloud-storage.

The staging bucket defaults to ``<project>_cloudbuild`` like ``gcloud builds submit``; that default bucket is
created when missing, a bucket the user named is never created behind their back (a 404 becomes a hint).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from .endpoints import Endpoints
from .hints import Where, explain
from .retry import DEFAULT_POLICY, RetryPolicy, call_with_retry, http_status


def default_staging_bucket(project: str) -> str:
    return f"{project}_cloudbuild"


def staging_bucket(config: Any) -> str:
    """Where the build source goes: ``build.staging_bucket``, else the pipeline root's bucket, else the default.

    The one rule for the CLI's ``build`` and the Action, so both upload to the same place.
    """
    configured = getattr(getattr(config, "build", None), "staging_bucket", None)
    root = str(getattr(config.run_config, "root", None) or "")
    from_root = root[5:].split("/", 1)[0] if root.startswith("gs://") else None
    return str(configured or from_root or default_staging_bucket(config.project_id))


class Storage:
    def __init__(self, project: str, credentials: Any, endpoints: Endpoints | None = None,
                 policy: RetryPolicy = DEFAULT_POLICY, sleep: Callable[[float], None] = time.sleep):
        self.project = project
        self._credentials, self._endpoints = credentials, endpoints or Endpoints()
        self._policy, self._sleep = policy, sleep
        self._client: Any = None

    def client(self) -> Any:
        if self._client is None:
            from google.cloud import storage  # type: ignore[attr-defined]

            self._client = storage.Client(project=self.project, credentials=self._credentials,
                                          client_options={"api_endpoint": self._endpoints.storage_url()})
        return self._client

    def upload(self, bucket: str, name: str, data: bytes, *, region: str | None = None,
               create_missing: bool = False, content_type: str = "application/gzip") -> str:
        """Upload ``data`` to ``gs://bucket/name`` (creating the bucket only if ``create_missing``)."""
        where = Where("storage", self.project, region, bucket=bucket, action=f"upload gs://{bucket}/{name}")

        def put() -> None:
            blob = self.client().bucket(bucket).blob(name)
            blob.upload_from_string(data, content_type=content_type, retry=None)

        try:
            call_with_retry(put, what="upload the source", policy=self._policy, sleep=self._sleep)
        except Exception as err:
            if http_status(err) == 404 and create_missing:
                self._create_bucket(bucket, region, where)
                call_with_retry(put, what="upload the source", policy=self._policy, sleep=self._sleep)
            elif http_status(err) is not None:
                raise explain(err, where) from err
            else:
                raise
        return f"gs://{bucket}/{name}"

    def _create_bucket(self, bucket: str, region: str | None, where: Where) -> None:
        try:
            call_with_retry(lambda: self.client().create_bucket(bucket, location=region or "US"),
                            what="create the staging bucket", policy=self._policy, sleep=self._sleep)
        except Exception as err:
            if http_status(err) == 409:  # created meanwhile (a parallel build)
                return
            if http_status(err) is not None:
                raise explain(err, where) from err
            raise
