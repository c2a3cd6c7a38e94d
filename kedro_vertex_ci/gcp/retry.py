"""Bounded retries with exponential backoff for transient Google API failures.

Transient means HTTP 429/500/502/503/504 or a connection that dropped or reset; anything else (400, 403, 404,
409) is permanent and surfaces at once so that :mod:`.hints` can explain it. The client libraries' own retry
policies are switched off at our call sites (``retry=None``) so this is the one policy, and tests can count
requests.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """At most ``attempts`` calls; the n-th wait is ``base_delay * 2**n`` (jittered, capped at ``max_delay``)."""

    attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 8.0

    def delay(self, attempt: int) -> float:
        return float(min(self.max_delay, self.base_delay * (2**attempt)) * random.uniform(0.8, 1.0))


DEFAULT_POLICY = RetryPolicy()


def http_status(err: BaseException) -> int | None:
    """The HTTP status a google-api-core / google-cloud-storage error carries, if any."""
    code = getattr(err, "code", None)
    if isinstance(code, int) and type(err).__module__.startswith(("google.api_core", "google.cloud")):
        return int(code)
    return None


def is_transient(err: BaseException) -> bool:
    """True for errors worth retrying: rate limits, server errors and dropped connections."""
    status = http_status(err)
    if status is not None:
        return status in RETRYABLE_STATUS
    if isinstance(err, (ConnectionError, TimeoutError)):
        return True
    module = type(err).__module__
    if module.startswith(("requests", "urllib3")):
        import requests

        return isinstance(err, (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError,
                                requests.exceptions.Timeout))
    if module.startswith("google.auth"):
        from google.auth import exceptions

        if isinstance(err, exceptions.TransportError):
            return True
        return bool(getattr(err, "retryable", False)) or _auth_error_status(err) in RETRYABLE_STATUS
    return False


def _auth_error_status(err: BaseException) -> int | None:
    """google-auth puts the token endpoint's JSON answer in the error's args; find an HTTP code there."""
    import json

    for arg in err.args:
        if not isinstance(arg, str) or not arg.lstrip().startswith("{"):
            continue
        try:
            body = json.loads(arg)
        except ValueError:
            continue
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict) and isinstance(error.get("code"), int):
            return int(error["code"])
        if error in ("server_error", "temporarily_unavailable"):
            return 503
    return None


def call_with_retry(
    fn: Callable[[], T],
    *,
    what: str,
    policy: RetryPolicy = DEFAULT_POLICY,
    sleep: Callable[[float], None] = time.sleep,
    on_retry: Callable[[str, int, BaseException], None] | None = None,
) -> T:
    """Call ``fn`` until it succeeds, a permanent error occurs, or ``policy.attempts`` calls were made."""
    for attempt in range(policy.attempts):
        try:
            return fn()
        except Exception as err:
            if attempt + 1 >= policy.attempts or not is_transient(err):
                raise
            if on_retry is not None:
                on_retry(what, attempt + 1, err)
            sleep(policy.delay(attempt))
    raise AssertionError("unreachable: the loop returns or raises")
