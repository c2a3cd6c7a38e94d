"""Pick the intermediate-dataset codec: time save+load of ~50 MB objects through a file for each codec.

Each codec streams cloudpickle (protocol 5) through its compressor into a temp file and back, as the step
runtime does. Prints a markdown table (median of --repeat runs) for a pandas DataFrame (mixed numeric,
categorical-ish strings) and a float numpy array with realistic entropy (rounded measurements).
Usage: python bench/codec_choice.py [--repeat 3] [--mb 50]
"""

from __future__ import annotations

import argparse
import bz2
import os
import pickle
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from typing import IO, Any

import cloudpickle
import lz4.frame
import zstandard

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib.data_probe import make_array, make_frame  # noqa: E402  (the same objects measure 3 uses)

Opener = Callable[[IO[bytes]], IO[bytes]]


def _zstd(level: int, threads: int) -> tuple[Callable, Callable]:
    def save(obj: Any, f: IO[bytes]) -> None:
        with zstandard.ZstdCompressor(level=level, threads=threads).stream_writer(f, closefd=False) as w:
            cloudpickle.dump(obj, w, protocol=5)

    def load(f: IO[bytes]) -> Any:
        return pickle.load(zstandard.ZstdDecompressor().stream_reader(f, read_size=1 << 20))

    return save, load


def _lz4() -> tuple[Callable, Callable]:
    def save(obj: Any, f: IO[bytes]) -> None:
        with lz4.frame.LZ4FrameFile(f, "wb") as w:
            cloudpickle.dump(obj, w, protocol=5)

    def load(f: IO[bytes]) -> Any:
        with lz4.frame.LZ4FrameFile(f, "rb") as r:
            return pickle.load(r)

    return save, load


def _bz2() -> tuple[Callable, Callable]:
    def save(obj: Any, f: IO[bytes]) -> None:
        with bz2.BZ2File(f, "wb") as w:
            cloudpickle.dump(obj, w, protocol=5)

    def load(f: IO[bytes]) -> Any:
        with bz2.BZ2File(f, "rb") as r:
            return pickle.load(r)

    return save, load


CODECS = {
    "zstd-1 (threads)": _zstd(1, -1),
    "zstd-1": _zstd(1, 0),
    "zstd-2 (threads)": _zstd(2, -1),
    "zstd-3 (threads)": _zstd(3, -1),
    "lz4": _lz4(),
    "bz2 (predecessor)": _bz2(),
}


def measure(obj: Any, save: Callable, load: Callable, repeat: int, folder: str) -> tuple[float, float, int]:
    path = os.path.join(folder, "x.bin")
    saves, loads = [], []
    for _ in range(repeat):
        start = time.perf_counter()
        with open(path, "wb") as f:
            save(obj, f)
        saves.append(time.perf_counter() - start)
        start = time.perf_counter()
        with open(path, "rb") as f:
            load(f)
        loads.append(time.perf_counter() - start)
    return statistics.median(saves), statistics.median(loads), os.path.getsize(path)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--mb", type=int, default=50)
    parser.add_argument("--skip-bz2", action="store_true", help="bz2 takes ~30 s per object")
    args = parser.parse_args()
    objects = {"pandas DataFrame": make_frame(args.mb), "numpy array": make_array(args.mb)}
    print(f"cores: {os.cpu_count()}, repeat: {args.repeat}, object size ~{args.mb} MB\n")
    print("| object | codec | save s | load s | save+load s | size MB | ratio |")
    print("|---|---|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as folder:
        for label, obj in objects.items():
            raw = len(pickle.dumps(obj, protocol=5))
            for codec, (save, load) in CODECS.items():
                if args.skip_bz2 and codec.startswith("bz2"):
                    continue
                repeat = 1 if codec.startswith("bz2") else args.repeat
                s, lo, size = measure(obj, save, load, repeat, folder)
                print(
                    f"| {label} | {codec} | {s:.2f} | {lo:.2f} | {s + lo:.2f} | {size / 1e6:.1f} "
                    f"| {raw / size:.2f} |"
                )


if __name__ == "__main__":
    main()
