"""Vertex AI Pipelines: submit a run, follow it, list runs and schedules.

Why not ``aiplatform.PipelineJob(...).submit()``: before submitting it checks (and may create) the pipeline-root
bucket through GCS and, in 2.x, checks the bucket's project through Resource Manager — calls that cannot be
pointed at a custom endpoint, stall 1–2 minutes when Google is unreachable, and need extra roles. It also keeps
global ``aiplatform.init`` state. We call the generated ``aiplatform_v1`` REST clients (the same library, the
same wire format) with our own job id, endpoint, retry policy and error hints; the pipeline root is written by
the steps, which is where a missing bucket or role really matters.

Request and response bodies are plain dicts in the REST (camelCase JSON) shape, built by pure functions.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from .endpoints import Endpoints
from .hints import Where, explain
from .retry import DEFAULT_POLICY, RetryPolicy, call_with_retry, http_status

TERMINAL_STATES = frozenset({"PIPELINE_STATE_SUCCEEDED", "PIPELINE_STATE_FAILED", "PIPELINE_STATE_CANCELLED"})
_TIMEOUT = 60.0


def gcs_root(root: str) -> str:
    """``bucket/path`` or ``gs://bucket/path`` → ``gs://bucket/path`` (Vertex wants the scheme)."""
    root = root.strip().rstrip("/")
    return root if root.startswith("gs://") else f"gs://{root}"


def override_caching(spec: Mapping[str, Any], enabled: bool) -> dict[str, Any]:
    """A copy of ``spec`` with every task's cache switch set (what ``enable_caching=`` does in aiplatform)."""
    out = copy.deepcopy(dict(spec))

    def visit(dag: dict[str, Any]) -> None:
        for task in (dag.get("tasks") or {}).values():
            task.setdefault("cachingOptions", {})["enableCache"] = enabled

    visit((out.get("root") or {}).get("dag") or {})
    for component in (out.get("components") or {}).values():
        visit(component.get("dag") or {})
    return out


@dataclass(frozen=True)
class JobSettings:
    """Everything a pipeline job carries besides its spec."""

    display_name: str
    root: str
    service_account: str | None = None
    network: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    parameter_values: Mapping[str, Any] = field(default_factory=dict)
    enable_caching: bool | None = None  # None: keep what the spec says per task


def pipeline_job_body(spec: Mapping[str, Any], settings: JobSettings) -> dict[str, Any]:
    """The ``PipelineJob`` REST body for ``spec`` (pure)."""
    if settings.enable_caching is not None:
        spec = override_caching(spec, settings.enable_caching)
    runtime: dict[str, Any] = {"gcsOutputDirectory": gcs_root(settings.root)}
    if settings.parameter_values:
        runtime["parameterValues"] = dict(settings.parameter_values)
    body: dict[str, Any] = {"displayName": settings.display_name, "pipelineSpec": dict(spec),
                            "runtimeConfig": runtime}
    if settings.labels:
        body["labels"] = dict(settings.labels)
    if settings.service_account:
        body["serviceAccount"] = settings.service_account
    if settings.network:
        body["network"] = settings.network
    return body


def duration_seconds(job: Mapping[str, Any]) -> float | None:
    from datetime import datetime, timezone

    def parse(text: str | None) -> datetime | None:
        if not text:
            return None
        return datetime.fromisoformat(text.replace("Z", "+00:00"))

    start, end = parse(job.get("startTime")), parse(job.get("endTime"))
    if not start:
        return None
    return ((end or datetime.now(timezone.utc)) - start).total_seconds()


