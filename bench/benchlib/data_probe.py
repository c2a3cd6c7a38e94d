"""Time save + load of a pandas DataFrame and a numpy array through three codecs, in this one process.

Run by ``measures.measure_data`` with the dev venv's Python (it needs our runtime, pandas, numpy, gcsfs):
  ours  kedro_vertex_ci.runtime.intermediate.IntermediateDataset (cloudpickle + zstd, atomic write)
  bz2   kedro-vertexai 1.0.0's KedroVertexAIRunnerDataset code: fsspec.open + bz2.open + cloudpickle
  raw   the floor: the object's uncompressed pickle bytes written and read back (pickling not timed)
and, side by side (``--checksum-pairs N``; ``--checksum-only``: nothing else), ours with vs without its
integrity checksum: the same IntermediateDataset with the codec swapped for ``unchecked_codec`` (the
format before checksums), the two alternating run by run so machine noise hits both alike; wall and CPU
(process) time, CPU also split into save and load.
``--root`` is a local folder or ``gs://bucket/prefix`` (then STORAGE_EMULATOR_HOST points at the emulator).
Writes JSON to ``--out``.
"""

from __future__ import annotations

import argparse
import bz2
import json
import os
import pickle
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")

import cloudpickle  # noqa: E402
import fsspec  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def make_frame(mb: int) -> pd.DataFrame:
    """A DataFrame of about ``mb`` MB with realistic entropy: ids, prices, counts, scores, flags, cities."""
    rng = np.random.default_rng(0)
    rows = max(1, mb * 1024 * 1024 // 34)
    return pd.DataFrame(
        {
            "id": np.arange(rows, dtype=np.int64),
            "price": np.round(rng.gamma(2.0, 50.0, rows), 2),
            "qty": rng.integers(0, 100, rows, dtype=np.int64),
            "score": rng.normal(size=rows).astype(np.float32),
            "flag": rng.random(rows) < 0.1,
            "city": pd.Categorical(rng.choice(["london", "paris", "berlin", "rome", "oslo"], rows)),
        }
    )


def make_array(mb: int) -> np.ndarray:
    """A float64 array of about ``mb`` MB: a rounded random walk (compressible like measurements)."""
    rng = np.random.default_rng(1)
    n = max(64, mb * 1024 * 1024 // 8 // 64 * 64)
    return np.round(np.cumsum(rng.normal(size=n)), 3).reshape(-1, 64)


def same(a: Any, b: Any) -> bool:
    if isinstance(a, pd.DataFrame):
        return bool(a.equals(b))
    return bool(np.array_equal(a, b))


class Codec:
    """save(obj, path) / load(path) / size(path) for one way of storing an object."""

    def __init__(
        self, save: Callable[[Any, str], None], load: Callable[[str], Any], size: Callable[[str], int]
    ):
        self.save, self.load, self.size = save, load, size


def _fs_size(path: str) -> int:
    if "://" in path:
        fs, inner = fsspec.core.url_to_fs(path)
        return int(fs.size(inner))
    return os.path.getsize(path)


def ours_codec() -> Codec:
    from kedro_vertex_ci.runtime.intermediate import IntermediateDataset

    return Codec(
        lambda obj, path: IntermediateDataset(path).save(obj),
        lambda path: IntermediateDataset(path).load(),
        _fs_size,
    )


def bz2_codec() -> Codec:
    def save(obj: Any, path: str) -> None:
        with fsspec.open(path, "wb") as f, bz2.open(f, "wb") as stream:
            cloudpickle.dump(obj, stream, protocol=None)

    def load(path: str) -> Any:
        with fsspec.open(path, "rb") as f, bz2.open(f, "rb") as stream:
            return cloudpickle.load(stream)

    return Codec(save, load, _fs_size)


def raw_codec(payloads: dict[int, bytes]) -> Codec:
    """Writes the pre-pickled bytes of the object (looked up by id) and reads them back."""

    def save(obj: Any, path: str) -> None:
        data = payloads[id(obj)]
        if "://" in path:
            fs, inner = fsspec.core.url_to_fs(path)
            fs.pipe_file(inner, data)
        else:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            with open(path, "wb") as out:
                out.write(data)

    def load(path: str) -> bytes:
        if "://" in path:
            fs, inner = fsspec.core.url_to_fs(path)
            return bytes(fs.cat_file(inner))
        with open(path, "rb") as source:
            return source.read()

    return Codec(save, load, _fs_size)


def time_codec(
    codec: Codec,
    obj: Any,
    path: str,
    runs: int,
    slow_runs: int,
    slow_seconds: float,
    check: Callable[[Any], bool],
) -> dict[str, Any]:
    """Save + load ``runs`` times after a warm-up (counted as a sample when slower than ``slow_seconds``)."""
    saves: list[float] = []
    loads: list[float] = []

    def once() -> float:
        start = time.perf_counter()
        codec.save(obj, path)
        middle = time.perf_counter()
        loaded = codec.load(path)
        end = time.perf_counter()
        if not check(loaded):
            raise SystemExit(f"{path}: the loaded object differs from the saved one")
        saves.append(middle - start)
        loads.append(end - middle)
        return end - start

    first = once()
    if first <= slow_seconds:
        saves.clear()
        loads.clear()
    total = slow_runs if first > slow_seconds else runs
    while len(saves) < total:
        once()
    return {
        "seconds": [s + lo for s, lo in zip(saves, loads, strict=True)],
        "save": saves,
        "load": loads,
        "bytes": codec.size(path),
    }


def time_checksum_pairs(obj: Any, root: str, label: str, runs: int) -> dict[str, Any]:
    """Save + load through IntermediateDataset with and without the checksum, alternating, ``runs`` each."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import unchecked_codec

    from kedro_vertex_ci.runtime import codec as checked_codec
    from kedro_vertex_ci.runtime import intermediate

    variants = {"with": checked_codec, "without": unchecked_codec}
    timings: dict[str, dict[str, list[float]]] = {
        v: {"seconds": [], "cpu": [], "cpu_save": [], "cpu_load": []} for v in variants
    }
    try:
        for run in range(runs + 1):  # the first round warms caches and is not counted
            order = list(variants) if run % 2 else list(reversed(variants))
            for variant in order:
                intermediate.codec = variants[variant]  # type: ignore[assignment]
                dataset = intermediate.IntermediateDataset(f"{root}/pair-{variant}-{label}.bin")
                wall, cpu = time.perf_counter(), time.process_time()
                dataset.save(obj)
                saved = time.process_time()
                loaded = dataset.load()
                wall, cpu, saved = time.perf_counter() - wall, time.process_time() - cpu, saved - cpu
                if not same(loaded, obj):
                    raise SystemExit(f"{label} ({variant} checksum): the loaded object differs")
                if run:
                    timings[variant]["seconds"].append(wall)
                    timings[variant]["cpu"].append(cpu)
                    timings[variant]["cpu_save"].append(saved)
                    timings[variant]["cpu_load"].append(cpu - saved)
    finally:
        intermediate.codec = checked_codec
    return timings


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=50)
    parser.add_argument("--root", required=True)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--slow-repeat", type=int, default=3)
    parser.add_argument("--slow-seconds", type=float, default=20.0)
    parser.add_argument("--create-bucket", action="store_true")
    parser.add_argument(
        "--checksum-pairs", type=int, default=0, help="runs of the with/without checksum pair"
    )
    parser.add_argument(
        "--checksum-only", action="store_true", help="only the with/without checksum pairs (no bz2, raw)"
    )
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    root = args.root.rstrip("/")
    if args.create_bucket:
        fs, inner = fsspec.core.url_to_fs(root)
        bucket = inner.split("/")[0]
        if not fs.exists(bucket):
            fs.mkdir(bucket)
    objects = {"pandas DataFrame": make_frame(args.mb), "numpy array": make_array(args.mb)}
    payloads = {id(obj): pickle.dumps(obj, protocol=5) for obj in objects.values()}
    codecs = (
        {} if args.checksum_only else {"ours": ours_codec(), "bz2": bz2_codec(), "raw": raw_codec(payloads)}
    )
    result: dict[str, Any] = {"mb": args.mb, "root": root, "objects": {}}
    for label, obj in objects.items():
        entry: dict[str, Any] = {"pickle_bytes": len(payloads[id(obj)])}
        for name, codec in codecs.items():
            path = f"{root}/{name}-{label.split()[-1]}-{args.mb}.bin"
            payload = payloads[id(obj)]

            def check(loaded: Any, obj: Any = obj, name: str = name, payload: bytes = payload) -> bool:
                return loaded == payload if name == "raw" else same(loaded, obj)

            entry[name] = time_codec(
                codec, obj, path, args.repeat, args.slow_repeat, args.slow_seconds, check
            )
        if args.checksum_pairs:
            entry["checksum"] = time_checksum_pairs(obj, root, label.split()[-1], args.checksum_pairs)
        result["objects"][label] = entry
    Path(args.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
