"""A loopback fake of the Kubeflow Pipelines v2beta1 REST API, with an IAP or Dex + oidc-authservice front.

Strict where the real server is: every JSON body must deserialize into the kfp-server-api model of its
endpoint (unknown fields, wrong types and missing required fields are 400s), pipeline packages must parse into
kfp's ``PipelineSpec`` proto, filters use KFP's predicate JSON, and a recurring run's trigger is checked. It
keeps state (pipelines, versions, experiments, runs, recurring runs) so idempotency and races can be asserted.

Fronts (``auth``): ``none``; ``bearer`` (a fixed token, as in-cluster service-account tokens); ``iap`` (a JWT
whose ``aud`` is the OAuth client id, as Identity-Aware Proxy checks); ``dex`` (no session cookie → 302 to
``/dex/auth?…`` → connector choice → ``/dex/auth/local/login`` form → 303 back to
``/authservice/oidc/callback`` → ``authservice_session`` cookie; sessions can be expired by the test).
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import itertools
import json
import re
import secrets
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

API = "/apis/v2beta1"
DEX_USER, DEX_PASSWORD = "user@example.com", "12341234"


class Reject(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


def _model_class(name: str) -> Any:
    import kfp_server_api

    return getattr(kfp_server_api.models, name)


def check_model(value: Any, type_name: str, where: str) -> None:
    """Raise Reject(400) unless ``value`` (JSON) fits the kfp-server-api type ``type_name`` exactly."""
    if value is None:
        return
    if type_name.startswith("list["):
        if not isinstance(value, list):
            raise Reject(400, f"{where}: expected a list")
        for i, item in enumerate(value):
            check_model(item, type_name[5:-1], f"{where}[{i}]")
        return
    if type_name.startswith("dict("):
        if not isinstance(value, dict):
            raise Reject(400, f"{where}: expected an object")
        inner = type_name[type_name.index(",") + 1:-1].strip()
        for key, item in value.items():
            check_model(item, inner, f"{where}.{key}")
        return
    # int64 fields are "str" in the swagger models; grpc-gateway takes them as JSON numbers or strings
    simple = {"str": (str, int), "int": (int, str), "bool": bool, "float": (int, float), "datetime": str,
              "object": object, "date": str}
    if type_name in simple:
        if not isinstance(value, simple[type_name]) or (type_name in ("int", "str") and isinstance(value, bool)):
            raise Reject(400, f"{where}: expected {type_name}, got {type(value).__name__}")
        return
    cls = _model_class(type_name)
    if not getattr(cls, "openapi_types", None):  # enums (RecurringRunMode, V2beta1RuntimeState…): strings
        allowed = [v for k, v in vars(cls).items() if k.isupper() and isinstance(v, str)]
        if not isinstance(value, str) or (allowed and value not in allowed):
            raise Reject(400, f"{where}: {value!r} is not one of {allowed}")
        return
    if not isinstance(value, dict):
        raise Reject(400, f"{where}: expected a {type_name} object")
    by_json = {json_key: attr for attr, json_key in cls.attribute_map.items()}
    for key, item in value.items():
        if key not in by_json:
            raise Reject(400, f"{where}: unknown field {key!r} for {type_name}")
        check_model(item, cls.openapi_types[by_json[key]], f"{where}.{key}")


def _spec_from_package(text: str) -> dict[str, Any]:
    import yaml
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2

    try:
        docs = [d for d in yaml.safe_load_all(text) if d]
    except yaml.YAMLError as err:
        raise Reject(400, f"pipeline package is not YAML/JSON: {err}") from err
    spec = docs[0] if docs else {}
    spec = spec.get("pipeline_spec", spec) if isinstance(spec, dict) else spec
    try:
        json_format.ParseDict(spec, pipeline_spec_pb2.PipelineSpec())
    except Exception as err:  # noqa: BLE001 - any parse failure is the server's 400
        raise Reject(400, f"pipeline package does not parse into PipelineSpec: {err}") from err
    return spec


def _matches(item: dict[str, Any], filter_text: str | None) -> bool:
    if not filter_text:
        return True
    try:
        predicates = json.loads(filter_text).get("predicates", [])
    except (ValueError, AttributeError) as err:
        raise Reject(400, f"invalid filter {filter_text!r}: {err}") from err
    for predicate in predicates:
        if predicate.get("operation") not in ("EQUALS", 1):
            raise Reject(400, f"fake supports EQUALS filters only, got {predicate}")
        value = predicate.get("stringValue", predicate.get("string_value"))
        if item.get(predicate.get("key")) != value:
            return False
    return True


@dataclass
class FakeKfp:
    auth: str = "none"  # none | bearer | iap | dex
    bearer_token: str = "in-cluster-token-SECRET"
    iap_client_id: str = "1234-iap.apps.googleusercontent.com"
    run_states: list[str] = field(default_factory=lambda: ["PENDING", "RUNNING", "SUCCEEDED"])
    create_delay: float = 0.0  # widens race windows between list and create
    # Run once each, right after a recurring-run listing is answered: how a test stages a concurrent deploy.
    after_recurring_list: list[Callable[[], None]] = field(default_factory=list)
    pipelines: dict[str, dict[str, Any]] = field(default_factory=dict)
    versions: dict[str, dict[str, Any]] = field(default_factory=dict)
    experiments: dict[str, dict[str, Any]] = field(default_factory=dict)
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    recurring: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    sessions: set[str] = field(default_factory=set)
    terminated: set[str] = field(default_factory=set)
    logins: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.RLock()
        self._ids = itertools.count(1)
        self._polls: dict[str, int] = {}
        self._server: ThreadingHTTPServer | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> FakeKfp:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                return

            def _serve(self) -> None:
                fake._serve(self)

            do_GET = do_POST = do_DELETE = _serve  # noqa: N815

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def host(self) -> str:
        """What a user configures as ``kfp.host`` (the ``/pipeline`` API path of a Kubeflow deployment)."""
        return f"{self.url}/pipeline"

    def expire_sessions(self) -> None:
        self.sessions.clear()

    def enabled_recurring_runs(self, display_name: str | None = None) -> list[dict[str, Any]]:
        return [r for r in self.recurring.values() if r["mode"] == "ENABLE"
                and (display_name is None or r["display_name"] == display_name)]

    # ------------------------------------------------------------------ plumbing
    def _serve(self, h: BaseHTTPRequestHandler) -> None:
        parsed = urllib.parse.urlsplit(h.path)
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        self.requests.append((h.command, parsed.path))
        try:
            if parsed.path.startswith("/dex/") or parsed.path.startswith("/authservice/"):
                status, payload, headers = self._dex(h, parsed, body)
            else:
                self._authenticate(h, parsed)
                path = parsed.path.removeprefix("/pipeline")
                status, payload = self._route(h.command, path, urllib.parse.parse_qs(parsed.query), body, h)
                headers = {}
        except Reject as err:
            status, payload, headers = err.status, {"error": err.message, "code": err.status, "message": err.message}, err.headers
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        h.send_response(status)
        for key, value in headers.items():
            h.send_header(key, value)
        h.send_header("Content-Type", "text/html" if isinstance(payload, bytes) else "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    def _authenticate(self, h: BaseHTTPRequestHandler, parsed: urllib.parse.SplitResult) -> None:
        header = h.headers.get("Authorization", "")
        if self.auth == "bearer" and header != f"Bearer {self.bearer_token}":
            raise Reject(401, "Unauthorized: missing or wrong bearer token")
        if self.auth == "iap":
            claims = _jwt_claims(header.removeprefix("Bearer ").strip()) if header.startswith("Bearer ") else {}
            if claims.get("aud") != self.iap_client_id:
                raise Reject(401, "Invalid IAP credentials: ID token audience is not the OAuth client id")
        if self.auth == "dex":
            cookies = {k.strip(): v for k, _, v in (c.partition("=") for c in h.headers.get("Cookie", "").split(";"))}
            if cookies.get("authservice_session") not in self.sessions:
                state = secrets.token_hex(4)
                back = urllib.parse.quote(parsed.path, safe="")
                raise Reject(302, "login required", {"Location": f"/dex/auth?client_id=kubeflow-oidc-authservice"
                                                                 f"&state={state}&redirect_uri={back}"})

    def _dex(self, h: BaseHTTPRequestHandler, parsed: urllib.parse.SplitResult, body: bytes) -> tuple[int, Any, dict[str, str]]:
        query = urllib.parse.parse_qs(parsed.query)
        state = query.get("state", ["x"])[0]
        if parsed.path == "/dex/auth" and h.command == "GET":  # connector choice page
            return 200, b'<a href="/dex/auth/local?state=' + state.encode() + b'">Log in with Email</a>', {}
        if parsed.path == "/dex/auth/local" and h.command == "GET":
            return 302, b"", {"Location": f"/dex/auth/local/login?back=&state={state}"}
        if parsed.path == "/dex/auth/local/login" and h.command == "GET":
            return 200, b'<form method="post"><input name="login"/><input name="password"/></form>', {}
        if parsed.path == "/dex/auth/local/login" and h.command == "POST":
            form = urllib.parse.parse_qs(body.decode())
            if form.get("login") != [DEX_USER] or form.get("password") != [DEX_PASSWORD]:
                return 200, b'<form method="post"><div class="dex-error-box">Invalid Email Address and password.' \
                            b'</div><input name="login"/><input name="password"/></form>', {}
            code = secrets.token_hex(6)
            return 303, b"", {"Location": f"/dex/approval?req=x&state={state}&code={code}"}
        if parsed.path == "/dex/approval":
            return 303, b"", {"Location": f"/authservice/oidc/callback?code={query.get('code', [''])[0]}&state={state}"}
        if parsed.path == "/authservice/oidc/callback":
            session = f"MTY{secrets.token_hex(16)}"
            self.sessions.add(session)
            self.logins += 1
            return 302, b"", {"Location": "/", "Set-Cookie": f"authservice_session={session}; Path=/; HttpOnly"}
        raise Reject(404, f"no dex route {h.command} {parsed.path}")

    def _route(self, method: str, path: str, query: dict[str, list[str]], body: bytes,
               h: BaseHTTPRequestHandler) -> tuple[int, Any]:
        q = {k: v[0] for k, v in query.items()}
        routes = [
            ("GET", rf"{API}/healthz", lambda: (200, {"multi_user": False})),
            ("GET", r"/", lambda: (200, {"ok": True})),
            ("POST", rf"{API}/pipelines/upload", lambda: self._upload(q, body, h)),
            ("POST", rf"{API}/pipelines/upload_version", lambda: self._upload_version(q, body, h)),
            ("GET", rf"{API}/pipelines", lambda: self._list(self.pipelines, "pipelines", q)),
            ("GET", rf"{API}/pipelines/(?P<pid>[^/]+)/versions",
             lambda pid: self._list({k: v for k, v in self.versions.items() if v["pipeline_id"] == pid},
                                    "pipeline_versions", q)),
            ("POST", rf"{API}/experiments", lambda: self._create_experiment(body)),
            ("GET", rf"{API}/experiments", lambda: self._list(self.experiments, "experiments", q)),
            ("POST", rf"{API}/runs", lambda: self._create_run(body)),
            ("GET", rf"{API}/runs/(?P<rid>[^/:]+)", lambda rid: self._get_run(rid)),
            ("POST", rf"{API}/runs/(?P<rid>[^/:]+):terminate", lambda rid: self._terminate_run(rid, body)),
            ("GET", rf"{API}/runs", lambda: self._list(self._runs_in(q.get("experiment_id")), "runs", q)),
            ("POST", rf"{API}/recurringruns", lambda: self._create_recurring(body)),
            ("GET", rf"{API}/recurringruns", lambda: self._list_recurring(q)),
            ("GET", rf"{API}/recurringruns/(?P<rid>[^/:]+)", lambda rid: (200, self._recurring(rid))),
            ("POST", rf"{API}/recurringruns/(?P<rid>[^/:]+):disable", lambda rid: self._set_mode(rid, "DISABLE")),
            ("POST", rf"{API}/recurringruns/(?P<rid>[^/:]+):enable", lambda rid: self._set_mode(rid, "ENABLE")),
            ("DELETE", rf"{API}/recurringruns/(?P<rid>[^/:]+)", lambda rid: self._delete_recurring(rid)),
        ]
        for verb, pattern, fn in routes:
            match = re.fullmatch(pattern, path)
            if verb == method and match:
                with self._lock:
                    return fn(**match.groupdict())
        raise Reject(404, f"fake KFP has no route {method} {path}")

    def _new_id(self) -> str:
        return f"{next(self._ids):08d}-{secrets.token_hex(4)}"

    @staticmethod
    def _now() -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

    def _list(self, table: dict[str, dict[str, Any]], key: str, q: dict[str, str]) -> tuple[int, Any]:
        items = [dict(v) for v in table.values() if _matches(v, q.get("filter"))]
        size = int(q.get("page_size") or 10)
        start = int(q.get("page_token") or 0)
        page = items[start:start + size]
        result: dict[str, Any] = {key: page, "total_size": len(items)}
        if start + size < len(items):
            result["next_page_token"] = str(start + size)
        return 200, result

    # ------------------------------------------------------------------ pipelines
    def _package(self, body: bytes, h: BaseHTTPRequestHandler) -> str:
        """The ``uploadfile`` part of the multipart body, as the upload endpoints require."""
        head = f"Content-Type: {h.headers.get('Content-Type', '')}\r\n\r\n".encode()
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
        for part in message.iter_parts() if message.is_multipart() else []:
            if part.get_param("name", header="content-disposition") == "uploadfile":
                name = part.get_filename() or ""
                if not name.endswith((".yaml", ".yml", ".json", ".zip", ".tar.gz")):
                    raise Reject(400, f"unexpected package file name {name!r}")
                return bytes(part.get_payload(decode=True) or b"").decode()
        raise Reject(400, "multipart field 'uploadfile' is missing")

    def _upload(self, q: dict[str, str], body: bytes, h: BaseHTTPRequestHandler) -> tuple[int, Any]:
        spec = _spec_from_package(self._package(body, h))
        name = q.get("name") or spec["pipelineInfo"]["name"]
        if any(p["display_name"] == name for p in self.pipelines.values()):
            raise Reject(409, f"Failed to create a pipeline: pipeline with name {name!r} already exists")
        pid = self._new_id()
        self.pipelines[pid] = {"pipeline_id": pid, "display_name": name, "description": q.get("description", ""),
                               "created_at": self._now()}
        self._add_version(pid, name, spec, q.get("description", ""))
        return 200, self.pipelines[pid]

    def _upload_version(self, q: dict[str, str], body: bytes, h: BaseHTTPRequestHandler) -> tuple[int, Any]:
        pid = q.get("pipelineid")
        if pid not in self.pipelines:
            raise Reject(404, f"pipeline {pid} not found")
        spec = _spec_from_package(self._package(body, h))
        name = q.get("name") or ""
        if any(v["display_name"] == name and v["pipeline_id"] == pid for v in self.versions.values()):
            raise Reject(409, f"pipeline version {name!r} already exists")
        return 200, self._add_version(pid, name, spec, q.get("description", ""))

    def _add_version(self, pid: str, name: str, spec: dict[str, Any], description: str) -> dict[str, Any]:
        vid = self._new_id()
        self.versions[vid] = {"pipeline_id": pid, "pipeline_version_id": vid, "display_name": name,
                              "description": description, "created_at": self._now(), "pipeline_spec": spec}
        return self.versions[vid]

    # ------------------------------------------------------------------ experiments and runs
    def _create_experiment(self, body: bytes) -> tuple[int, Any]:
        data = _json(body)
        check_model(data, "V2beta1Experiment", "experiment")
        if any(e["display_name"] == data.get("display_name") for e in self.experiments.values()):
            raise Reject(409, "experiment already exists")
        eid = self._new_id()
        self.experiments[eid] = {**data, "experiment_id": eid, "created_at": self._now(), "storage_state": "AVAILABLE"}
        return 200, self.experiments[eid]

    def _check_job(self, data: dict[str, Any]) -> None:
        if data.get("experiment_id") not in self.experiments:
            raise Reject(400, f"experiment {data.get('experiment_id')!r} does not exist")
        reference = data.get("pipeline_version_reference") or {}
        if reference:
            version = self.versions.get(reference.get("pipeline_version_id", ""))
            if not version or version["pipeline_id"] != reference.get("pipeline_id"):
                raise Reject(400, f"pipeline version reference {reference} does not exist")
            spec = version["pipeline_spec"]
        elif data.get("pipeline_spec"):
            spec = _spec_from_package(json.dumps(data["pipeline_spec"]))
        else:
            raise Reject(400, "a run needs pipeline_version_reference or pipeline_spec")
        declared = (spec.get("root", {}).get("inputDefinitions", {}).get("parameters") or {})
        for name in ((data.get("runtime_config") or {}).get("parameters") or {}):
            if name not in declared:
                raise Reject(400, f"runtime parameter {name!r} is not an input of the pipeline")

    def _create_run(self, body: bytes) -> tuple[int, Any]:
        data = _json(body)
        check_model(data, "V2beta1Run", "run")
        self._check_job(data)
        rid = self._new_id()
        self.runs[rid] = {**data, "run_id": rid, "state": self.run_states[0], "created_at": self._now()}
        return 200, self.runs[rid]

    def _runs_in(self, experiment_id: str | None) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.runs.items() if not experiment_id or v.get("experiment_id") == experiment_id}

    def _terminate_run(self, rid: str, body: bytes) -> tuple[int, Any]:
        """As the server's TerminateRun: only PENDING/RUNNING/PAUSED runs move to CANCELING, else 400."""
        if body.strip() not in (b"", b"{}"):
            raise Reject(400, "terminate takes no body")
        if rid not in self.runs:
            raise Reject(404, f"run {rid} not found")
        if self.runs[rid]["state"] not in ("PENDING", "RUNNING", "PAUSED", "RUNTIME_STATE_UNSPECIFIED"):
            raise Reject(400, f"Failed to terminate a run {rid}. Row not found")
        self.runs[rid]["state"] = "CANCELING"
        self.terminated.add(rid)
        return 200, {}

    def _get_run(self, rid: str) -> tuple[int, Any]:
        if rid not in self.runs:
            raise Reject(404, f"run {rid} not found")
        if rid in self.terminated:
            self.runs[rid]["state"] = "CANCELED"
            self.runs[rid].setdefault("finished_at", self._now())
            return 200, self.runs[rid]
        polls = self._polls[rid] = self._polls.get(rid, 0) + 1
        self.runs[rid]["state"] = self.run_states[min(polls, len(self.run_states) - 1)]
        if self.runs[rid]["state"] in ("SUCCEEDED", "FAILED", "CANCELED"):
            self.runs[rid].setdefault("finished_at", self._now())
        return 200, self.runs[rid]

    def _create_recurring(self, body: bytes) -> tuple[int, Any]:
        data = _json(body)
        check_model(data, "V2beta1RecurringRun", "recurring_run")
        self._check_job(data)
        cron = ((data.get("trigger") or {}).get("cron_schedule") or {}).get("cron", "")
        if len(cron.split()) != 6:  # KFP's scheduled workflows use 6 fields: seconds first
            raise Reject(400, f"cron {cron!r}: KFP expects 6 fields (seconds minutes hours day month weekday)")
        time.sleep(self.create_delay)
        rid = self._new_id()
        self.recurring[rid] = {**data, "recurring_run_id": rid, "created_at": self._now(),
                               "status": "ENABLED" if data.get("mode") == "ENABLE" else "DISABLED"}
        return 200, self.recurring[rid]

    def _list_recurring(self, q: dict[str, str]) -> tuple[int, Any]:
        answer = self._list(self.recurring, "recurringRuns", q)
        if self.after_recurring_list:
            self.after_recurring_list.pop(0)()
        return answer

    def add_concurrent_recurring(self, display_name: str) -> str:
        """A newer recurring run of the same name, as another deploy racing this one would create."""
        with self._lock:
            model = next(r for r in self.recurring.values() if r["display_name"] == display_name)
            rid = self._new_id()
            self.recurring[rid] = {**model, "recurring_run_id": rid, "created_at": self._now()}
            return rid

    def _recurring(self, rid: str) -> dict[str, Any]:
        if rid not in self.recurring:
            raise Reject(404, f"recurring run {rid} not found")
        return self.recurring[rid]

    def _set_mode(self, rid: str, mode: str) -> tuple[int, Any]:
        self._recurring(rid)["mode"] = mode
        return 200, {}

    def _delete_recurring(self, rid: str) -> tuple[int, Any]:
        self._recurring(rid)
        del self.recurring[rid]
        return 200, {}


def _json(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body or b"{}")
    except ValueError as err:
        raise Reject(400, f"body is not JSON: {err}") from err
    if not isinstance(data, dict):
        raise Reject(400, "body must be a JSON object")
    return data


def _jwt_claims(token: str) -> dict[str, Any]:
    try:
        payload = token.split(".")[1]
        return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))
    except (IndexError, ValueError):
        return {}
