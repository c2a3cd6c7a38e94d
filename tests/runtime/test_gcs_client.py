"""The gs:// client of the step runtime (kedro_vertex_ci/runtime/gcs.py) against the real gcp-storage-emulator,
directly and through a loopback proxy that injects the failures Cloud Storage has (5xx, lost answers, cut
downloads, dropped connections), plus the zstd binding's frame compatibility with zstandard's."""

from __future__ import annotations

import http.client
import io
import json
import pickle
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import numpy as np
import pytest

from kedro_vertex_ci.runtime import codec, gcs, zstdio
from kedro_vertex_ci.runtime.intermediate import IntermediateDataset

from .conftest import BUCKET

SMALL_CHUNK = 256 << 10  # the smallest chunk GCS allows: a 1.3 MB object takes five chunks


class FlakyProxy:
    """Forwards to the emulator; ``faults`` maps (method, nth request of that method) to a failure:
    ``503`` (answered without forwarding), ``lost`` (forwarded, then answered 503: the server did the work),
    ``cut`` (forwarded, the body cut after half), ``drop`` (connection closed without an answer)."""

    def __init__(self, upstream: str, faults: dict[tuple[str, int], str]):
        self.faults = faults
        self.seen: list[tuple[str, str]] = []
        self.authorization: list[str] = []
        counts: dict[str, int] = {}
        target = urlsplit(upstream)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _any(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                counts[self.command] = counts.get(self.command, 0) + 1
                fault = proxy.faults.get((self.command, counts[self.command]), "")
                proxy.seen.append((self.command, fault))
                proxy.authorization.append(self.headers.get("Authorization", ""))
                if fault == "drop":
                    self.close_connection = True
                    return
                if fault == "503":
                    return self._answer(503, {}, b'{"error": {"message": "try again"}}')
                upstream = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
                # Host kept: the emulator builds the resumable session's URL from it (back through us).
                headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
                upstream.request(self.command, self.path, body=body, headers=headers)
                answer = upstream.getresponse()
                data = answer.read()
                upstream.close()
                if fault == "lost":
                    return self._answer(503, {}, b"")
                keep = {k: v for k, v in answer.getheaders() if k.lower() not in ("content-length", "connection",
                                                                                 "transfer-encoding")}
                if fault == "cut":
                    self.send_response(answer.status)
                    for key, value in keep.items():
                        self.send_header(key, value)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data[: len(data) // 2])
                    self.close_connection = True
                    return
                return self._answer(answer.status, keep, data)

            def _answer(self, status: int, headers: dict[str, str], data: bytes) -> None:
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Retries without the waits; records each backoff's attempt number."""
    waits: list[int] = []
    monkeypatch.setattr(gcs, "_backoff", waits.append)
    return waits


@pytest.fixture
def flaky(gcs_emulator: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[FlakyProxy]:
    proxy = FlakyProxy(gcs_emulator, {})
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", proxy.url.removeprefix("http://"))  # host:port, as documented
    monkeypatch.setattr(gcs, "CHUNK", SMALL_CHUNK)
    try:
        yield proxy
    finally:
        proxy.close()


def _payload() -> bytes:
    return np.random.default_rng(14).integers(0, 256, 5 * SMALL_CHUNK + 12345, dtype=np.uint8).tobytes()


def test_chunked_upload_and_ranged_download_survive_every_kind_of_failure(flaky, no_backoff):
    fs, path, data = gcs.GcsFileSystem(), f"{BUCKET}/gcs-client/big.bin", _payload()
    # POST 1 starts the upload; the answer to chunk 2 (PUT 2) is lost after the server stored it (PUT 3 asks
    # how much it has); chunk 3 (PUT 4) is refused; its resend (PUT 6, after asking) loses its connection.
    # GETs: 1-2 exists, 3 info (its answer cut), 4 info again, 5-6 reads, 7 the big read (cut half-way).
    flaky.faults.update({("PUT", 2): "lost", ("PUT", 4): "503", ("PUT", 6): "drop",
                         ("GET", 3): "cut", ("GET", 7): "cut", ("GET", 8): "503"})
    out = fs.open(path, "wb")
    for start in range(0, len(data), 100_000):  # writes that straddle chunk boundaries
        out.write(data[start : start + 100_000])
    assert not fs.exists(path)  # nothing visible before close
    out.close()
    assert fs.exists(path) and int(fs.info(path)["size"]) == len(data)

    with fs.open(path, "rb", block_size=8 << 20) as source:
        assert source.size == len(data)
        assert source.read(10) == data[:10]
        source.seek(len(data) - 7)
        assert source.read() == data[-7:]
        source.seek(100)
        got = bytearray(len(data) - 100)
        assert source.readinto(got) == len(got)
    assert bytes(got) == data[100:]
    faults = [fault for _, fault in flaky.seen if fault]
    assert faults == ["lost", "503", "drop", "cut", "cut", "503"]  # each one happened, and was retried
    assert len(no_backoff) == 6


def test_a_discarded_upload_never_appears_and_missing_objects_are_file_not_found(flaky, no_backoff):
    fs, path = gcs.GcsFileSystem(), f"{BUCKET}/gcs-client/discarded.bin"
    out = fs.open(path, "wb")
    out.write(_payload())  # several chunks already sent
    out.discard()
    assert out.closed and not fs.exists(path)
    with pytest.raises(FileNotFoundError):
        fs.open(path, "rb")
    with pytest.raises(FileNotFoundError):
        fs.rm_file(path)


def test_a_client_error_is_not_retried_and_names_the_call(flaky, no_backoff):
    with pytest.raises(FileNotFoundError, match=r"POST http://.*/o/a/rewriteTo/b/no-such-bucket-kvc/o/b: HTTP 404"):
        gcs.GcsFileSystem().copy("no-such-bucket-kvc/a", "no-such-bucket-kvc/b")
    assert no_backoff == []


def test_retries_give_up_after_the_last_attempt(flaky, no_backoff):
    flaky.faults.update({("GET", n): "503" for n in range(1, gcs.ATTEMPTS + 1)})
    with pytest.raises(gcs.GcsError, match="HTTP 503: try again"):
        gcs.GcsFileSystem().exists(f"{BUCKET}/gcs-client/whatever")
    assert len(no_backoff) == gcs.ATTEMPTS - 1


def test_intermediate_dataset_round_trips_a_multi_chunk_object_through_the_flaky_store(flaky, no_backoff):
    array = np.random.default_rng(1).normal(size=300_000)  # 2.4 MB, compresses little: several chunks
    flaky.faults.update({("PUT", 3): "lost", ("GET", 2): "503"})
    dataset = IntermediateDataset.for_run(f"gs://{BUCKET}/gcs-client", "run", "arr")
    dataset.save(array)
    np.testing.assert_array_equal(IntermediateDataset.for_run(f"gs://{BUCKET}/gcs-client", "run", "arr").load(),
                                  array)
    assert [fault for _, fault in flaky.seen if fault] == ["lost", "503"]


def test_without_an_emulator_every_call_carries_the_application_default_credentials(
    flaky, no_backoff, monkeypatch, tmp_path
):
    """The Vertex path: google-auth's AuthorizedSession with ADC (here `gcloud auth application-default login`
    credentials refreshed at the loopback fake of Google's OAuth endpoint); the API base URL, which would be
    storage.googleapis.com, is pointed at the proxy in front of the emulator."""
    from tests.fakes.google import FakeGoogle

    fake = FakeGoogle().start()
    try:
        adc = tmp_path / "adc.json"
        adc.write_text(json.dumps({"type": "authorized_user", "client_id": "x", "client_secret": "y",
                                   "refresh_token": "1//refresh-SECRET", "token_uri": f"{fake.url}/token"}))
        monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(adc))
        # google-auth replaces a user file's token_uri with Google's, which would leave this machine.
        monkeypatch.setattr("google.oauth2.credentials._GOOGLE_OAUTH2_TOKEN_ENDPOINT", f"{fake.url}/token")
        monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "demo-project")
        monkeypatch.delenv("STORAGE_EMULATOR_HOST")
        monkeypatch.setattr(gcs, "API", flaky.url)
        monkeypatch.setattr(gcs, "_sessions", {})
        dataset = IntermediateDataset.for_run(f"gs://{BUCKET}/gcs-client-adc", "run", "x")
        dataset.save({"v": list(range(1000))})
        assert IntermediateDataset.for_run(f"gs://{BUCKET}/gcs-client-adc", "run", "x").load()["v"][-1] == 999
        issued = list(fake.issued_tokens)
    finally:
        fake.stop()
    assert len(issued) == 1 and flaky.authorization
    assert set(flaky.authorization) == {f"Bearer {issued[0]}"}


def test_emulator_host_without_scheme_is_http():
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("STORAGE_EMULATOR_HOST", "localhost:9023")
        assert gcs.endpoint() == "http://localhost:9023"
        patch.setenv("STORAGE_EMULATOR_HOST", "https://gcs.example:443/")
        assert gcs.endpoint() == "https://gcs.example:443"
        patch.delenv("STORAGE_EMULATOR_HOST")
        assert gcs.endpoint() == "https://storage.googleapis.com"


def _zstandard_writer(out, level, threads):
    """The binding before issue 14, configured as the codec used it."""
    import zstandard

    return zstandard.ZstdCompressor(level=level, threads=threads).stream_writer(out, closefd=False,
                                                                                write_size=codec.BLOCK_SIZE)


def test_files_written_with_the_zstandard_binding_still_read_and_vice_versa(monkeypatch):
    import zstandard

    obj = {"array": np.arange(400_000, dtype=np.int64), "text": "é" * 1000}
    with monkeypatch.context() as patch:
        patch.setattr(zstdio, "writer", _zstandard_writer)
        old = io.BytesIO()
        codec.dump(obj, old)
    restored = codec.load(io.BytesIO(old.getvalue()))
    np.testing.assert_array_equal(restored["array"], obj["array"])
    assert restored["text"] == obj["text"]

    frame = io.BytesIO()
    with zstdio.writer(frame, 1, -1) as stream:
        pickle.dump(obj, stream, protocol=5)
    with zstandard.ZstdDecompressor().stream_reader(io.BytesIO(frame.getvalue())) as reader:
        assert pickle.load(reader)["text"] == obj["text"]
