"""zstd streams for the codec, through Python's own binding: ``compression.zstd`` (PEP 784, Python 3.14+) or
its backport ``backports.zstd`` before that.

Why not ``zstandard``: its wheel is 23 MB (half of it a CFFI backend CPython never uses) against 1.8 MB,
and every Vertex step pulls the image (issue 14, ``docs/benchmarks.md`` measure 4). Both write and read the
same standard zstd frames, so files written by either binding read with the other.
"""

from __future__ import annotations

import os
import sys
from typing import IO, Any

if sys.version_info >= (3, 14):
    import compression.zstd as _zstd
else:
    import backports.zstd as _zstd

ZstdError = _zstd.ZstdError


def writer(out: IO[bytes], level: int, threads: int) -> Any:
    """A binary file that compresses what is written to it into one zstd frame on ``out`` (left open).

    ``threads``: compression worker threads, ``-1`` for one per CPU, ``0`` to compress in the caller's thread.
    """
    parameter = _zstd.CompressionParameter
    workers = (os.cpu_count() or 1) if threads < 0 else threads
    workers = min(workers, parameter.nb_workers.bounds()[1])  # 0 where libzstd was built without threads
    options: dict[int, int] = {parameter.compression_level: level}
    if workers:
        options[parameter.nb_workers] = workers
    return _zstd.ZstdFile(out, "w", options=options)


def reader(source: Any) -> Any:
    """A buffered binary file of the bytes decompressed from the zstd frame(s) of ``source`` (left open)."""
    return _zstd.ZstdFile(source, "r")
