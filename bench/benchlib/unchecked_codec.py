"""The intermediate-file codec as it was before checksums (formats ``KVC0``/``KVC1``), kept for measure 3.

``data_probe.py`` swaps it into :mod:`kedro_vertex_ci.runtime.intermediate` to time the same dataset, the
same atomic writes and the same files "without checksum", next to the checksummed codec. Not used by the
tool itself (which refuses these formats).
"""

from __future__ import annotations

import pickle
from typing import IO, Any

MAGIC = b"KVC1"
MAGIC_STORED = b"KVC0"
ZSTD_LEVEL = 1


class CodecError(Exception):
    """The bytes are not a stream this codec wrote."""


def dump(
    obj: Any,
    out: IO[bytes],
    level: int = ZSTD_LEVEL,
    threads: int = -1,
    compress: bool = True,
    meta: Any = None,
) -> None:
    import cloudpickle

    if not compress:
        out.write(MAGIC_STORED)
        cloudpickle.dump(obj, out, protocol=pickle.HIGHEST_PROTOCOL)
        return
    from kedro_vertex_ci.runtime import zstdio  # the runtime's binding: only the checksum differs

    out.write(MAGIC)
    with zstdio.writer(out, level, threads) as writer:
        cloudpickle.dump(obj, writer, protocol=pickle.HIGHEST_PROTOCOL)


def load(source: IO[bytes], size: int | None = None) -> Any:
    from kedro_vertex_ci.runtime import zstdio

    magic = source.read(len(MAGIC))
    if magic == MAGIC_STORED:
        return pickle.load(source)
    if magic != MAGIC:
        raise CodecError(f"not an unchecked intermediate file (starts with {magic[:4]!r})")
    return pickle.load(zstdio.reader(source))
