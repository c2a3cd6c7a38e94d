"""The few Cloud Storage calls a step makes on a ``gs://`` pipeline root, over the JSON API with google-auth's
``AuthorizedSession`` (requests, which Kedro already installs).

Why not gcsfs: with google-cloud-storage, grpcio, protobuf and aiohttp it added ~65 MB to every project
image that Vertex pulls once per step (issue 14, ``docs/benchmarks.md`` measure 4), for five calls. The
object offers the small fsspec subset :mod:`kedro_vertex_ci.runtime.intermediate` uses (``open``, ``exists``,
``copy``, ``rm``, ``rm_file``, with ``bucket/name`` paths), so the dataset code is the same for both.

- Uploads stream: objects up to one chunk (16 MiB) go in one request; larger ones through a resumable upload
  in 16 MiB chunks, resumed from the offset the server persisted after an error. Memory: one chunk.
- Downloads stream from the read position with one ranged GET, pinned to the object's generation; a broken
  connection reopens at the current position; a seek drops the stream.
- Every request is retried with exponential backoff and jitter on 408, 429, 5xx and connection errors.
- ``STORAGE_EMULATOR_HOST`` (the variable google-cloud-storage honours) points every call at an emulator,
  without credentials (looking for some could probe the metadata server).
"""

from __future__ import annotations

import io
import os
import random
import re
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

API = "https://storage.googleapis.com"
SCOPE = "https://www.googleapis.com/auth/devstorage.read_write"
CHUNK = 16 << 20  # resumable chunks must be multiples of 256 KiB
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
ATTEMPTS = 7  # 0.5 + 1 + 2 + 4 + 8 + 16 s of backoff at most, about half a minute
READ_BUFFER = 256 << 10
TIMEOUT = (20, 120)  # connect, read (seconds)

_sessions: dict[bool, Any] = {}  # keyed by "talks to an emulator"
_session_lock = threading.Lock()


class GcsError(OSError):
    """Cloud Storage answered with an error that retrying did not cure."""


def endpoint() -> str:
    """The API's base URL: the emulator's when ``STORAGE_EMULATOR_HOST`` is set."""
    host = os.environ.get("STORAGE_EMULATOR_HOST", "").rstrip("/")
    if not host:
        return API
    return host if "://" in host else f"http://{host}"


def session() -> Any:
    """One HTTP session per process: authorised with the application default credentials, or none for an
    emulator."""
    emulator = bool(os.environ.get("STORAGE_EMULATOR_HOST"))
    with _session_lock:
        if emulator not in _sessions:
            import requests

            if emulator:
                _sessions[emulator] = requests.Session()
            else:
                import google.auth
                from google.auth.transport.requests import AuthorizedSession

                credentials, _ = google.auth.default(scopes=[SCOPE])
                _sessions[emulator] = AuthorizedSession(credentials)
        return _sessions[emulator]


def _backoff(attempt: int) -> None:
    time.sleep(min(16.0, 0.5 * 2**attempt) * (0.5 + random.random() / 2))


def _connection_errors() -> tuple[type[BaseException], ...]:
    """What a dropped, reset, timed-out or cut-off connection raises (through requests, or from urllib3 and
    http.client directly when a download's body is read)."""
    import http.client

    import requests
    import urllib3.exceptions

    return (
        requests.ConnectionError,
        requests.Timeout,
        requests.exceptions.ChunkedEncodingError,  # the answer's body was cut off
        urllib3.exceptions.HTTPError,  # ProtocolError, ReadTimeoutError, IncompleteRead, ...
        http.client.HTTPException,
        ConnectionError,
    )


def request(method: str, url: str, ok: Callable[[int], bool] = lambda s: s < 300, **kwargs: Any) -> Any:
    """``session().request`` retried on 408/429/5xx and connection errors; :class:`GcsError` when the final
    answer is not ``ok``. ``kwargs`` must be replayable (bytes bodies, not streams)."""
    errors = _connection_errors()
    for attempt in range(ATTEMPTS):
        try:
            response = session().request(method, url, timeout=TIMEOUT, **kwargs)
        except errors as err:
            if attempt == ATTEMPTS - 1:
                raise GcsError(f"{method} {_short(url)}: {err}") from err
            _backoff(attempt)
            continue
        if ok(response.status_code):
            return response
        if response.status_code not in RETRY_STATUSES or attempt == ATTEMPTS - 1:
            raise _error(method, url, response)
        response.close()
        _backoff(attempt)
    raise AssertionError("unreachable")


def _short(url: str) -> str:
    return url.split("?", 1)[0]


