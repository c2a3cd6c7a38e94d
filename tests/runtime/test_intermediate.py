"""IntermediateDataset, codec and name escaping, in process: round trips, atomic writes, clear errors."""

from __future__ import annotations

import gc
import gzip
import io
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xxhash
from kedro.io import DatasetError

from kedro_vertex_ci.runtime import codec
from kedro_vertex_ci.runtime.intermediate import (
    DamagedIntermediateError,
    IntermediateDataset,
    MissingIntermediateError,
    dataset_path,
    escape_name,
    unescape_name,
)

from .conftest import BUCKET


class ExplodesWhenPickled:
    def __reduce__(self):
        raise RuntimeError("cannot pickle this")


def _half_writable() -> list:
    """Pickling writes ~40 MB of array into the stream, then fails: a writer must not publish that."""
    return [np.arange(5_000_000, dtype=np.float64), ExplodesWhenPickled()]


@pytest.mark.parametrize(
    "name",
    ["plain", "ns.sub.name", "odd:set/x", "..", ".hidden", "100% sure", "ünï code", "a%2Fb", "x@pandas"],
)
def test_escaped_names_are_single_safe_components_and_reversible(name):
    escaped = escape_name(name)
    assert "/" not in escaped and ":" not in escaped and not escaped.startswith(".")
    assert unescape_name(escaped) == name


def test_distinct_names_never_share_a_file():
    names = ["a/b", "a%2Fb", "a:b", "a%3Ab", "A/b"]
    assert len({escape_name(n) for n in names}) == len(names)


def test_layout_is_root_folder_run_dataset():
    assert dataset_path("gs://b/root/", "run 1", "odd:x") == "gs://b/root/kedro-vertex-ci/run%201/odd%3Ax.bin"


