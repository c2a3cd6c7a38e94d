"""Cloud Build: build the project's Dockerfile remotely with layer cache, push ``IMAGE:SHA``, return the digest.

The build body is a pure function of the settings. Steps: pull the previous image for its cache (allowed to
fail on the first build), ``docker build --cache-from`` it with ``BUILDKIT_INLINE_CACHE=1`` so the pushed image
carries its cache metadata, then Cloud Build pushes every tag listed in ``images`` and reports their digests.
With a custom build service account the build must log to Cloud Logging only (or to a logs bucket), otherwise
the API answers INVALID_ARGUMENT — so ``logging`` is set whenever ``service_account`` is.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import CloudError
from .endpoints import Endpoints
from .hints import Where, explain
from .names import docker_tag
from .retry import DEFAULT_POLICY, RetryPolicy, call_with_retry, http_status

DOCKER_BUILDER = "gcr.io/cloud-builders/docker"
DONE = frozenset({"SUCCESS", "FAILURE", "INTERNAL_ERROR", "TIMEOUT", "CANCELLED", "EXPIRED"})


def image_repository(image: str) -> str:
    """``host/path/name[:tag][@digest]`` → ``host/path/name``."""
    image = image.split("@", 1)[0]
    last = image.rsplit("/", 1)[-1]
    return image[: -(len(last) - last.index(":"))] if ":" in last else image


@dataclass(frozen=True)
class BuildSettings:
    repository: str  # e.g. europe-docker.pkg.dev/PROJECT/REPO/NAME (no tag)
    commit: str  # the tag that identifies this source (git sha, or a content hash)
    bucket: str
    source_object: str
    branch: str | None = None
    dockerfile: str = "Dockerfile"
    machine_type: str | None = None  # e.g. E2_HIGHCPU_8
    timeout_seconds: int = 1200
    service_account: str | None = None  # email, or projects/P/serviceAccounts/EMAIL
    project: str = ""
    build_args: Mapping[str, str] = field(default_factory=dict)

    @property
    def image(self) -> str:
        return f"{self.repository}:{docker_tag(self.commit)}"

    def tags(self) -> list[str]:
        tags = [self.image]
        if self.branch:
            tags.append(f"{self.repository}:{docker_tag(self.branch)}")
        else:
            tags.append(f"{self.repository}:latest")
        return list(dict.fromkeys(tags))

    def cache_from(self) -> list[str]:
        refs = [f"{self.repository}:{docker_tag(self.branch)}"] if self.branch else []
        refs += [f"{self.repository}:main", f"{self.repository}:latest"]
        return list(dict.fromkeys(refs))


def build_body(settings: BuildSettings) -> dict[str, Any]:
    """The ``Build`` REST body (pure)."""
    steps: list[dict[str, Any]] = [
        {"id": f"cache-{index}", "name": DOCKER_BUILDER, "args": ["pull", ref], "allowFailure": True}
        for index, ref in enumerate(settings.cache_from())
    ]
    args = ["build", "--file", settings.dockerfile, "--build-arg", "BUILDKIT_INLINE_CACHE=1"]
    for ref in settings.cache_from():
        args += ["--cache-from", ref]
    for key, value in sorted(settings.build_args.items()):
        args += ["--build-arg", f"{key}={value}"]
    for tag in settings.tags():
        args += ["--tag", tag]
    steps.append({"id": "build", "name": DOCKER_BUILDER, "env": ["DOCKER_BUILDKIT=1"], "args": [*args, "."]})
    options: dict[str, Any] = {}
    if settings.machine_type:
        options["machineType"] = settings.machine_type
    body: dict[str, Any] = {
        "source": {"storageSource": {"bucket": settings.bucket, "object": settings.source_object}},
        "steps": steps,
        "images": settings.tags(),
        "timeout": f"{settings.timeout_seconds}s",
        "tags": ["kedro-vertex-ci"],
    }
    if settings.service_account:
        account = settings.service_account
        if not account.startswith("projects/"):
            account = f"projects/{settings.project or '-'}/serviceAccounts/{account}"
        body["serviceAccount"] = account
        options["logging"] = "CLOUD_LOGGING_ONLY"
    if options:
        body["options"] = options
    return body


@dataclass(frozen=True)
class Started:
    build_id: str
    log_url: str
    operation: Any  # google.api_core.operation.Operation


def pushed_digest(build: Mapping[str, Any], image: str) -> str | None:
    for built in (build.get("results") or {}).get("images") or []:
        if built.get("name") == image and built.get("digest"):
            return str(built["digest"])
    return None


class CloudBuild:
    def __init__(self, project: str, credentials: Any, endpoints: Endpoints | None = None,
                 region: str | None = None, policy: RetryPolicy = DEFAULT_POLICY,
                 sleep: Callable[[float], None] = time.sleep):
        self.project, self.region = project, region
        self._credentials, self._endpoints = credentials, endpoints or Endpoints()
        self._policy, self._sleep = policy, sleep
        self._client: Any = None

    def client(self) -> Any:
        if self._client is None:
            from google.api_core.client_options import ClientOptions
            from google.cloud.devtools.cloudbuild_v1 import CloudBuildClient

            self._client = CloudBuildClient(credentials=self._credentials, transport="rest",
                                            client_options=ClientOptions(api_endpoint=self._endpoints.cloudbuild_url()))
        return self._client

    def _where(self, action: str, service_account: str | None = None) -> Where:
        return Where("cloudbuild", self.project, self.region, action=action, service_account=service_account)

    def start(self, body: Mapping[str, Any]) -> Started:
        """Create the build (regional when ``region`` is set); return its id and log URL at once."""
        from google.cloud.devtools.cloudbuild_v1 import Build, CreateBuildRequest

        build = Build.from_json(json.dumps(body), ignore_unknown_fields=False)
        if self.region:  # regional builds are addressed by parent only (the global form takes project_id)
            request = CreateBuildRequest(parent=f"projects/{self.project}/locations/{self.region}", build=build)
        else:
            request = CreateBuildRequest(project_id=self.project, build=build)
        try:
            operation = call_with_retry(
                lambda: self.client().create_build(request=request, retry=None, timeout=60.0),
                what="create the build", policy=self._policy, sleep=self._sleep)
        except Exception as err:
            if http_status(err) is None:
                raise
            raise explain(err, self._where("create the build", body.get("serviceAccount"))) from err
        meta = operation.metadata.build
        return Started(meta.id, meta.log_url, operation)

    def wait(self, started: Started, on_update: Callable[[str], None] | None = None,
             poll_seconds: float = 5.0) -> dict[str, Any]:
        """Poll the operation until done; return the finished Build (raise CloudError if it did not succeed)."""
        from google.cloud.devtools.cloudbuild_v1 import Build

        operation = started.operation
        while True:
            done = call_with_retry(lambda: operation.done(retry=None), what="poll the build",
                                   policy=self._policy, sleep=self._sleep)
            if on_update is not None:
                status = operation.metadata.build.status.name if operation.metadata else "QUEUED"
                on_update(status)
            if done:
                break
            self._sleep(poll_seconds)
        if operation.exception() is not None:
            raise CloudError(f"Cloud Build {started.build_id} failed: {operation.exception()}. "
                             f"Logs: {started.log_url}")
        result = operation.result(retry=None)
        finished: dict[str, Any] = json.loads(Build.to_json(result, use_integers_for_enums=False))
        if finished.get("status") != "SUCCESS":
            raise CloudError(f"Cloud Build {started.build_id} ended {finished.get('status')}. "
                             f"Logs: {started.log_url}")
        return finished