def _error(method: str, url: str, response: Any) -> OSError:
    try:
        message = response.json()["error"]["message"]
    except Exception:  # noqa: BLE001 — not the JSON API's error shape: show the start of the body
        message = response.text[:200]
    text = f"{method} {_short(url)}: HTTP {response.status_code}: {message}"
    if response.status_code == 404:
        return FileNotFoundError(text)
    return GcsError(text)


def split(path: str) -> tuple[str, str]:
    """``bucket/name`` (or ``gs://bucket/name``) → (bucket, name)."""
    path = re.sub(r"^(gs|gcs)://", "", path)
    bucket, _, name = path.partition("/")
    if not bucket or not name:
        raise ValueError(f"not a Cloud Storage object path: {path!r} (want bucket/name)")
    return bucket, name


def _object_url(bucket: str, name: str, prefix: str = "") -> str:
    return f"{endpoint()}{prefix}/storage/v1/b/{quote(bucket, safe='')}/o/{quote(name, safe='')}"


class GcsFileSystem:
    """The fsspec calls the intermediate dataset makes, on ``bucket/name`` paths."""

    def info(self, path: str) -> dict[str, Any]:
        """The object's metadata (``size`` as a string, ``generation``); FileNotFoundError when absent."""
        return dict(request("GET", _object_url(*split(path))).json())

    def exists(self, path: str) -> bool:
        response = request("GET", _object_url(*split(path)), ok=lambda s: s < 300 or s == 404)
        return bool(response.status_code != 404)

    def open(self, path: str, mode: str = "rb", block_size: int = CHUNK) -> Any:
        if mode == "rb":
            meta = self.info(path)
            # A small buffer: a seek drops the stream and what the buffer prefetched (header → footer);
            # large reads (the codec's 1 MiB blocks) bypass it and stream straight into the caller's memory.
            buffer_size = min(block_size, READ_BUFFER)
            return _Reader(_Download(path, int(meta["size"]), str(meta["generation"])), buffer_size)
        if mode == "wb":
            return _Upload(path)
        raise ValueError(f"mode {mode!r}: only 'rb' and 'wb'")

    def copy(self, source: str, target: str) -> None:
        """Server-side copy (rewrite, repeated until done: large objects may take several calls)."""
        (src_bucket, src), (dst_bucket, dst) = split(source), split(target)
        url = f"{_object_url(src_bucket, src)}/rewriteTo/b/{quote(dst_bucket, safe='')}/o/{quote(dst, safe='')}"
        params: dict[str, str] = {}
        while True:
            answer = request("POST", url, params=params, json={}).json()
            if answer.get("done"):
                return
            params["rewriteToken"] = answer["rewriteToken"]

    def rm_file(self, path: str) -> None:
        request("DELETE", _object_url(*split(path)))

    rm = rm_file


class _Download(io.RawIOBase):
    """A seekable view of one object generation, streamed by ranged GETs."""

    def __init__(self, path: str, size: int, generation: str):
        super().__init__()
        bucket, name = split(path)
        self._url = _object_url(bucket, name, prefix="/download")
        self._generation = generation
        self.size = size
        self._position = 0
        self._response: Any = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self.size}[whence]
        position = max(0, base + offset)
        if position != self._position:
            self._drop()
            self._position = position
        return position

    def readinto(self, buffer: Any) -> int:
        target = memoryview(buffer).cast("B")
        want = min(len(target), self.size - self._position)
        if want <= 0:
            return 0
        errors = _connection_errors()
        for attempt in range(ATTEMPTS):
            try:
                if self._response is None:
                    self._open()
                got = self._response.raw.readinto(target[:want])
                if got:
                    self._position += got
                    return int(got)
                failure: BaseException = GcsError("the download ended early")
            except errors as err:
                failure = err
            self._drop()
            if attempt == ATTEMPTS - 1:
                raise GcsError(f"GET {self._url}: {failure}") from failure
            _backoff(attempt)
        raise AssertionError("unreachable")

    def _open(self) -> None:
        self._response = request(
            "GET",
            self._url,
            params={"alt": "media", "generation": self._generation},
            headers={"Range": f"bytes={self._position}-{self.size - 1}", "Accept-Encoding": "identity"},
            stream=True,
        )

    def _drop(self) -> None:
        if self._response is not None:
            self._response.close()
            self._response = None

    def close(self) -> None:
        self._drop()
        super().close()


class _Reader(io.BufferedReader):
    """The buffered download, with fsspec's ``size`` attribute."""

    def __init__(self, raw: _Download, buffer_size: int):
        super().__init__(raw, buffer_size=buffer_size)
        self.size = raw.size


