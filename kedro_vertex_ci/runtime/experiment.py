"""A run a schedule started joins ``run_config.experiment_name`` from inside its own steps.

``run-once`` adds its run to the experiment itself (``gcp/experiments.py``), but Vertex starts a schedule's runs
with no client of ours around. So with an experiment configured, every step receives its job's resource name
(KFP's ``{{$.pipeline_job_resource_name}}``) and, when that job carries a ``scheduleName`` and is not yet a child
of the experiment, does what ``PipelineJob.submit(experiment=...)`` does: wait for the job's
``system.PipelineRun`` context, get or create the experiment context, ``addContextChildren``.

Idempotent (the first step adds the run; the others see the experiment among the run context's
``parentContexts`` and stop after one GET), bounded in time, and never fatal: a failure is a warning in the
step log, the nodes run either way. The slim image has no aiplatform, so the calls go through google-auth's
``AuthorizedSession`` to the Vertex REST API of the job's region (``KEDRO_VERTEX_CI_VERTEX_ENDPOINT`` overrides).
"""

from __future__ import annotations

import re
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import CloudError
from ..gcp.experiments import ensure_experiment, experiment_id, run_context_of

JOB_RESOURCE = re.compile(r"projects/(?P<project>[^/]+)/locations/(?P<region>[^/]+)/pipelineJobs/(?P<job>[^/]+)")
LOCAL_REGION = "local"  # run-local's job resource names (projects/local/locations/local/...): no Vertex job
WAIT_ENV = "KEDRO_VERTEX_CI_EXPERIMENT_WAIT_SECONDS"
POLL_ENV = "KEDRO_VERTEX_CI_POLL_SECONDS"
DEFAULT_WAIT_SECONDS = 120.0  # for the run context (Vertex makes it before the first task starts)
DEFAULT_POLL_SECONDS = 3.0
REQUEST_TIMEOUT = 20.0
_SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
_RETRYABLE = frozenset({429, 500, 502, 503, 504})
_TERMINAL = ("PIPELINE_STATE_FAILED", "PIPELINE_STATE_CANCELLED")


@dataclass(frozen=True)
class JobRef:
    """A Vertex pipeline job's resource name, split."""

    name: str
    project: str
    region: str


def vertex_job(resource_name: str | None) -> JobRef | None:
    """The Vertex job behind ``{{$.pipeline_job_resource_name}}``; None on run-local, KFP or an unsubstituted
    placeholder, where there is no Vertex job to add."""
    match = JOB_RESOURCE.fullmatch(resource_name or "")
    if match is None or match["region"] == LOCAL_REGION:
        return None
    return JobRef(resource_name or "", match["project"], match["region"])