def test_codec_round_trips_pandas_and_numpy_and_rejects_foreign_bytes():
    frame = pd.DataFrame({"x": np.arange(1000), "c": pd.Categorical(["a", "b"] * 500)})
    buffer = io.BytesIO()
    codec.dump({"frame": frame, "array": np.eye(3), "fn": lambda v: v + 1}, buffer)
    buffer.seek(0)
    loaded = codec.load(buffer)
    pd.testing.assert_frame_equal(loaded["frame"], frame)
    assert loaded["fn"](1) == 2  # cloudpickle: lambdas travel too

    with pytest.raises(codec.CodecError, match="not a kedro-vertex-ci intermediate file"):
        codec.load(io.BytesIO(b"BZh91AY&SY..."))
    truncated = io.BytesIO(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with pytest.raises(codec.DamagedError, match="truncated"):
        codec.load(truncated)


@pytest.mark.parametrize("compress", [True, False])
def test_both_formats_round_trip_with_every_memory_layout(compress):
    objects = [
        pd.DataFrame({"x": np.arange(300_000), "y": np.linspace(0, 1, 300_000)}),
        np.asfortranarray(np.arange(600_000, dtype=np.float64).reshape(-1, 3)),  # F order: raw() path
        np.arange(10)[::2],  # not contiguous: numpy pickles a copy
        b"\x00" * (3 * codec.BLOCK_SIZE + 5),  # exactly across block boundaries
        [],
        "",
    ]
    for obj in objects:
        buffer = io.BytesIO()
        codec.dump(obj, buffer, compress=compress, meta={"dataset": "d"})
        assert buffer.getvalue()[:4] == codec.MAGIC and buffer.getvalue()[4] == (1 if compress else 0)
        buffer.seek(0)
        loaded = codec.load(buffer)
        if isinstance(obj, pd.DataFrame):
            pd.testing.assert_frame_equal(loaded, obj)
        elif isinstance(obj, np.ndarray):
            np.testing.assert_array_equal(loaded, obj)
        else:
            assert loaded == obj
        assert codec.read_meta(buffer) == {"dataset": "d"}


class Explodes:
    """Unpickling this runs code: what a damaged or forged stream could do."""

    def __reduce__(self):
        return (os._exit, (93,))


def _damage_cases(data: bytes) -> dict[str, bytes]:
    """Flipped bits everywhere (header, payload blocks, footer), truncations, extension, garbage."""
    rng = np.random.default_rng(7)
    cases = {}
    for position in [
        0,
        5,
        9,
        20,
        *rng.integers(40, len(data) - 40, 12).tolist(),
        len(data) - 30,
        len(data) - 1,
    ]:
        for bit in (0, 7):
            damaged = bytearray(data)
            damaged[position] ^= 1 << bit
            cases[f"flip byte {position} bit {bit}"] = bytes(damaged)
    for cut in [1, 4, 17, len(data) // 3, len(data) - 33, len(data) - 1]:
        cases[f"truncated to {cut}"] = data[:cut]
    cases["empty"] = b""
    cases["extended"] = data + b"\x00"
    cases["garbage"] = rng.integers(0, 256, len(data), dtype=np.uint8).tobytes()
    cases["garbage with our magic"] = codec.MAGIC + cases["garbage"][4:]
    return cases


@pytest.mark.parametrize("compress", [True, False])
def test_any_damage_is_detected_before_a_single_byte_is_unpickled(compress):
    """A flipped bit used to give wrong data, a segfault or a 20 GB allocation: now it never unpickles."""
    payload = [np.random.default_rng(1).random(400_000), "tail", Explodes()]  # ~3 MiB: several blocks
    buffer = io.BytesIO()
    codec.dump(payload, buffer, compress=compress)
    cases = _damage_cases(buffer.getvalue())
    assert len(cases) > 40
    for label, damaged in cases.items():
        with pytest.raises(codec.CodecError):  # os._exit(93) would end pytest if it ever unpickled
            codec.load(io.BytesIO(damaged))
            pytest.fail(f"{label}: not detected")


def _kvc2_file(kind: str) -> bytes:
    """A file written by the previous format (KVC2: fixed 1 MiB blocks), kept as the old code wrote it."""
    return gzip.decompress((Path(__file__).parent / "data" / f"kvc2-{kind}.bin.gz").read_bytes())


@pytest.mark.parametrize("kind", ["stored", "zstd"])
def test_files_of_the_previous_checksummed_format_still_load_and_are_still_verified(kind, tmp_path):
    """A run written by the version before (KVC2) can be resumed: its files load, and damage is still caught."""
    data = _kvc2_file(kind)
    assert data[:5] == b"KVC2" + (b"\x00" if kind == "stored" else b"\x01")
    dataset = IntermediateDataset.for_run(str(tmp_path), "r", "d")
    os.makedirs(os.path.dirname(dataset.path))
    Path(dataset.path).write_bytes(data)
    loaded = dataset.load()
    assert loaded["zeros"] == b"\x00" * (2 * (1 << 20) + 5) and loaded["text"] == "kvc2"
    np.testing.assert_array_equal(loaded["array"], np.tile(np.arange(8, dtype=np.int64), 20_000))
    assert codec.read_meta(io.BytesIO(data)) == {"dataset": "d", "run_id": "r"}
    for label, damaged in _damage_cases(data).items():
        with pytest.raises(codec.CodecError):
            codec.load(io.BytesIO(damaged))
            pytest.fail(f"{label}: not detected")


def _blocks(data: bytes) -> tuple[int, list[int]]:
    """(header size, block lengths) of a file in the current format, read with the codec's own checks."""
    source = io.BytesIO(data)
    footer = codec._read_footer_first(source, len(data))
    assert footer is not None
    source.seek(0)
    return codec._read_header(source)[3], footer[1]


def test_large_buffers_start_their_own_block_and_are_read_without_a_copy(monkeypatch):
    """KVC3 aligns blocks to the pickle's large buffers, so the reader fills them in place (KVC2 copied the
    partial 1 MiB blocks at both ends of every buffer through its block buffer)."""
    arrays = [np.random.default_rng(n).random(n) for n in (300_000, 70_000, 1_000_003)]  # 2.4, 0.56, 8 MB
    buffer = io.BytesIO()
    codec.dump({"head": list(range(100)), "arrays": arrays, "tail": "x" * 5000}, buffer, compress=False)
    data = buffer.getvalue()
    header_size, lengths = _blocks(data)
    boundaries = {header_size + sum(lengths[:i]) for i in range(len(lengths) + 1)}
    for array in arrays:
        start = data.index(array.tobytes()[:64])
        assert {start, start + array.nbytes} <= boundaries
    assert max(lengths) <= codec.BLOCK_SIZE

    buffered: list[int] = []
    fill_buffer = codec._VerifiedReader._fill_buffer

    def spy(self):
        buffered.append(self._lengths[self._next])
        fill_buffer(self)

    monkeypatch.setattr(codec._VerifiedReader, "_fill_buffer", spy)
    loaded = codec.load(io.BytesIO(data))
    for got, want in zip(loaded["arrays"], arrays, strict=True):
        np.testing.assert_array_equal(got, want)
    assert buffered and max(buffered) < codec.ALIGN_FROM  # only the small pickle frames went through it


class ReadLog(io.BytesIO):
    """Records the offset of every read."""

    def __init__(self, data: bytes):
        super().__init__(data)
        self.offsets: list[int] = []

    def read(self, size=-1):
        self.offsets.append(self.tell())
        return super().read(size)

    def readinto(self, buffer):
        self.offsets.append(self.tell())
        return super().readinto(buffer)


@pytest.mark.parametrize("compress", [True, False])
def test_footer_is_read_first_so_the_file_is_then_read_front_to_back(compress):
    """No seek back after the header: on gs:// that seek made the read-ahead fetch the first 8 MiB twice."""
    buffer = io.BytesIO()
    codec.dump(np.random.default_rng(5).random(400_000), buffer, compress=compress)
    source = ReadLog(buffer.getvalue())
    codec.load(source)
    from_start = source.offsets[source.offsets.index(0) :]
    assert from_start == sorted(from_start) and len(from_start) > 3
    assert all(offset > len(buffer.getvalue()) // 2 for offset in source.offsets[: source.offsets.index(0)])


def _with_footer(data: bytes, entries: list[tuple[int, int]]) -> bytes:
    """``data`` with its KVC3 block table replaced by ``entries`` and a footer checksum that matches them."""
    count = struct.unpack("<Q", data[-28:-20])[0]
    body = b"".join(struct.pack("<QI", *e) for e in entries) + struct.pack(
        "<QQ", len(entries), sum(n for _, n in entries)
    )
    return data[: -28 - 12 * count] + body + struct.pack("<Q", xxhash.xxh3_64_intdigest(body)) + codec.END3


def test_a_consistent_but_forged_block_table_still_never_unpickles():
    """Past the footer's own checksum, block lengths must add up and each block must match its digest."""
    buffer = io.BytesIO()
    codec.dump([np.random.default_rng(2).random(300_000), Explodes()], buffer, compress=False)
    data = buffer.getvalue()
    _, lengths = _blocks(data)
    entries = list(struct.iter_unpack("<QI", data[-28 - 12 * len(lengths) : -28]))
    assert _with_footer(data, entries) == data and len(entries) >= 3
    shifted = [(d, n + (1 if i == 0 else -1 if i == 1 else 0)) for i, (d, n) in enumerate(entries)]
    zero = [(xxhash.xxh3_64_intdigest(b""), 0), *entries]
    for label, forged, message in [
        ("shifted boundary", shifted, "checksum mismatch in block 1"),
        ("empty block", zero, "block lengths"),
    ]:
        with pytest.raises(codec.DamagedError, match=message):
            codec.load(io.BytesIO(_with_footer(data, forged)))
            pytest.fail(f"{label}: not detected")


def test_files_of_the_old_format_are_refused_with_a_clear_error(tmp_path):
    dataset = IntermediateDataset.for_run(str(tmp_path), "run", "old")
    os.makedirs(os.path.dirname(dataset.path))
    with open(dataset.path, "wb") as out:  # what kedro-vertex-ci wrote before checksums: KVC0 + pickle
        out.write(b"KVC0" + pickle.dumps([1, 2, 3], protocol=5))
    with pytest.raises(DamagedIntermediateError, match="older kedro-vertex-ci without checksums"):
        dataset.load()


def test_local_files_are_stored_uncompressed_with_who_wrote_them(tmp_path):
    dataset = IntermediateDataset.for_run(str(tmp_path), "run", "frame", meta={"nodes": ["make"]})
    dataset.save(pd.DataFrame({"x": np.zeros(100_000)}))
    with open(dataset.path, "rb") as stored:
        assert stored.read(5) == codec.MAGIC + b"\x00"
        assert codec.read_meta(stored) == {"dataset": "frame", "run_id": "run", "nodes": ["make"]}


def test_a_damaged_file_is_an_error_naming_file_producer_and_run(tmp_path):
    dataset = IntermediateDataset.for_run(str(tmp_path), "run-9", "a", producer="node 'make'")
    dataset.save(list(range(1000)))
    with open(dataset.path, "r+b") as f:
        f.seek(200)
        byte = f.read(1)
        f.seek(200)
        f.write(bytes([byte[0] ^ 0x10]))
    with pytest.raises(DamagedIntermediateError) as err:
        dataset.load()
    message = str(err.value)
    assert "intermediate dataset 'a' of run 'run-9' cannot be trusted" in message
    assert dataset.path in message and "checksum mismatch in block 1 of 1" in message
    assert "written by node 'make'" in message and "Nothing was unpickled" in message


def test_local_write_is_atomic_and_keeps_the_previous_version(tmp_path):
    dataset = IntermediateDataset.for_run(str(tmp_path), "run", "a")
    dataset.save({"good": 1})
    with pytest.raises(DatasetError, match="cannot pickle this"):
        dataset.save(_half_writable())
    assert dataset.load() == {"good": 1}
    assert os.listdir(tmp_path / "kedro-vertex-ci" / "run") == ["a.bin"]  # no temp file left behind

    fresh = IntermediateDataset.for_run(str(tmp_path), "run", "b")
    with pytest.raises(DatasetError):
        fresh.save(_half_writable())
    assert not fresh.exists()


def test_missing_file_error_names_dataset_run_and_root(tmp_path):
    dataset = IntermediateDataset.for_run(str(tmp_path / "root"), "run-7", "features")
    with pytest.raises(MissingIntermediateError) as err:
        dataset.load()
    message = str(err.value)
    assert "intermediate dataset 'features' not found" in message
    assert "run id 'run-7'" in message and f"root '{tmp_path / 'root'}'" in message


def test_keep_in_memory_serves_copies_and_still_writes_the_file(tmp_path):
    dataset = IntermediateDataset.for_run(str(tmp_path), "run", "a", keep_in_memory=True)
    dataset.save([1, 2])
    first = dataset.load()
    first.append(99)
    assert dataset.load() == [1, 2]
    assert IntermediateDataset.for_run(str(tmp_path), "run", "a").load() == [1, 2]
    dataset.release()
    assert dataset.load() == [1, 2]  # from the file after release


def test_gcs_write_is_atomic_and_round_trips(gcs_emulator, monkeypatch):
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_emulator)
    root = f"gs://{BUCKET}/unit"
    frame = pd.DataFrame({"x": np.arange(200_000)})
    dataset = IntermediateDataset.for_run(root, "run", "odd:frame/1")
    dataset.save(frame)
    with pytest.raises(DatasetError, match="cannot pickle this"):
        dataset.save(_half_writable())
    gc.collect()  # fsspec files commit when collected; an abandoned upload must stay uncommitted
    pd.testing.assert_frame_equal(IntermediateDataset.for_run(root, "run", "odd:frame/1").load(), frame)

    with pytest.raises(MissingIntermediateError, match="run id 'other-run'"):
        IntermediateDataset.for_run(root, "other-run", "odd:frame/1").load()

    client = storage.Client(
        project="test", credentials=AnonymousCredentials(), client_options={"api_endpoint": gcs_emulator}
    )
    names = [blob.name for blob in client.list_blobs(BUCKET, prefix="unit/")]
    assert names == ["unit/kedro-vertex-ci/run/odd%3Aframe%2F1.bin"]  # no temp object left behind
    assert (
        client.bucket(BUCKET).blob(names[0]).download_as_bytes()[:5] == codec.MAGIC + b"\x01"
    )  # compressed on GCS