class _Upload:
    """A write-only object: one request when it stays within a chunk, else a resumable upload in chunks.

    Nothing is visible under the name before :meth:`close` returns; :meth:`discard` abandons it.
    """

    def __init__(self, path: str):
        self._bucket, self._name = split(path)
        self._buffer = bytearray()
        self._offset = 0  # bytes the server has persisted (the buffer starts there)
        self._session_url: str | None = None
        self.closed = False

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        if self.closed:
            raise ValueError("write to a closed upload")
        view = memoryview(data).cast("B")
        self._buffer += view
        while len(self._buffer) >= CHUNK:
            self._send(CHUNK, total=None)
        return len(view)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        if self.closed:
            return
        if self._session_url is None:
            request(
                "POST",
                f"{endpoint()}/upload/storage/v1/b/{quote(self._bucket, safe='')}/o",
                params={"uploadType": "media", "name": self._name},
                data=bytes(self._buffer),
                headers={"Content-Type": "application/octet-stream"},
            )
        else:
            total = self._offset + len(self._buffer)
            for _ in range(3):  # a 308 after the last byte: ask once more, which completes the object
                if self._send(len(self._buffer), total=total):
                    break
            else:
                raise GcsError(f"gs://{self._bucket}/{self._name}: the server never completed the upload")
        self._buffer = bytearray()
        self.closed = True

    def discard(self) -> None:
        """Abandon the upload: the object is never created."""
        if self._session_url is not None and not self.closed:
            try:
                session().delete(self._session_url, timeout=TIMEOUT)
            except Exception:  # noqa: BLE001 — an unfinished session expires by itself after a week
                pass
        self._buffer = bytearray()
        self.closed = True

    def _start(self) -> str:
        response = request(
            "POST",
            f"{endpoint()}/upload/storage/v1/b/{quote(self._bucket, safe='')}/o",
            params={"uploadType": "resumable", "name": self._name},
            json={"name": self._name},
            headers={"X-Upload-Content-Type": "application/octet-stream"},
        )
        return str(response.headers["Location"])

    def _send(self, size: int, total: int | None) -> bool:
        """Send the buffer's first ``size`` bytes; True when the object is complete. Resumes from what the
        server persisted after a retryable failure."""
        if self._session_url is None:
            self._session_url = self._start()
        errors = _connection_errors()
        end = self._offset + size
        total_text = "*" if total is None else str(total)
        for attempt in range(ATTEMPTS):
            if total is None and self._offset >= end:
                return False
            span = f"{self._offset}-{end - 1}" if end > self._offset else "*"
            try:
                response = session().put(
                    self._session_url,
                    data=bytes(self._buffer[: end - self._offset]),
                    headers={"Content-Range": f"bytes {span}/{total_text}"},
                    timeout=TIMEOUT,
                )
            except errors:
                response = None
            if response is not None and response.status_code in (200, 201):
                self._advance(end)
                return True
            if response is not None and response.status_code == 308:
                self._advance(_persisted(response))
                if self._offset >= end:
                    return False
                continue  # the server kept less than was sent: send the rest
            if response is not None and response.status_code not in RETRY_STATUSES:
                raise _error("PUT", self._session_url, response)
            if attempt == ATTEMPTS - 1:
                break
            _backoff(attempt)
            if self._query_status(total_text):
                self._advance(end)
                return True
        raise GcsError(f"resumable upload of gs://{self._bucket}/{self._name} failed at byte {self._offset}")

    def _query_status(self, total_text: str) -> bool:
        """Ask how much the server has (True: the object is complete); moves the offset there."""
        assert self._session_url is not None
        try:
            response = session().put(
                self._session_url, headers={"Content-Range": f"bytes */{total_text}"}, timeout=TIMEOUT
            )
        except _connection_errors():
            return False
        if response.status_code in (200, 201):
            return True
        if response.status_code == 308:
            self._advance(_persisted(response))
        return False

    def _advance(self, persisted: int) -> None:
        if persisted < self._offset:
            raise GcsError(f"the server lost bytes of gs://{self._bucket}/{self._name} it had confirmed")
        del self._buffer[: persisted - self._offset]
        self._offset = persisted


def _persisted(response: Any) -> int:
    """Bytes persisted, from a 308's ``Range: bytes=0-N`` (absent: none)."""
    found = re.fullmatch(r"bytes=0-(\d+)", response.headers.get("Range", ""))
    return int(found.group(1)) + 1 if found else 0