class Vertex:
    """Thin client over ``aiplatform_v1`` PipelineService and ScheduleService (REST transport)."""

    def __init__(self, project: str, region: str, credentials: Any, endpoints: Endpoints | None = None,
                 policy: RetryPolicy = DEFAULT_POLICY, sleep: Callable[[float], None] = time.sleep,
                 on_retry: Callable[[str, int, BaseException], None] | None = None,
                 request_timeout: float = _TIMEOUT):
        self.project, self.region = project, region
        self._timeout = request_timeout
        self._credentials, self._endpoint = credentials, (endpoints or Endpoints()).vertex_url(region)
        self._policy, self._sleep, self._on_retry = policy, sleep, on_retry
        self._pipelines: Any = None
        self._schedules: Any = None
        self._metadata: Any = None

    @property
    def parent(self) -> str:
        return f"projects/{self.project}/locations/{self.region}"

    # ------------------------------------------------------------ clients (imported lazily: ~1.3 s)
    def _options(self) -> Any:
        from google.api_core.client_options import ClientOptions

        return ClientOptions(api_endpoint=self._endpoint)

    def _pipeline_client(self) -> Any:
        if self._pipelines is None:
            from google.cloud.aiplatform_v1.services.pipeline_service import PipelineServiceClient

            self._pipelines = PipelineServiceClient(credentials=self._credentials, transport="rest",
                                                    client_options=self._options())
        return self._pipelines

    def _schedule_client(self) -> Any:
        if self._schedules is None:
            from google.cloud.aiplatform_v1.services.schedule_service import ScheduleServiceClient

            self._schedules = ScheduleServiceClient(credentials=self._credentials, transport="rest",
                                                    client_options=self._options())
        return self._schedules

    def _call(self, what: str, fn: Callable[[], Any], **where: Any) -> Any:
        try:
            return call_with_retry(fn, what=what, policy=self._policy, sleep=self._sleep, on_retry=self._on_retry)
        except Exception as err:
            if http_status(err) is None:
                raise
            raise explain(err, Where("vertex", self.project, self.region, action=what, **where)) from err

    # ------------------------------------------------------------ pipeline jobs
    def submit(self, body: Mapping[str, Any], job_id: str) -> dict[str, Any]:
        """Create the job; a retry after a lost response finds it already created and returns it."""
        from google.cloud.aiplatform_v1.types import PipelineJob

        job = PipelineJob.from_json(json.dumps(body), ignore_unknown_fields=False)
        client = self._pipeline_client()
        name = f"{self.parent}/pipelineJobs/{job_id}"

        def create() -> Any:
            try:
                return client.create_pipeline_job(parent=self.parent, pipeline_job=job, pipeline_job_id=job_id,
                                                  retry=None, timeout=self._timeout)
            except Exception as err:
                if http_status(err) == 409:  # our own earlier attempt got through
                    return client.get_pipeline_job(name=name, retry=None, timeout=self._timeout)
                raise

        created = self._call("submit the pipeline job", create,
                             service_account=body.get("serviceAccount"))
        return _to_dict(created)

    def get_job(self, name: str) -> dict[str, Any]:
        client = self._pipeline_client()
        return _to_dict(self._call("read the pipeline job",
                                   lambda: client.get_pipeline_job(name=name, retry=None, timeout=self._timeout)))

    def list_jobs(self, filter_: str = "", limit: int = 20) -> list[dict[str, Any]]:
        client = self._pipeline_client()

        def fetch() -> list[dict[str, Any]]:
            pages = client.list_pipeline_jobs(request={"parent": self.parent, "filter": filter_,
                                                       "page_size": min(limit, 100), "order_by": "create_time desc"},
                                              retry=None, timeout=self._timeout)
            return [_to_dict(job) for job in _take(pages, limit)]

        return list(self._call("list pipeline jobs", fetch))

    def cancel_job(self, name: str) -> bool:
        """Ask Vertex to cancel a job (``POST …/pipelineJobs/ID:cancel``); False when it already ended."""
        client = self._pipeline_client()

        def cancel() -> bool:
            try:
                client.cancel_pipeline_job(name=name, retry=None, timeout=self._timeout)
            except Exception as err:
                if http_status(err) in (400, 404):  # FAILED_PRECONDITION: already in a terminal state
                    return False
                raise
            return True

        return bool(self._call("cancel a superseded pipeline job", cancel))

    def wait(self, name: str, on_update: Callable[[dict[str, Any]], None] | None = None,
             poll_seconds: float = 10.0, timeout_seconds: float | None = None) -> dict[str, Any]:
        """Poll until the job reaches a terminal state; ``on_update`` sees every polled job."""
        started = time.monotonic()
        while True:
            job = self.get_job(name)
            if on_update is not None:
                on_update(job)
            if job.get("state") in TERMINAL_STATES:
                return job
            if timeout_seconds is not None and time.monotonic() - started > timeout_seconds:
                return job
            self._sleep(poll_seconds)

    # ------------------------------------------------------------ schedules
    def create_schedule(self, body: Mapping[str, Any]) -> dict[str, Any]:
        from google.cloud.aiplatform_v1.types import Schedule

        schedule = Schedule.from_json(json.dumps(body), ignore_unknown_fields=False)
        client = self._schedule_client()
        return _to_dict(self._call("create the schedule", lambda: client.create_schedule(
            parent=self.parent, schedule=schedule, retry=None, timeout=self._timeout)))

    def list_schedules(self, filter_: str = "") -> list[dict[str, Any]]:
        client = self._schedule_client()

        def fetch() -> list[dict[str, Any]]:
            pages = client.list_schedules(request={"parent": self.parent, "filter": filter_, "page_size": 100},
                                          retry=None, timeout=self._timeout)
            return [_to_dict(s) for s in pages]

        return list(self._call("list schedules", fetch))

    def delete_schedule(self, name: str) -> bool:
        """Delete; False when it was already gone (another run deleted it first)."""
        client = self._schedule_client()

        def delete() -> bool:
            try:
                client.delete_schedule(name=name, retry=None, timeout=self._timeout)
            except Exception as err:
                if http_status(err) == 404:
                    return False
                raise
            return True

        return bool(self._call("delete the old schedule", delete))

    def pause_schedule(self, name: str) -> None:
        """``POST {name}:pause`` (body ``{}``): no new runs until resumed; running ones go on."""
        client = self._schedule_client()
        self._call("pause the schedule", lambda: client.pause_schedule(name=name, retry=None,
                                                                         timeout=self._timeout))

    def resume_schedule(self, name: str, catch_up: bool = False) -> None:
        """``POST {name}:resume`` with ``{"catchUp": false}``: runs missed while paused are skipped."""
        client = self._schedule_client()
        self._call("resume the schedule", lambda: client.resume_schedule(
            name=name, catch_up=catch_up, retry=None, timeout=self._timeout))

    # ------------------------------------------------------------ Vertex ML Metadata (Experiments)
    def _metadata_client(self) -> Any:
        if self._metadata is None:
            from google.cloud.aiplatform_v1.services.metadata_service import MetadataServiceClient

            self._metadata = MetadataServiceClient(credentials=self._credentials, transport="rest",
                                                   client_options=self._options())
        return self._metadata

    @property
    def metadata_store(self) -> str:
        return f"{self.parent}/metadataStores/default"

    def ensure_metadata_store(self) -> None:
        """The region's ``default`` metadata store, created when missing (as aiplatform does)."""
        from google.cloud.aiplatform_v1.types import MetadataStore

        client = self._metadata_client()

        def ensure() -> None:
            try:
                client.get_metadata_store(name=self.metadata_store, retry=None, timeout=self._timeout)
                return
            except Exception as err:
                if http_status(err) != 404:
                    raise
            try:
                client.create_metadata_store(parent=self.parent, metadata_store=MetadataStore(),
                                             metadata_store_id="default", retry=None,
                                             timeout=self._timeout).result(timeout=self._timeout)
            except Exception as err:
                if http_status(err) != 409:  # created meanwhile by someone else
                    raise

        self._call("find the Vertex ML Metadata store", ensure)

    def get_context(self, context_id: str) -> dict[str, Any] | None:
        """A context of the default store by id; None when it does not exist."""
        client = self._metadata_client()
        name = f"{self.metadata_store}/contexts/{context_id}"

        def get() -> dict[str, Any] | None:
            try:
                return _to_dict(client.get_context(name=name, retry=None, timeout=self._timeout))
            except Exception as err:
                if http_status(err) == 404:
                    return None
                raise

        found: dict[str, Any] | None = self._call("read the experiment", get)
        return found

    def create_context(self, context_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """Create a context; one created meanwhile (409) is read back instead."""
        from google.cloud.aiplatform_v1.types import Context

        client = self._metadata_client()
        context = Context.from_json(json.dumps(body), ignore_unknown_fields=False)

        def create() -> dict[str, Any]:
            try:
                return _to_dict(client.create_context(parent=self.metadata_store, context=context,
                                                      context_id=context_id, retry=None, timeout=self._timeout))
            except Exception as err:
                if http_status(err) == 409:
                    return _to_dict(client.get_context(name=f"{self.metadata_store}/contexts/{context_id}",
                                                       retry=None, timeout=self._timeout))
                raise

        return dict(self._call("create the experiment", create))

    def update_context_description(self, name: str, description: str) -> None:
        from google.cloud.aiplatform_v1.types import Context
        from google.protobuf.field_mask_pb2 import FieldMask

        client = self._metadata_client()
        self._call("update the experiment description", lambda: client.update_context(
            context=Context(name=name, description=description), update_mask=FieldMask(paths=["description"]),
            retry=None, timeout=self._timeout))

    def add_context_children(self, parent_context: str, children: list[str]) -> None:
        client = self._metadata_client()
        self._call("add the run to the experiment", lambda: client.add_context_children(
            context=parent_context, child_contexts=children, retry=None, timeout=self._timeout))


def _take(pages: Any, limit: int) -> Iterator[Any]:
    for index, item in enumerate(pages):
        if index >= limit:
            return
        yield item


def _to_dict(message: Any) -> dict[str, Any]:
    """A proto-plus message as its REST JSON dict (camelCase keys, enums as names)."""
    result: dict[str, Any] = json.loads(type(message).to_json(message, use_integers_for_enums=False))
    return result
