"""A small GitHub REST client (stdlib only) for the one thing the action writes: its sticky PR comment.

The base URL comes from ``GITHUB_API_URL`` (GitHub Enterprise, and the loopback fake in tests). The client
never reads the environment and never prints; errors become :class:`~kedro_vertex_ci.errors.CloudError`
without the token in them.

Two behaviours of api.github.com shape it: a comment just created may be missing from the next list call
(read-after-write lag), so the create response is trusted over the list; and rate limits (primary:
``x-ratelimit-remaining: 0`` with ``x-ratelimit-reset``; secondary: 403/429 with ``retry-after``) are waited
out within a bounded total, and never reported as a permission problem.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kedro_vertex_ci.errors import CloudError

_NEXT_LINK = re.compile(r'<([^>]+)>\s*;\s*rel="next"')
_RETRY_STATUS = {429, 500, 502, 503, 504}
MAX_RATE_LIMIT_WAIT = 120.0  # seconds a run may spend waiting out GitHub's rate limits in total


def comment_marker(pipeline: str, working_directory: str = ".") -> str:
    """The hidden HTML marker that identifies our comment for one pipeline (of one project) on a PR."""
    where = "" if working_directory in ("", ".", "./") else f" project={working_directory.strip('/')}"
    return f"<!-- kedro-vertex-ci pipeline={pipeline}{where} -->"


@dataclass(frozen=True)
class Comment:
    id: int
    body: str
    created_at: str


class GitHubClient:
    """Issue comments and commit→PR lookups for one repository."""

    def __init__(
        self,
        api_url: str,
        token: str,
        repository: str,
        *,
        timeout: float = 30.0,
        retries: int = 3,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        max_rate_limit_wait: float = MAX_RATE_LIMIT_WAIT,
    ):
        self.api_url = api_url.rstrip("/")
        self._token = token
        self.repository = repository
        self.timeout = timeout
        self.retries = retries
        self._sleep = sleep
        self._clock = clock
        self._rate_limit_budget = max_rate_limit_wait

    def list_comments(self, issue: int) -> list[Comment]:
        """Every comment on the issue/PR, following ``Link: rel="next"`` pages."""
        url: str | None = f"{self.api_url}/repos/{self.repository}/issues/{issue}/comments?per_page=100"
        comments: list[Comment] = []
        while url:
            data, headers = self._request("GET", url)
            comments += [Comment(int(c["id"]), c.get("body") or "", c.get("created_at") or "") for c in data]
            url = _next_page(headers.get("Link", ""))
        return comments

    def create_comment(self, issue: int, body: str) -> Comment:
        data, _ = self._request("POST", f"{self._repo_url()}/issues/{issue}/comments", {"body": body})
        return Comment(int(data["id"]), data.get("body") or body, data.get("created_at") or "")

    def update_comment(self, comment_id: int, body: str) -> None:
        self._request("PATCH", f"{self._repo_url()}/issues/comments/{comment_id}", {"body": body})

    def delete_comment(self, comment_id: int) -> bool:
        """Delete a comment; False when it is already gone (another run deleted it first)."""
        try:
            self._request("DELETE", f"{self._repo_url()}/issues/comments/{comment_id}")
        except _NotFound:
            return False
        return True

    def pull_requests_for_commit(self, sha: str) -> list[int]:
        """Open PRs whose head is this commit (how a branch push finds its PR)."""
        data, _ = self._request("GET", f"{self._repo_url()}/commits/{sha}/pulls")
        return [int(pr["number"]) for pr in data if pr.get("state", "open") == "open"]

    def upsert_sticky_comment(self, issue: int, marker: str, body: str) -> int:
        """Keep exactly one comment carrying ``marker`` on the PR, with ``body``; returns its id.

        The oldest marked comment wins. When two runs race (both list, find none, both create), each lists
        again after creating, deletes the later duplicates and writes the oldest, so one comment remains.
        """
        text = body if marker in body else f"{marker}\n{body}"
        for _attempt in range(3):
            marked = self._marked(issue, marker)
            if not marked:
                created = self.create_comment(issue, text)
                # The list may not show our comment yet (read-after-write lag): it counts as listed.
                listed = self._marked(issue, marker)
                marked = sorted({c.id: c for c in [*listed, created]}.values(), key=lambda c: (c.created_at, c.id))
            keep, duplicates = marked[0], marked[1:]
            for duplicate in duplicates:
                self.delete_comment(duplicate.id)
            try:
                if keep.body != text:
                    self.update_comment(keep.id, text)
                return keep.id
            except _NotFound:
                continue  # a racing run deleted it a moment ago: look again
        raise CloudError(f"could not keep a single PR comment on #{issue} of {self.repository} (comments kept vanishing)")

    def _marked(self, issue: int, marker: str) -> list[Comment]:
        return sorted((c for c in self.list_comments(issue) if marker in c.body), key=lambda c: (c.created_at, c.id))

    def _repo_url(self) -> str:
        return f"{self.api_url}/repos/{self.repository}"

    def _request(self, method: str, url: str, body: dict[str, Any] | None = None) -> tuple[Any, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("Accept", "application/vnd.github+json")
        request.add_header("X-GitHub-Api-Version", "2022-11-28")
        request.add_header("User-Agent", "kedro-vertex-ci-action")
        request.add_header("Authorization", f"Bearer {self._token}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        attempt = 0
        while True:
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    raw = response.read()
                    return (json.loads(raw) if raw else None), response.headers
            except urllib.error.HTTPError as err:
                if err.code == 404:
                    raise _NotFound(url) from None
                body = err.read()
                wait = rate_limit_wait(err.code, err.headers, body, self._clock())
                if wait is not None:
                    self._wait_out_rate_limit(method, url, wait)
                    continue
                if err.code in _RETRY_STATUS and attempt < self.retries:
                    self._sleep(min(2**attempt, 10))
                    attempt += 1
                    continue
                raise CloudError(_explain(method, url, err.code, body)) from None
            except (urllib.error.URLError, ConnectionError, TimeoutError) as err:
                if attempt < self.retries:
                    self._sleep(min(2**attempt, 10))
                    attempt += 1
                    continue
                raise CloudError(f"GitHub API {method} {url} failed: {getattr(err, 'reason', err)}") from None

    def _wait_out_rate_limit(self, method: str, url: str, wait: float) -> None:
        """Sleep until GitHub allows the next call, or give up (clearly) once the total wait is used up."""
        if wait > self._rate_limit_budget:
            raise CloudError(
                f"GitHub API {method} {url}: rate limited for another {wait:.0f} s, beyond the "
                f"{MAX_RATE_LIMIT_WAIT:.0f} s this run may wait (this is not a permission problem; "
                "GitHub's limits reset within the hour)"
            )
        self._rate_limit_budget -= wait
        self._sleep(wait)


def rate_limit_wait(status: int, headers: Any, body: bytes, now: float) -> float | None:
    """Seconds to wait when a response is a rate limit (primary or secondary), else None.

    GitHub answers 403 or 429 for both: ``retry-after`` (seconds) when it says how long, else
    ``x-ratelimit-remaining: 0`` with ``x-ratelimit-reset`` (epoch seconds); a secondary limit without
    either header asks for at least a minute.
    """
    if status not in (403, 429):
        return None
    retry_after = _header_number(headers, "retry-after")
    if retry_after is not None:
        return max(retry_after, 0.0)
    if headers.get("x-ratelimit-remaining") == "0":
        reset = _header_number(headers, "x-ratelimit-reset")
        return max((reset or now) - now, 0.0) + 1.0
    if b"secondary rate limit" in body.lower() or status == 429:
        return 60.0
    return None


def _header_number(headers: Any, name: str) -> float | None:
    value = headers.get(name) if headers is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


class _NotFound(CloudError):
    pass


def _next_page(link_header: str) -> str | None:
    match = _NEXT_LINK.search(link_header or "")
    return match.group(1) if match else None


def _explain(method: str, url: str, status: int, raw: bytes) -> str:
    try:
        message = json.loads(raw).get("message", "")
    except (ValueError, AttributeError):
        message = ""
    hint = ""
    if status in (401, 403):
        hint = (
            " — the job needs `permissions: pull-requests: write` (fork PRs only get a read-only token), "
            "and `github-token` must be the workflow's token"
        )
    return f"GitHub API {method} {url} answered {status} {message}{hint}".rstrip()

