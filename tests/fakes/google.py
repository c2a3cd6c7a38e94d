"""One in-process HTTP server playing the Google (and GitHub OIDC) endpoints our cloud code talks to.

It speaks the REST shapes the real client libraries send and expect: STS token exchange, IAM credentials
(generateAccessToken / generateIdToken), the GitHub Actions OIDC token endpoint, Vertex AI pipelineJobs and
schedules, Cloud Build builds and operations, Artifact Registry tags (``tags.get``: every image a successful
build pushed is tagged there, like the real registry). Every request is recorded (method, path, query, headers, body);
faults (status codes, delays, dropped connections) can be injected per route; a submitted pipelineSpec must
parse into kfp's ``PipelineSpec`` proto or the server answers 400 like Vertex would.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

OIDC_REQUEST_TOKEN = "gha-request-token-SECRET"
TERMINAL_JOB_STATES = {"PIPELINE_STATE_SUCCEEDED", "PIPELINE_STATE_FAILED", "PIPELINE_STATE_CANCELLED"}


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    @property
    def form(self) -> dict[str, str]:
        return dict(urllib.parse.parse_qsl(self.body.decode()))

    @property
    def bearer(self) -> str | None:
        value = self.headers.get("authorization", "")
        return value.split(" ", 1)[1] if value.lower().startswith("bearer ") else None


@dataclass
class Fault:
    method: str
    path: re.Pattern[str]
    status: int | None = None
    delay: float = 0.0
    drop: bool = False
    times: int = 1
    body: dict[str, Any] | None = None
    drop_after: bool = False  # handle the request, then lose the response


class HttpError(Exception):
    def __init__(self, status: int, message: str, reason: str = "", body: dict[str, Any] | None = None):
        super().__init__(message)
        self.status, self.message, self.reason, self.body = status, message, reason, body


_STATUS_NAMES = {400: "INVALID_ARGUMENT", 403: "PERMISSION_DENIED", 404: "NOT_FOUND", 409: "ALREADY_EXISTS",
                 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}


def google_error(status: int, message: str, reason: str = "") -> dict[str, Any]:
    """The JSON error envelope Google APIs answer with."""
    error: dict[str, Any] = {"code": status, "message": message, "status": _STATUS_NAMES.get(status, "UNKNOWN")}
    if reason:
        error["details"] = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason}]
    return {"error": error}


def _now() -> str:
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1e6):06d}Z"


def fake_jwt(claims: dict[str, Any]) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"


@dataclass
class FakeGoogle:
    """The fake. ``url`` is ``http://127.0.0.1:PORT``; state is plain dicts tests may inspect or seed."""

    project_number: str = "123456789012"
    pool: str = "github"
    provider: str = "repo"
    # service accounts the federated identity may impersonate (roles/iam.workloadIdentityUser granted)
    impersonable: set[str] = field(default_factory=lambda: {"deployer@demo-project.iam.gserviceaccount.com"})
    job_states: list[str] = field(
        default_factory=lambda: ["PIPELINE_STATE_PENDING", "PIPELINE_STATE_RUNNING", "PIPELINE_STATE_SUCCEEDED"]
    )
    build_polls_until_done: int = 2
    build_status: str = "SUCCESS"
    requests: list[Recorded] = field(default_factory=list)
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    schedules: dict[str, dict[str, Any]] = field(default_factory=dict)
    builds: dict[str, dict[str, Any]] = field(default_factory=dict)
    operations: dict[str, dict[str, Any]] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    # Artifact Registry: tag resource name -> version resource name (…/versions/sha256:…)
    tags: dict[str, str] = field(default_factory=dict)
    schedule_create_delay: float = 0.0  # widens the race window between list and create
    metadata_stores: set[str] = field(default_factory=set)  # "location/store" ids that exist
    contexts: dict[str, dict[str, Any]] = field(default_factory=dict)  # Vertex ML Metadata, by resource name
    run_context_after_polls: int = 1  # Vertex makes a job's system.PipelineRun context asynchronously

    def __post_init__(self) -> None:
        self._lock = threading.RLock()
        self._ids = itertools.count(1000)
        self._job_polls: dict[str, int] = {}
        self._build_polls: dict[str, int] = {}
        self._fired: dict[str, int] = {}  # jobs a schedule started: polls until their run context exists
        self._server: ThreadingHTTPServer | None = None
        self.issued_tokens: list[str] = []

    # ---------------------------------------------------------------- lifecycle
    def start(self) -> FakeGoogle:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _handle(self) -> None:
                fake._dispatch(self)

            do_GET = do_POST = do_DELETE = do_PATCH = do_PUT = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        assert self._server
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # ---------------------------------------------------------------- test helpers
    @property
    def provider_name(self) -> str:
        return (f"projects/{self.project_number}/locations/global/workloadIdentityPools/{self.pool}"
                f"/providers/{self.provider}")

    @property
    def oidc_url(self) -> str:
        """What the runner puts in ACTIONS_ID_TOKEN_REQUEST_URL (it already carries a query)."""
        return f"{self.url}/github/oidc?api-version=2.0"

    def inject(self, method: str, path_regex: str, *, status: int | None = None, delay: float = 0.0,
               drop: bool = False, times: int = 1, body: dict[str, Any] | None = None,
               drop_after: bool = False) -> None:
        """Make the next ``times`` matching requests fail (status), stall (delay) or lose the connection
        (before handling with ``drop``, after handling with ``drop_after``)."""
        with self._lock:
            self.faults.append(Fault(method, re.compile(path_regex), status, delay, drop, times, body, drop_after))

    def calls(self, method: str | None = None, path_regex: str = "") -> list[Recorded]:
        pattern = re.compile(path_regex)
        return [r for r in list(self.requests)
                if (method is None or r.method == method) and pattern.search(r.path)]

    def active_schedules(self, display_name: str | None = None) -> list[dict[str, Any]]:
        return [s for s in self.schedules.values()
                if s["state"] == "ACTIVE" and (display_name is None or s["displayName"] == display_name)]

    # ---------------------------------------------------------------- dispatch
    def _dispatch(self, handler: BaseHTTPRequestHandler) -> None:
        parsed = urllib.parse.urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        record = Recorded(handler.command, parsed.path, urllib.parse.parse_qs(parsed.query),
                          {k.lower(): v for k, v in handler.headers.items()}, body)
        with self._lock:
            self.requests.append(record)
            fault = self._take_fault(record)
        if fault is not None:
            if fault.delay:
                time.sleep(fault.delay)
            if fault.drop and not fault.drop_after:
                handler.close_connection = True
                handler.connection.shutdown(2)
                return
            if fault.status:
                self._send(handler, fault.status, fault.body or google_error(fault.status, "injected fault"))
                return
        try:
            status, payload = self._route(record)
        except HttpError as err:
            status, payload = err.status, err.body or google_error(err.status, err.message, err.reason)
        except Exception as err:  # a bug in the fake must be visible, not a hang
            status, payload = 500, google_error(500, f"fake crashed: {err!r}")
        if fault is not None and fault.drop_after:
            handler.close_connection = True
            handler.connection.shutdown(2)
            return
        self._send(handler, status, payload)

    def _take_fault(self, record: Recorded) -> Fault | None:
        for fault in self.faults:
            if fault.times > 0 and fault.method == record.method and fault.path.search(record.path):
                fault.times -= 1
                return fault
        return None

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def _routes(self) -> list[tuple[str, str, Callable[..., tuple[int, Any]]]]:
        loc = r"/v1/projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)"
        return [
            ("GET", r"/github/oidc", self._oidc),
            ("POST", r"/v1/token", self._sts),
            ("POST", r"/token", self._oauth_refresh),
            ("POST", r"/v1/projects/-/serviceAccounts/(?P<sa>[^/:]+):generateAccessToken", self._sa_token),
            ("POST", r"/v1/projects/-/serviceAccounts/(?P<sa>[^/:]+):generateIdToken", self._id_token),
            ("POST", loc + r"/pipelineJobs", self._create_job),
            ("GET", loc + r"/pipelineJobs/(?P<job>[^/:]+)", self._get_job),
            ("POST", loc + r"/pipelineJobs/(?P<job>[^/:]+):cancel", self._cancel_job),
            ("GET", r"/v1/(?P<tag>projects/[^/]+/locations/[^/]+/repositories/[^/]+/packages/[^/]+/tags/[^/]+)",
             self._get_tag),
            ("GET", loc + r"/pipelineJobs", self._list_jobs),
            ("POST", loc + r"/schedules", self._create_schedule),
            ("GET", loc + r"/schedules/(?P<sid>[^/:]+)", self._get_schedule),
            ("GET", loc + r"/schedules", self._list_schedules),
            ("DELETE", loc + r"/schedules/(?P<sid>[^/:]+)", self._delete_schedule),
            ("POST", loc + r"/schedules/(?P<sid>[^/:]+):pause", self._pause_schedule),
            ("POST", loc + r"/schedules/(?P<sid>[^/:]+):resume", self._resume_schedule),
            ("GET", loc + r"/metadataStores/(?P<store>[^/:]+)", self._get_store),
            ("POST", loc + r"/metadataStores", self._create_store),
            ("GET", loc + r"/metadataStores/(?P<store>[^/:]+)/contexts/(?P<cid>[^/:]+)", self._get_context),
            ("POST", loc + r"/metadataStores/(?P<store>[^/:]+)/contexts", self._create_context),
            ("PATCH", loc + r"/metadataStores/(?P<store>[^/:]+)/contexts/(?P<cid>[^/:]+)", self._update_context),
            ("POST", loc + r"/metadataStores/(?P<store>[^/:]+)/contexts/(?P<cid>[^/:]+):addContextChildren",
             self._add_context_children),
            ("POST", r"/v1/projects/(?P<project>[^/]+)(?:/locations/(?P<location>[^/]+))?/builds",
             self._create_build),
            ("GET", r"/v1/projects/(?P<project>[^/]+)(?:/locations/(?P<location>[^/]+))?/builds/(?P<bid>[^/:]+)",
             self._get_build),
            ("GET", r"/v1/(?:projects/[^/]+/(?:locations/[^/]+/)?)?operations/(?P<op>[^/:]+)", self._get_operation),
        ]

    def _route(self, record: Recorded) -> tuple[int, Any]:
        for method, pattern, fn in self._routes():
            match = re.fullmatch(pattern, record.path)
            if method == record.method and match:
                return fn(record, **{k: v for k, v in match.groupdict().items()})
        raise HttpError(404, f"fake has no route for {record.method} {record.path}")

    # ---------------------------------------------------------------- auth
    def _oidc(self, record: Recorded) -> tuple[int, Any]:
        if record.headers.get("authorization", "").lower() != f"bearer {OIDC_REQUEST_TOKEN}".lower():
            raise HttpError(401, "bad ACTIONS_ID_TOKEN_REQUEST_TOKEN")
        audience = record.query.get("audience", [""])[0]
        token = fake_jwt({"aud": audience, "sub": "repo:acme/demo:ref:refs/heads/main", "iss": "github"})
        return 200, {"value": token, "count": 1}

    def _require_token(self, record: Recorded) -> str:
        token = record.bearer
        if not token or token not in self.issued_tokens:
            raise HttpError(401, "Request had invalid authentication credentials.", "ACCESS_TOKEN_TYPE_UNSUPPORTED")
        return token

    def _sts(self, record: Recorded) -> tuple[int, Any]:
        form = record.form
        expected = f"//iam.googleapis.com/{self.provider_name}"
        if form.get("audience") != expected:
            return 400, {"error": "invalid_target",
                         "error_description": "The target service indicated by the \"audience\" parameters is "
                                              "invalid. This might either be because the pool or provider is "
                                              "disabled or deleted or because it doesn't exist."}
        if not form.get("subject_token", "").count(".") == 2:
            return 400, {"error": "invalid_grant", "error_description": "The subject token is not a JWT."}
        token = f"ya29.sts-{next(self._ids)}-SECRET"
        self.issued_tokens.append(token)
        return 200, {"access_token": token, "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
                     "token_type": "Bearer", "expires_in": 3600}

    def _oauth_refresh(self, record: Recorded) -> tuple[int, Any]:
        """Google's OAuth token endpoint for `gcloud auth application-default login` credentials."""
        form = record.form
        if form.get("grant_type") != "refresh_token" or form.get("refresh_token") != "1//refresh-SECRET":
            return 400, {"error": "invalid_grant", "error_description": "Token has been expired or revoked."}
        token = f"ya29.user-{next(self._ids)}-SECRET"
        self.issued_tokens.append(token)
        return 200, {"access_token": token, "expires_in": 3599, "token_type": "Bearer"}

    def _sa_token(self, record: Recorded, sa: str) -> tuple[int, Any]:
        self._require_token(record)
        sa = urllib.parse.unquote(sa)
        if sa not in self.impersonable:
            raise HttpError(403, "Permission 'iam.serviceAccounts.getAccessToken' denied on resource "
                                 "(or it may not exist).", "IAM_PERMISSION_DENIED")
        token = f"ya29.sa-{next(self._ids)}-SECRET"
        self.issued_tokens.append(token)
        expire = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
        return 200, {"accessToken": token, "expireTime": expire}

    def _id_token(self, record: Recorded, sa: str) -> tuple[int, Any]:
        self._require_token(record)
        audience = (record.json or {}).get("audience", "")
        return 200, {"token": fake_jwt({"aud": audience, "email": urllib.parse.unquote(sa)})}

    # ---------------------------------------------------------------- vertex: pipeline jobs
    @staticmethod
    def validate_spec(spec: Any) -> None:
        from google.protobuf import json_format
        from kfp.pipeline_spec import pipeline_spec_pb2

        try:
            json_format.ParseDict(spec, pipeline_spec_pb2.PipelineSpec())
        except Exception as err:
            raise HttpError(400, f"pipelineSpec does not parse into PipelineSpec: {err}") from err
        if not spec.get("root") or not spec.get("pipelineInfo", {}).get("name"):
            raise HttpError(400, "pipelineSpec needs root and pipelineInfo.name")

    def _new_job(self, project: str, location: str, job_id: str, body: dict[str, Any]) -> dict[str, Any]:
        self.validate_spec(body.get("pipelineSpec"))
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,127}", job_id):
            raise HttpError(400, f"Invalid pipeline job id {job_id!r}: must match [a-z0-9][a-z0-9-]{{0,127}}")
        if not body.get("runtimeConfig", {}).get("gcsOutputDirectory"):
            raise HttpError(400, "runtimeConfig.gcsOutputDirectory is required")
        name = f"projects/{self.project_number}/locations/{location}/pipelineJobs/{job_id}"
        job = {**body, "name": name, "state": self.job_states[0], "createTime": _now(), "updateTime": _now()}
        self.jobs[job_id] = job
        self._job_polls[job_id] = 0
        return job

    def _create_job(self, record: Recorded, project: str, location: str) -> tuple[int, Any]:
        self._require_token(record)
        job_id = record.query.get("pipelineJobId", [f"job-{next(self._ids)}"])[0]
        with self._lock:
            if job_id in self.jobs:
                raise HttpError(409, f"PipelineJob {job_id} already exists")
            return 200, self._new_job(project, location, job_id, record.json or {})

    def _get_job(self, record: Recorded, project: str, location: str, job: str) -> tuple[int, Any]:
        self._require_token(record)
        with self._lock:
            if job not in self.jobs:
                raise HttpError(404, f"PipelineJob {job} not found")
            current = self.jobs[job]
            if current["state"] == "PIPELINE_STATE_CANCELLED":
                return 200, current
            if job in self._fired:
                return 200, self._poll_fired(location, job)
            self._job_polls[job] += 1
            state = self.job_states[min(self._job_polls[job], len(self.job_states) - 1)]
            current["state"] = state
            if state != "PIPELINE_STATE_PENDING":
                current.setdefault("startTime", _now())
            if self._job_polls[job] >= self.run_context_after_polls and "jobDetail" not in current:
                current["jobDetail"] = {"pipelineRunContext": self._run_context(location, job, current)}
            if state in TERMINAL_JOB_STATES:
                current.setdefault("endTime", _now())
                if state == "PIPELINE_STATE_FAILED":
                    current["error"] = {"code": 9, "message": "The DAG failed because some tasks failed."}
            return 200, current

    def _cancel_job(self, record: Recorded, project: str, location: str, job: str) -> tuple[int, Any]:
        """Vertex answers an empty body; the job goes CANCELLING, then CANCELLED. Ended jobs: 400."""
        self._require_token(record)
        with self._lock:
            if job not in self.jobs:
                raise HttpError(404, f"PipelineJob {job} not found")
            current = self.jobs[job]
            if current["state"] in TERMINAL_JOB_STATES:
                raise HttpError(400, f"PipelineJob {job} is in state {current['state']} and cannot be cancelled")
            current["state"] = "PIPELINE_STATE_CANCELLED"
            current["endTime"] = _now()
            self._job_polls[job] = -10**9  # polls keep reporting CANCELLED
        return 200, {}

    def fire_schedule(self, sid: str, run_context_after_polls: int = 0) -> dict[str, Any]:
        """Start a run of schedule ``sid`` as Vertex does when its cron fires: a RUNNING job made from the
        schedule's ``createPipelineJobRequest.pipelineJob``, carrying ``scheduleName``; Vertex then makes its
        ``system.PipelineRun`` context (child of the pipeline's ``system.Pipeline`` context) after
        ``run_context_after_polls`` reads of the job. The job stays RUNNING: its steps are what runs now."""
        with self._lock:
            schedule = self.schedules[sid]
            location = schedule["name"].split("/")[3]
            template = (schedule.get("createPipelineJobRequest") or {}).get("pipelineJob") or {}
            stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime())
            job_id = f"{_slug(schedule['displayName'])[:100]}-{stamp}-{next(self._ids)}"
            job = self._new_job("", location, job_id, dict(template))
            job.update({"state": "PIPELINE_STATE_RUNNING", "startTime": _now(), "scheduleName": schedule["name"]})
            self._fired[job_id] = run_context_after_polls
            self._poll_fired(location, job_id, count=False)
            return job

    def _poll_fired(self, location: str, job_id: str, count: bool = True) -> dict[str, Any]:
        current = self.jobs[job_id]
        if count:
            self._fired[job_id] -= 1
        if self._fired[job_id] <= 0 and "jobDetail" not in current:
            run = self._run_context(location, job_id, current)
            pipeline = self._pipeline_context(location, current)
            run["parentContexts"] = [pipeline["name"]]
            current["jobDetail"] = {"pipelineContext": pipeline, "pipelineRunContext": run}
        return current

    def _pipeline_context(self, location: str, job: dict[str, Any]) -> dict[str, Any]:
        """The ``system.Pipeline`` context of the job's pipeline (one per pipeline name, shared by its runs)."""
        pipeline = _slug(job["pipelineSpec"]["pipelineInfo"]["name"])
        name = f"projects/{self.project_number}/locations/{location}/metadataStores/default/contexts/{pipeline}"
        return self.contexts.setdefault(name, {"name": name, "displayName": pipeline, "schemaTitle": "system.Pipeline",
                                               "schemaVersion": "0.0.1", "createTime": _now()})

    def job_state(self, job_id: str) -> str:
        return str(self.jobs[job_id]["state"])

    def _list_jobs(self, record: Recorded, project: str, location: str) -> tuple[int, Any]:
        self._require_token(record)
        wanted = _parse_filter(record.query.get("filter", [""])[0])
        jobs = [j for j in self.jobs.values() if _matches(j, wanted)]
        jobs.sort(key=lambda j: j["createTime"], reverse=True)
        size = int(record.query.get("pageSize", ["100"])[0])
        return 200, {"pipelineJobs": jobs[:size]} if jobs else {}

    # ---------------------------------------------------------------- vertex: schedules
    def _create_schedule(self, record: Recorded, project: str, location: str) -> tuple[int, Any]:
        self._require_token(record)
        body = record.json or {}
        if self.schedule_create_delay:
            time.sleep(self.schedule_create_delay)
        cron = body.get("cron", "")
        if len(re.sub(r"^TZ=\S+\s+", "", cron).split()) != 5:
            raise HttpError(400, f"Invalid cron {cron!r}")
        if len(body.get("displayName", "")) > 128:
            raise HttpError(400, "displayName too long")
        request = body.get("createPipelineJobRequest") or {}
        self.validate_spec((request.get("pipelineJob") or {}).get("pipelineSpec"))
        with self._lock:
            sid = str(next(self._ids))
            name = f"projects/{self.project_number}/locations/{location}/schedules/{sid}"
            schedule = {**body, "name": name, "state": "ACTIVE", "createTime": _now(), "updateTime": _now(),
                        "nextRunTime": _now(), "_seq": int(sid)}
            self.schedules[sid] = schedule
        return 200, _public(schedule)

    def _get_schedule(self, record: Recorded, project: str, location: str, sid: str) -> tuple[int, Any]:
        self._require_token(record)
        if sid not in self.schedules:
            raise HttpError(404, f"Schedule {sid} not found")
        return 200, _public(self.schedules[sid])

    def _list_schedules(self, record: Recorded, project: str, location: str) -> tuple[int, Any]:
        self._require_token(record)
        wanted = _parse_filter(record.query.get("filter", [""])[0])
        with self._lock:
            found = [_public(s) for s in sorted(self.schedules.values(), key=lambda s: s["_seq"])
                     if _matches(s, wanted)]
        return 200, {"schedules": found} if found else {}

    def _delete_schedule(self, record: Recorded, project: str, location: str, sid: str) -> tuple[int, Any]:
        self._require_token(record)
        with self._lock:
            if sid not in self.schedules:
                raise HttpError(404, f"Schedule {sid} not found")
            del self.schedules[sid]
        op = f"projects/{self.project_number}/locations/{location}/schedules/{sid}/operations/{next(self._ids)}"
        return 200, {"name": op, "done": True,
                     "metadata": {"@type": "type.googleapis.com/google.cloud.aiplatform.v1.DeleteOperationMetadata"},
                     "response": {"@type": "type.googleapis.com/google.protobuf.Empty"}}

    def _pause_schedule(self, record: Recorded, project: str, location: str, sid: str) -> tuple[int, Any]:
        self._require_token(record)
        if sid not in self.schedules:
            raise HttpError(404, f"Schedule {sid} not found")
        if record.json not in ({}, None):
            raise HttpError(400, f"PauseScheduleRequest has no body fields, got {record.json}")
        if self.schedules[sid]["state"] != "ACTIVE":
            raise HttpError(400, f"Schedule {sid} is {self.schedules[sid]['state']}, only an ACTIVE one pauses",
                            "FAILED_PRECONDITION")
        self.schedules[sid]["state"] = "PAUSED"
        return 200, {}

    def _resume_schedule(self, record: Recorded, project: str, location: str, sid: str) -> tuple[int, Any]:
        self._require_token(record)
        if sid not in self.schedules:
            raise HttpError(404, f"Schedule {sid} not found")
        unknown = set(record.json or {}) - {"catchUp"}
        if unknown:
            raise HttpError(400, f"Invalid JSON payload: unknown field(s) {sorted(unknown)}")
        if self.schedules[sid]["state"] != "PAUSED":
            raise HttpError(400, f"Schedule {sid} is {self.schedules[sid]['state']}, only a PAUSED one resumes",
                            "FAILED_PRECONDITION")
        self.schedules[sid]["state"] = "ACTIVE"
        self.schedules[sid]["catchUp"] = bool((record.json or {}).get("catchUp", False))
        return 200, {}

    # ---------------------------------------------------------------- vertex: ML Metadata (Experiments)
    def _store(self, location: str, store: str) -> str:
        if f"{location}/{store}" not in self.metadata_stores:
            raise HttpError(404, f"MetadataStore {store} not found in {location}")
        return f"projects/{self.project_number}/locations/{location}/metadataStores/{store}"

    def _get_store(self, record: Recorded, project: str, location: str, store: str) -> tuple[int, Any]:
        self._require_token(record)
        return 200, {"name": self._store(location, store), "createTime": _now()}

    def _create_store(self, record: Recorded, project: str, location: str) -> tuple[int, Any]:
        self._require_token(record)
        store = record.query.get("metadataStoreId", [""])[0]
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,127}", store):
            raise HttpError(400, f"Invalid metadataStoreId {store!r}")
        with self._lock:
            if f"{location}/{store}" in self.metadata_stores:
                raise HttpError(409, f"MetadataStore {store} already exists")
            self.metadata_stores.add(f"{location}/{store}")
        name = f"projects/{self.project_number}/locations/{location}/metadataStores/{store}"
        return 200, {"name": f"{name}/operations/{next(self._ids)}", "done": True,
                     "metadata": {"@type": "type.googleapis.com/google.cloud.aiplatform.v1.CreateMetadataStore"
                                           "OperationMetadata"},
                     "response": {"@type": "type.googleapis.com/google.cloud.aiplatform.v1.MetadataStore",
                                  "name": name}}

    @staticmethod
    def _check_context(body: Any) -> None:
        from google.cloud.aiplatform_v1.types import Context

        try:
            Context.from_json(json.dumps(body), ignore_unknown_fields=False)
        except Exception as err:
            raise HttpError(400, f"Invalid Context: {err}") from err

    def _get_context(self, record: Recorded, project: str, location: str, store: str, cid: str) -> tuple[int, Any]:
        self._require_token(record)
        name = f"{self._store(location, store)}/contexts/{cid}"
        if name not in self.contexts:
            raise HttpError(404, f"Context {name} not found")
        return 200, self.contexts[name]

    def _create_context(self, record: Recorded, project: str, location: str, store: str) -> tuple[int, Any]:
        self._require_token(record)
        body = record.json or {}
        self._check_context(body)
        cid = record.query.get("contextId", [""])[0]
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,127}", cid):
            raise HttpError(400, f"Invalid contextId {cid!r}: must match [a-z0-9][a-z0-9-]{{0,127}}")
        if not body.get("schemaTitle"):
            raise HttpError(400, "Context.schema_title is required")
        name = f"{self._store(location, store)}/contexts/{cid}"
        with self._lock:
            if name in self.contexts:
                raise HttpError(409, f"Context {name} already exists", "ALREADY_EXISTS")
            self.contexts[name] = {**body, "name": name, "etag": "1", "createTime": _now(), "updateTime": _now()}
        return 200, self.contexts[name]

    def _update_context(self, record: Recorded, project: str, location: str, store: str,
                        cid: str) -> tuple[int, Any]:
        self._require_token(record)
        name = f"{self._store(location, store)}/contexts/{cid}"
        if name not in self.contexts:
            raise HttpError(404, f"Context {name} not found")
        body = record.json or {}
        self._check_context(body)
        mask = [p for p in record.query.get("updateMask", [""])[0].split(",") if p]
        if not mask:
            raise HttpError(400, "updateMask is required")
        for path in mask:
            key = re.sub(r"_(\w)", lambda m: m.group(1).upper(), path)
            if key not in ("description", "displayName", "labels", "metadata", "parentContexts"):
                raise HttpError(400, f"updateMask path {path!r} cannot be updated")
            self.contexts[name][key] = body.get(key)
        return 200, self.contexts[name]

    def _add_context_children(self, record: Recorded, project: str, location: str, store: str,
                              cid: str) -> tuple[int, Any]:
        self._require_token(record)
        name = f"{self._store(location, store)}/contexts/{cid}"
        body = record.json or {}
        if set(body) - {"childContexts"}:
            raise HttpError(400, f"Invalid JSON payload: unknown field(s) {sorted(set(body) - {'childContexts'})}")
        if name not in self.contexts:
            raise HttpError(404, f"Context {name} not found")
        for child in body.get("childContexts") or []:
            if child not in self.contexts:
                raise HttpError(400, f"child context {child} not found")
            if child == name:
                raise HttpError(400, "a context cannot be its own child")
            parents = self.contexts[child].setdefault("parentContexts", [])
            if name not in parents:
                parents.append(name)
        return 200, {}

    def _run_context(self, location: str, job_id: str, job: dict[str, Any]) -> dict[str, Any]:
        """The ``system.PipelineRun`` context Vertex makes for a job (and the default store it lives in)."""
        self.metadata_stores.add(f"{location}/default")
        name = f"projects/{self.project_number}/locations/{location}/metadataStores/default/contexts/{job_id}"
        params = (job.get("runtimeConfig") or {}).get("parameterValues") or {}
        self.contexts[name] = {"name": name, "displayName": job_id, "schemaTitle": "system.PipelineRun",
                               "schemaVersion": "0.0.1", "metadata": {f"input:{k}": v for k, v in params.items()},
                               "createTime": _now()}
        return self.contexts[name]

    def children_of(self, context_name: str) -> list[str]:
        """Names of the contexts added as children of ``context_name``."""
        return sorted(n for n, c in self.contexts.items() if context_name in (c.get("parentContexts") or []))

    # ---------------------------------------------------------------- cloud build
    def _create_build(self, record: Recorded, project: str, location: str | None) -> tuple[int, Any]:
        self._require_token(record)
        build = record.json or {}
        if not build.get("steps"):
            raise HttpError(400, "Build must have at least one step")
        # the client sends enums as numbers ($alt=json;enum-encoding=int): CLOUD_LOGGING_ONLY=5, NONE=4
        if build.get("serviceAccount") and (build.get("options") or {}).get("logging") not in (
                "CLOUD_LOGGING_ONLY", "NONE", 5, 4) and not build.get("logsBucket"):
            raise HttpError(400, "if 'build.service_account' is specified, the build must either (a) specify "
                                 "'build.logs_bucket', (b) use the REGIONAL_USER_OWNED_BUCKET "
                                 "build.options.default_logs_bucket_behavior option, or (c) use either "
                                 "CLOUD_LOGGING_ONLY / NONE logging options")
        with self._lock:
            bid = f"b{next(self._ids)}-0000-4000-8000-000000000000"
            where = f"projects/{project}/locations/{location or 'global'}"
            log_url = f"https://console.cloud.google.com/cloud-build/builds;region={location or 'global'}/{bid}?project={self.project_number}"
            stored = {**build, "id": bid, "name": f"{where}/builds/{bid}", "projectId": project,
                      "status": "QUEUED", "logUrl": log_url, "createTime": _now()}
            self.builds[bid] = stored
            self._build_polls[bid] = 0
            op_id = f"op-{next(self._ids)}"
            op_name = f"{where}/operations/{op_id}" if location else f"operations/{op_id}"
            self.operations[op_id] = {"name": op_name, "build": bid}
        return 200, self._operation(op_id)

    def _operation(self, op_id: str) -> dict[str, Any]:
        op = self.operations[op_id]
        build = self.builds[op["build"]]
        public = {k: v for k, v in build.items() if not k.startswith("_")}
        out: dict[str, Any] = {"name": op["name"], "metadata": {
            "@type": "type.googleapis.com/google.devtools.cloudbuild.v1.BuildOperationMetadata", "build": public}}
        if build["status"] in ("SUCCESS", "FAILURE", "TIMEOUT", "CANCELLED", "INTERNAL_ERROR"):
            out["done"] = True
            if build["status"] == "SUCCESS":
                out["response"] = {"@type": "type.googleapis.com/google.devtools.cloudbuild.v1.Build", **public}
            else:
                out["error"] = {"code": 2, "message": f"Build failed; check build logs for details: {build['logUrl']}"}
        return out

    def _advance_build(self, bid: str) -> None:
        with self._lock:
            self._build_polls[bid] += 1
            build = self.builds[bid]
            if build["status"] in ("QUEUED", "WORKING"):
                if self._build_polls[bid] >= self.build_polls_until_done:
                    build["status"] = self.build_status
                    build["finishTime"] = _now()
                    if self.build_status == "SUCCESS":
                        build["results"] = {"images": [
                            {"name": image, "digest": "sha256:" + hashlib.sha256(f"{bid}/{image}".encode()).hexdigest()}
                            for image in build.get("images", [])]}
                        for pushed in build["results"]["images"]:
                            self.tag_image(pushed["name"], pushed["digest"])
                else:
                    build["status"] = "WORKING"
                    build.setdefault("startTime", _now())

    def tag_image(self, image: str, digest: str) -> None:
        """Record ``HOST/PROJECT/REPO/PKG:TAG`` as pushed (only ``LOCATION-docker.pkg.dev`` images live in AR)."""
        match = re.fullmatch(r"([a-z0-9-]+)-docker\.pkg\.dev/([^/]+)/([^/]+)/(.+):([^:/]+)", image)
        if not match:
            return
        location, project, repo, package, tag = match.groups()
        base = (f"projects/{project}/locations/{location}/repositories/{repo}/packages/"
                f"{urllib.parse.quote(package, safe='')}")
        self.tags[f"{base}/tags/{tag}"] = f"{base}/versions/{digest}"

    def _get_tag(self, record: Recorded, tag: str) -> tuple[int, Any]:
        self._require_token(record)
        name = tag  # the path as sent: nested package names stay %2F-encoded, like the real API wants
        if name not in self.tags:
            raise HttpError(404, f"Requested entity was not found: {name}")
        return 200, {"name": name, "version": self.tags[name]}

    def _get_operation(self, record: Recorded, op: str) -> tuple[int, Any]:
        self._require_token(record)
        if op not in self.operations:
            raise HttpError(404, f"operation {op} not found")
        self._advance_build(self.operations[op]["build"])
        return 200, self._operation(op)

    def _get_build(self, record: Recorded, project: str, location: str | None, bid: str) -> tuple[int, Any]:
        self._require_token(record)
        if bid not in self.builds:
            raise HttpError(404, f"build {bid} not found")
        return 200, {k: v for k, v in self.builds[bid].items() if not k.startswith("_")}


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "run"


