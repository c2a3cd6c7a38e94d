"""A fake GitHub REST API on 127.0.0.1: issue comments (paginated with Link headers) and commit→PR lookups.

It records every request (method, path, Authorization header, JSON body) and checks the bearer token, so
tests assert on what the action really sent over HTTP. ``list_barrier`` makes concurrent runs list comments
in lockstep, which reproduces the create/create race deterministically.

Two behaviours of api.github.com are reproduced on demand: ``list_lag`` hides a newly created comment from
the next N list calls (read-after-write lag), and ``rate_limit`` answers the next requests the way GitHub's
primary limit (403, ``x-ratelimit-remaining: 0``, ``x-ratelimit-reset``) or secondary limit (403 or 429
with ``retry-after``) does.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

_COMMENTS = re.compile(r"^/repos/(?P<repo>[^/]+/[^/]+)/issues/(?P<issue>\d+)/comments$")
_COMMENT = re.compile(r"^/repos/(?P<repo>[^/]+/[^/]+)/issues/comments/(?P<id>\d+)$")
_COMMIT_PULLS = re.compile(r"^/repos/(?P<repo>[^/]+/[^/]+)/commits/(?P<sha>[0-9a-fA-F]+)/pulls$")


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    authorization: str | None
    body: Any


@dataclass
class GitHubState:
    token: str
    comments: dict[int, list[dict[str, Any]]] = field(default_factory=dict)  # issue -> comments
    commit_pulls: dict[str, list[int]] = field(default_factory=dict)  # sha -> open PR numbers
    requests: list[Recorded] = field(default_factory=list)
    list_barrier: threading.Barrier | None = None  # the first `parties` list calls meet here, then none
    barrier_waits: int = 0
    list_lag: int = 0  # a new comment stays invisible to this many list calls
    hidden: dict[int, int] = field(default_factory=dict)  # comment id -> list calls it stays hidden for
    rate_limited: list[tuple[str, int]] = field(default_factory=list)  # (primary|secondary|secondary429, s)
    _next_id: int = 1000
    _clock: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add_comment(self, issue: int, body: str, user: str = "github-actions[bot]") -> dict[str, Any]:
        with self.lock:
            self._next_id += 1
            self._clock += 1
            comment = {
                "id": self._next_id,
                "body": body,
                "user": {"login": user},
                "created_at": f"2026-01-01T00:{self._clock // 60:02d}:{self._clock % 60:02d}Z",
            }
            self.comments.setdefault(issue, []).append(comment)
            if self.list_lag:
                self.hidden[comment["id"]] = self.list_lag
            return comment

    def rate_limit(self, kind: str, seconds: int, times: int = 1) -> None:
        """Answer the next ``times`` requests with a ``kind`` rate limit lasting ``seconds``."""
        with self.lock:
            self.rate_limited += [(kind, seconds)] * times

    def find(self, comment_id: int) -> tuple[int, dict[str, Any]] | None:
        for issue, comments in self.comments.items():
            for comment in comments:
                if comment["id"] == comment_id:
                    return issue, comment
        return None


class _Handler(BaseHTTPRequestHandler):
    server: FakeGitHub  # type: ignore[assignment]

    def log_message(self, *args: Any) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def _handle(self, method: str) -> None:
        state = self.server.state
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        auth = self.headers.get("Authorization")
        with state.lock:
            state.requests.append(Recorded(method, split.path, parse_qs(split.query), auth, body))
        if auth != f"Bearer {state.token}":
            self._send(401, {"message": "Bad credentials"})
            return
        with state.lock:
            limit = state.rate_limited.pop(0) if state.rate_limited else None
        if limit is not None:
            self._send_rate_limit(*limit)
            return
        if method == "GET" and (m := _COMMENTS.match(split.path)):
            self._list(int(m["issue"]), parse_qs(split.query))
        elif method == "POST" and (m := _COMMENTS.match(split.path)):
            self._send(201, state.add_comment(int(m["issue"]), body["body"]))
        elif method in ("PATCH", "DELETE") and (m := _COMMENT.match(split.path)):
            self._edit(method, int(m["id"]), body)
        elif method == "GET" and (m := _COMMIT_PULLS.match(split.path)):
            numbers = state.commit_pulls.get(m["sha"], [])
            self._send(200, [{"number": n, "state": "open"} for n in numbers])
        else:
            self._send(404, {"message": "Not Found"})

    def _list(self, issue: int, query: dict[str, list[str]]) -> None:
        state = self.server.state
        barrier = state.list_barrier
        if barrier is not None:
            with state.lock:  # only each run's first list waits: later lists must not pair up by chance
                first = state.barrier_waits < barrier.parties
                state.barrier_waits += 1
            if first:
                barrier.wait()
        per_page = int(query.get("per_page", ["30"])[0])
        page = int(query.get("page", ["1"])[0])
        with state.lock:
            comments = [c for c in state.comments.get(issue, []) if not state.hidden.get(c["id"])]
            for comment_id, left in list(state.hidden.items()):
                if left <= 1:
                    del state.hidden[comment_id]
                else:
                    state.hidden[comment_id] = left - 1
        chunk = comments[(page - 1) * per_page : page * per_page]
        headers = {}
        if page * per_page < len(comments):
            host, port = self.server.server_address[:2]
            next_url = f"http://{host}:{port}{urlsplit(self.path).path}?per_page={per_page}&page={page + 1}"
            headers["Link"] = f'<{next_url}>; rel="next"'
        self._send(200, chunk, headers)

    def _edit(self, method: str, comment_id: int, body: Any) -> None:
        state = self.server.state
        with state.lock:
            found = state.find(comment_id)
            if found is None:
                self._send(404, {"message": "Not Found"})
                return
            issue, comment = found
            if method == "DELETE":
                state.comments[issue].remove(comment)
            else:
                comment["body"] = body["body"]
        if method == "DELETE":
            self._send(204, None)
        else:
            self._send(200, comment)

    def _send_rate_limit(self, kind: str, seconds: int) -> None:
        if kind == "primary":
            headers = {"x-ratelimit-limit": "5000", "x-ratelimit-remaining": "0",
                       "x-ratelimit-reset": str(int(time.time()) + seconds)}
            self._send(403, {"message": "API rate limit exceeded for installation ID 1."}, headers)
        else:
            self._send(429 if kind == "secondary429" else 403,
                       {"message": "You have exceeded a secondary rate limit. Please wait a few minutes before "
                                   "you try again."}, {"retry-after": str(seconds)})

    def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        raw = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(raw)


class FakeGitHub(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, token: str):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = GitHubState(token=token)
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeGitHub:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()

    def calls(self, method: str | None = None) -> list[Recorded]:
        return [r for r in self.state.requests if method is None or r.method == method]
