"""IntermediateDataset, codec and name escaping, in process: round trips, atomic writes, clear errors."""

from __future__ import annotations

import gc
import io
import os

import numpy as np
import pandas as pd
import pytest
from kedro.io import DatasetError

from kedro_vertex_ci.runtime import codec
from kedro_vertex_ci.runtime.intermediate import (
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
    with pytest.raises(codec.CodecError, match="corrupt or truncated"):
        codec.load(truncated)


@pytest.mark.parametrize("compress", [True, False])
def test_both_formats_round_trip_and_name_themselves(compress):
    frame = pd.DataFrame({"x": np.arange(5000)})
    buffer = io.BytesIO()
    codec.dump(frame, buffer, compress=compress)
    assert buffer.getvalue()[:4] == (codec.MAGIC if compress else codec.MAGIC_STORED)
    buffer.seek(0)
    pd.testing.assert_frame_equal(codec.load(buffer), frame)
    truncated = io.BytesIO(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with pytest.raises(codec.CodecError, match="corrupt or truncated"):
        codec.load(truncated)


def test_local_files_are_stored_uncompressed(tmp_path):
    dataset = IntermediateDataset.for_run(str(tmp_path), "run", "frame")
    dataset.save(pd.DataFrame({"x": np.zeros(100_000)}))
    with open(dataset.path, "rb") as stored:
        assert stored.read(4) == codec.MAGIC_STORED


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


def test_corrupt_file_is_a_clear_dataset_error(tmp_path):
    dataset = IntermediateDataset.for_run(str(tmp_path), "run", "a")
    dataset.save([1, 2, 3])
    path = dataset.path
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) - 3)
    with pytest.raises(DatasetError, match="intermediate dataset 'a'.*corrupt or truncated"):
        IntermediateDataset.for_run(str(tmp_path), "run", "a").load()


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
    assert client.bucket(BUCKET).blob(names[0]).download_as_bytes()[:4] == codec.MAGIC  # compressed on GCS