def _public(resource: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in resource.items() if not k.startswith("_")}


def _parse_filter(text: str) -> list[tuple[str, str]]:
    """``display_name="x" AND labels.k="v"`` → [(path, value)] (the subset of AIP-160 our code sends)."""
    return [(m.group(1), m.group(2)) for m in re.finditer(r'([\w.\-]+)\s*=\s*"((?:[^"\\]|\\.)*)"', text)]


def _matches(resource: dict[str, Any], wanted: list[tuple[str, str]]) -> bool:
    for key, value in wanted:
        if key == "display_name":
            actual = resource.get("displayName")
        elif key.startswith("labels."):
            labels = resource.get("labels") or \
                     ((resource.get("createPipelineJobRequest") or {}).get("pipelineJob") or {}).get("labels") or {}
            actual = labels.get(key[len("labels."):])
        elif key == "state":
            actual = resource.get("state")
        else:
            raise HttpError(400, f"unsupported filter field {key}")
        if actual != value:
            return False
    return True


def desk_login_env(fake: FakeGoogle, folder: Path) -> dict[str, str]:
    """A desk login (authorized_user ADC) whose refresh and IAM calls go to the loopback fake."""
    adc = folder / "adc.json"
    adc.write_text(json.dumps({
        "type": "authorized_user", "client_id": "764086051850-x.apps.googleusercontent.com",
        "client_secret": "not-a-secret", "refresh_token": "1//refresh-SECRET",
        "token_uri": "https://oauth2.googleapis.com/token"}))
    return {
        "GOOGLE_APPLICATION_CREDENTIALS": str(adc),
        "KEDRO_VERTEX_CI_OAUTH2_ENDPOINT": fake.url,
        "KEDRO_VERTEX_CI_IAMCREDENTIALS_ENDPOINT": fake.url,
        "NO_GCE_CHECK": "True",
    }
