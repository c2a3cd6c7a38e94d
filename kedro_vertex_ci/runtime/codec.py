"""Serialise Python objects to a byte stream: cloudpickle (protocol 5) through zstd level 1 for object
stores, stored as it is for a local folder (no network to save bytes on).

Why zstd level 1 with threads (``bench/codec_choice.py``, 2 cores, ~50 MB objects, median of 7, save+load
through a local file; full table in ``docs/runtime.md``):

=================  ==================  =================  ==================
codec              DataFrame s / MB    ndarray s / MB     note
=================  ==================  =================  ==================
zstd-1, threads    0.13 / 12.1         0.22 / 23.7        chosen
zstd-1, 1 thread   0.17 / 12.2         0.30 / 23.7
zstd-3, threads    0.15 / 12.1         0.41 / 22.3
lz4                0.15 / 21.7         0.27 / 30.6        ~1.5-1.8x the bytes
bz2 (predecessor)  3.16 /  9.8         7.00 / 16.0        20-30x slower
=================  ==================  =================  ==================

zstd-1 is the fastest round trip and, unlike lz4, the files are small (fewer bytes to move through GCS);
higher zstd levels buy a few percent of size for more CPU. Compression uses all cores; zstd decompression
is single-threaded and fast anyway.

Both directions stream: pickle writes large buffers (numpy/pandas blocks) straight into the compressor,
and reading decompresses into the unpickler chunk by chunk, so a dataset is never held twice in memory
as raw bytes. Every stream starts with a 4-byte magic so a file written by another codec (or a half
file) fails with a clear message instead of an unpickling error.
"""

from __future__ import annotations

import pickle
from typing import IO, Any

MAGIC = b"KVC1"  # format: magic, then a zstd frame holding a cloudpickle (protocol 5) stream
MAGIC_STORED = b"KVC0"  # format: magic, then the cloudpickle (protocol 5) stream as it is
ZSTD_LEVEL = 1
_CHUNK = 1 << 20


class CodecError(Exception):
    """The bytes are not a stream this codec wrote (wrong magic or a truncated/corrupt frame)."""


def dump(obj: Any, out: IO[bytes], level: int = ZSTD_LEVEL, threads: int = -1, compress: bool = True) -> None:
    """Write ``obj`` to the binary file ``out`` (which stays open).

    ``compress=False`` stores the pickle stream as it is: for a local folder, where there is no network to
    save bytes on, compressing costs 3-4x a plain write (``docs/benchmarks.md``, measure 3).
    """
    import cloudpickle

    if not compress:
        out.write(MAGIC_STORED)
        cloudpickle.dump(obj, out, protocol=pickle.HIGHEST_PROTOCOL)
        return
    import zstandard

    out.write(MAGIC)
    compressor = zstandard.ZstdCompressor(level=level, threads=threads)
    with compressor.stream_writer(out, closefd=False, write_size=_CHUNK) as writer:
        cloudpickle.dump(obj, writer, protocol=pickle.HIGHEST_PROTOCOL)


def load(source: IO[bytes]) -> Any:
    """Read an object written by :func:`dump` from the binary file ``source``."""
    import zstandard

    magic = source.read(len(MAGIC))
    if magic == MAGIC_STORED:
        try:
            return pickle.load(source)
        except (EOFError, pickle.UnpicklingError) as err:
            raise CodecError(f"corrupt or truncated intermediate file: {err}") from err
    if magic != MAGIC:
        raise CodecError(f"not a kedro-vertex-ci intermediate file (starts with {magic[:4]!r})")
    reader = zstandard.ZstdDecompressor().stream_reader(source, read_size=_CHUNK, closefd=False)
    try:
        return pickle.load(reader)  # cloudpickle output is plain pickle: the stdlib unpickler reads it
    except (zstandard.ZstdError, EOFError, pickle.UnpicklingError) as err:
        raise CodecError(f"corrupt or truncated intermediate file: {err}") from err