class MetadataRest:
    """The few Vertex AI REST calls this needs, through an ``AuthorizedSession``-like ``session``.

    Duck-types the methods of ``gcp.vertex.Vertex`` that :func:`gcp.experiments.ensure_experiment` uses, so
    the experiment is made exactly as ``run-once`` makes it.
    """

    def __init__(self, session: Any, base_url: str, sleep: Callable[[float], None] = time.sleep,
                 attempts: int = 3):
        self._session, self._base, self._sleep, self._attempts = session, base_url.rstrip("/"), sleep, attempts
        self.store = ""  # projects/N/locations/L/metadataStores/default: where the job's run context lives

    def _request(self, method: str, path: str, body: Any = None, params: Mapping[str, str] | None = None,
                 accept: frozenset[int] = frozenset()) -> tuple[int, Any]:
        import requests

        url = f"{self._base}/v1/{path}"
        for attempt in range(self._attempts):
            last = attempt == self._attempts - 1
            try:
                response = self._session.request(method, url, json=body, params=params, timeout=REQUEST_TIMEOUT)
            except requests.RequestException as err:
                if last:
                    raise CloudError(f"{method} {url}: {type(err).__name__}: {err}") from err
                self._sleep(2.0**attempt)
                continue
            status = response.status_code
            if status in _RETRYABLE and not last:
                self._sleep(2.0**attempt)
                continue
            if status >= 400 and status not in accept:
                raise CloudError(f"{method} {url}: HTTP {status} {_error_message(response)}")
            return status, (response.json() if response.content else {})
        raise AssertionError("unreachable")

    def get_job(self, name: str) -> dict[str, Any]:
        return dict(self._request("GET", name)[1])

    def ensure_metadata_store(self) -> None:
        """Nothing to do: the job's run context lives in the store, so it exists."""

    def get_context(self, context_id: str) -> dict[str, Any] | None:
        status, body = self._request("GET", f"{self.store}/contexts/{context_id}", accept=frozenset({404}))
        return None if status == 404 else dict(body)

    def create_context(self, context_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        status, created = self._request("POST", f"{self.store}/contexts", body=dict(body),
                                        params={"contextId": context_id}, accept=frozenset({409}))
        if status == 409:  # another step of this run created it first
            return dict(self._request("GET", f"{self.store}/contexts/{context_id}")[1])
        return dict(created)

    def update_context_description(self, name: str, description: str) -> None:
        self._request("PATCH", name, body={"description": description}, params={"updateMask": "description"})

    def add_context_children(self, parent_context: str, children: list[str]) -> None:
        self._request("POST", f"{parent_context}:addContextChildren", body={"childContexts": children},
                      accept=frozenset({409}))


def _error_message(response: Any) -> str:
    try:
        error = response.json().get("error") or {}
        return str(error.get("message") or error)[:300]
    except ValueError:
        return str(response.text)[:300]


def join_scheduled_run(api: Any, job: JobRef, experiment: str, description: str | None, wait_seconds: float,
                       poll_seconds: float, sleep: Callable[[float], None] = time.sleep) -> str | None:
    """Add ``job`` to ``experiment`` when a schedule started it; returns what was done, None for nothing.

    Raises :class:`CloudError` when the run cannot be added.
    """
    current = api.get_job(job.name)
    if not current.get("scheduleName"):
        return None  # a one-off run: run-once (or whoever submitted it) decides about the experiment
    begun = time.monotonic()
    while not run_context_of(current):
        if current.get("state") in _TERMINAL:
            raise CloudError(f"the job ended {current['state']} before Vertex made its run context")
        if time.monotonic() - begun > wait_seconds:
            raise CloudError(f"Vertex made no run context for the job within {wait_seconds:g} s")
        sleep(poll_seconds)
        current = api.get_job(job.name)
    run_context = current["jobDetail"]["pipelineRunContext"]
    api.store = run_context["name"].split("/contexts/", 1)[0]
    # The run's other parent is its pipeline's system.Pipeline context, named after the pipeline: an
    # experiment of the same name cannot exist (ensure_experiment says so), so that parent never counts.
    pipeline_context = ((current["jobDetail"].get("pipelineContext") or {}).get("name"))
    parents = set(run_context.get("parentContexts") or ()) - {pipeline_context}
    if f"{api.store}/contexts/{experiment_id(experiment)}" in parents:
        return None  # an earlier step of this run added it
    found = ensure_experiment(api, experiment, description)
    api.add_context_children(found["name"], [run_context["name"]])
    return f"added scheduled run {job.name.rsplit('/', 1)[-1]} to Vertex AI experiment {found['name'].rsplit('/', 1)[-1]}"


def _session(environ: Mapping[str, str]) -> Any:
    """google-auth's AuthorizedSession for the step's credentials (on Vertex: the job's service account)."""
    import google.auth
    from google.auth.transport.requests import AuthorizedSession

    from ..gcp.endpoints import resolve_endpoints

    credentials, _ = google.auth.default(scopes=list(_SCOPES))
    token_url = resolve_endpoints(None, environ).oauth2_token_url()
    if token_url and hasattr(credentials, "with_token_uri"):
        credentials = credentials.with_token_uri(token_url)
    return AuthorizedSession(credentials)  # type: ignore[no-untyped-call]


def _seconds(environ: Mapping[str, str], name: str, default: float) -> float:
    try:
        return max(0.0, float(environ.get(name, default)))
    except ValueError:
        return default


class ExperimentJoin:
    """Runs the join in a background thread beside the nodes; :meth:`finish` waits a bounded time for it."""

    def __init__(self, job: JobRef, experiment: str, description: str | None, environ: Mapping[str, str]):
        self._job, self._experiment, self._description = job, experiment, description
        self._environ = dict(environ)
        self.wait_seconds = _seconds(environ, WAIT_ENV, DEFAULT_WAIT_SECONDS)
        self._poll_seconds = _seconds(environ, POLL_ENV, DEFAULT_POLL_SECONDS)
        self._thread = threading.Thread(target=self._run, name="kvc-experiment", daemon=True)
        self._started = time.monotonic()

    def start(self) -> ExperimentJoin:
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            from ..gcp.endpoints import resolve_endpoints

            base = resolve_endpoints(None, self._environ).vertex_url(self._job.region)
            api = MetadataRest(_session(self._environ), base)
            done = join_scheduled_run(api, self._job, self._experiment, self._description, self.wait_seconds,
                                      self._poll_seconds)
        except Exception as err:  # noqa: BLE001 — any failure is a warning: the nodes' work matters more
            _warn(f"{type(err).__name__}: {err}" if not isinstance(err, CloudError) else str(err),
                  self._experiment)
            return
        if done:
            print(f"kedro-vertex-ci step: {done}", file=sys.stderr, flush=True)

    def finish(self) -> None:
        """Wait for the join (bounded: the run-context wait plus request time); warn when it is still going."""
        budget = self.wait_seconds + 4 * REQUEST_TIMEOUT
        self._thread.join(max(0.0, budget - (time.monotonic() - self._started)))
        if self._thread.is_alive():
            _warn(f"gave up after {budget:.0f} s", self._experiment)


def _warn(reason: str, experiment: str) -> None:
    print(f"kedro-vertex-ci step: WARNING: this scheduled run was not added to Vertex AI experiment "
          f"{experiment!r}: {reason}. The step goes on; the run is missing from the console's Experiments view. "
          f"The pipeline's service account needs roles/aiplatform.user (Vertex ML Metadata read/write).",
          file=sys.stderr, flush=True)


def start_join(pipeline_job: str | None, experiment: str | None, description: str | None,
               environ: Mapping[str, str]) -> ExperimentJoin | None:
    """Start joining the experiment when the step runs in a Vertex job and an experiment is configured."""
    job = vertex_job(pipeline_job)
    if job is None or not experiment:
        return None
    return ExperimentJoin(job, experiment, description, environ).start()
