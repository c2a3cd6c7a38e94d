"""Serialise Python objects to a checksummed byte stream: cloudpickle (protocol 5), through zstd level 1 for
object stores, stored as it is for a local folder (no network to save bytes on).

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

Integrity: unpickling damaged bytes can do anything (wrong values, a segfault, a 20 GB allocation), so
every file carries an xxh3-64 checksum per 1 MiB block of its payload, and :func:`load` verifies each block
before the unpickler sees a byte of it. Per-block checksums keep the single streaming pass: a block is
hashed while it is still in the CPU cache, on write and on read, and nothing is read twice.

Layout (integers little-endian)::

    header   MAGIC "KVC2" | kind (0 stored, 1 zstd) | 3 zero bytes | u32 meta length | meta JSON
             | u64 xxh3 of everything before it in the header
    payload  the cloudpickle stream as it is (kind 0), or one zstd frame holding it (kind 1)
    footer   u64 xxh3 of each payload block | u64 block count | u64 payload length | u32 block size
             | u64 xxh3 of the footer so far | END "KVCE"

The meta JSON says who wrote the file (dataset, run id, the step's nodes); it is informative only.
A checksum guards against accidents (bit flips, truncation, a half copy), not against an attacker: whoever
can write the pipeline root can run code in every step that reads from it.
"""

from __future__ import annotations

import io
import json
import pickle
import struct
from collections.abc import Mapping
from typing import IO, Any

MAGIC = b"KVC2"  # current format (both kinds)
END = b"KVCE"
OLD_MAGICS = (b"KVC0", b"KVC1")  # before checksums (kedro-vertex-ci <= 0.x): refused with a clear error
STORED, ZSTD = 0, 1
ZSTD_LEVEL = 1
BLOCK_SIZE = 1 << 20
_HEAD = struct.Struct("<4sB3xI")  # magic, kind, meta length
_DIGEST = struct.Struct("<Q")
_TAIL = struct.Struct("<QQIQ4s")  # block count, payload length, block size, footer digest, END
MAX_META = 1 << 16  # a damaged length must not make us allocate gigabytes
MAX_BLOCK = 1 << 26


class CodecError(Exception):
    """The bytes are not an intact stream this codec wrote (foreign, old format, truncated or damaged)."""


class OldFormatError(CodecError):
    """Written by a kedro-vertex-ci without checksums: not read, since it cannot be verified."""


class DamagedError(CodecError):
    """A checksum does not match, or the file is truncated or extended."""


def _xxh3(data: Any) -> int:
    import xxhash

    return int(xxhash.xxh3_64_intdigest(data))


def dump(
    obj: Any,
    out: IO[bytes],
    level: int = ZSTD_LEVEL,
    threads: int = -1,
    compress: bool = True,
    meta: Mapping[str, Any] | None = None,
) -> None:
    """Write ``obj`` to the binary file ``out`` (which stays open), with its checksums.

    ``compress=False`` stores the pickle stream as it is: for a local folder, where there is no network to
    save bytes on, compressing costs 3-4x a plain write (``docs/benchmarks.md``, measure 3).
    """
    import cloudpickle

    meta_bytes = json.dumps(dict(meta or {}), sort_keys=True).encode()[:MAX_META]
    head = _HEAD.pack(MAGIC, ZSTD if compress else STORED, len(meta_bytes)) + meta_bytes
    out.write(head + _DIGEST.pack(_xxh3(head)))
    writer = _HashingWriter(out)
    if compress:
        from . import zstdio

        sink: Any = writer  # a file-like object (the binding's stubs want IO)
        with zstdio.writer(sink, level, threads) as stream:
            cloudpickle.dump(obj, stream, protocol=pickle.HIGHEST_PROTOCOL)
    else:
        cloudpickle.dump(obj, writer, protocol=pickle.HIGHEST_PROTOCOL)
    out.write(writer.footer())


class _HashingWriter:
    """Passes writes through to ``out``, hashing each block right before it is written (still cached)."""

    def __init__(self, out: IO[bytes]):
        import xxhash

        self._out = out
        self._hasher = xxhash.xxh3_64()
        self._in_block = 0
        self._length = 0
        self._digests: list[int] = []

    def write(self, data: Any) -> int:
        view = pickle.PickleBuffer(data).raw()  # any contiguous buffer (numpy's C or F order) as bytes
        total = len(view)
        start = 0
        while start < total:
            piece = view[start : start + BLOCK_SIZE - self._in_block]
            self._hasher.update(piece)
            self._out.write(piece)
            start += len(piece)
            self._in_block += len(piece)
            if self._in_block == BLOCK_SIZE:
                self._close_block()
        self._length += total
        return total

    def flush(self) -> None:
        self._out.flush()

    def _close_block(self) -> None:
        self._digests.append(self._hasher.intdigest())
        self._hasher.reset()
        self._in_block = 0

    def footer(self) -> bytes:
        if self._in_block:
            self._close_block()
        body = b"".join(_DIGEST.pack(d) for d in self._digests) + struct.pack(
            "<QQI", len(self._digests), self._length, BLOCK_SIZE
        )
        return body + _DIGEST.pack(_xxh3(body)) + END


def read_meta(source: IO[bytes]) -> dict[str, Any]:
    """The writer's meta JSON (dataset, run id, nodes) from the header; CodecError if it is damaged."""
    source.seek(0)
    return _read_header(source)[1]


def load(source: IO[bytes], size: int | None = None) -> Any:
    """Read an object written by :func:`dump` from the seekable binary file ``source`` of ``size`` bytes.

    Every block is verified before the unpickler reads it; any mismatch raises :class:`DamagedError`.
    """
    if size is None:
        size = source.seek(0, io.SEEK_END)
    source.seek(0)
    kind, _, header_size = _read_header(source)
    digests, length, block_size = _read_footer(source, size, header_size)
    source.seek(header_size)
    stream = _VerifiedReader(source, digests, length, block_size)
    try:
        if kind == STORED:
            obj = pickle.load(stream)  # type: ignore[arg-type]  # cloudpickle output is plain pickle
        else:
            from . import zstdio

            reader = zstdio.reader(stream)
            try:
                obj = pickle.load(reader)
                if reader.read(1):  # also reads the frame's end, so at_end() below sees all of it
                    raise DamagedError("the payload has bytes after the pickled object")
            except zstdio.ZstdError as err:
                raise DamagedError(f"the verified payload does not decompress: {err}") from err
    except (EOFError, pickle.UnpicklingError) as err:  # checksums matched: written damaged, or a bug
        raise DamagedError(f"the payload does not unpickle: {err}") from err
    if not stream.at_end():
        raise DamagedError("the payload has bytes after the pickled object")
    return obj


def _read_header(source: IO[bytes]) -> tuple[int, dict[str, Any], int]:
    """(kind, meta, header size in bytes)."""
    head = source.read(_HEAD.size)
    magic = head[:4]
    if magic in OLD_MAGICS:
        raise OldFormatError(
            "written by an older kedro-vertex-ci without checksums, which this version does not read; "
            "rerun the step that writes it"
        )
    if magic != MAGIC:
        raise CodecError(f"not a kedro-vertex-ci intermediate file (starts with {magic!r})")
    if len(head) < _HEAD.size:
        raise DamagedError("truncated inside the header")
    _, kind, meta_size = _HEAD.unpack(head)
    if kind not in (STORED, ZSTD) or meta_size > MAX_META:
        raise DamagedError("the header is damaged")
    meta_bytes = source.read(meta_size)
    digest = source.read(_DIGEST.size)
    if len(digest) < _DIGEST.size:
        raise DamagedError("truncated inside the header")
    if _DIGEST.unpack(digest)[0] != _xxh3(head + meta_bytes):
        raise DamagedError("the header's checksum does not match")
    try:
        meta = json.loads(meta_bytes) if meta_bytes else {}
    except ValueError as err:
        raise DamagedError("the header's meta data is not JSON") from err
    return kind, meta if isinstance(meta, dict) else {}, _HEAD.size + meta_size + _DIGEST.size


def _read_footer(source: IO[bytes], size: int, header_size: int) -> tuple[list[int], int, int]:
    """(block digests, payload length, block size), checked against the file size."""
    if size < header_size + _TAIL.size:
        raise DamagedError(f"truncated: {size} bytes, too short for the footer")
    source.seek(size - _TAIL.size)
    tail = source.read(_TAIL.size)
    count, length, block_size, digest, end = _TAIL.unpack(tail)
    if end != END:
        raise DamagedError("truncated or extended: the file does not end with the footer")
    table_size = count * _DIGEST.size
    if not 0 < block_size <= MAX_BLOCK or header_size + length + table_size + _TAIL.size != size:
        raise DamagedError(
            f"truncated or extended: the footer describes a different file size than {size} bytes"
        )
    if count != -(-length // block_size):
        raise DamagedError("the footer is damaged (block count does not fit the payload length)")
    source.seek(size - _TAIL.size - table_size)
    table = source.read(table_size)
    if _xxh3(table + tail[: _TAIL.size - _DIGEST.size - len(END)]) != digest:
        raise DamagedError("the footer's checksum does not match")
    return [d for (d,) in _DIGEST.iter_unpack(table)], length, block_size


class _VerifiedReader(io.RawIOBase):
    """The payload, handed out only after the block holding each byte has matched its checksum.

    Whole blocks go straight into the caller's buffer (``readinto``: numpy/pandas arrays) and are hashed
    there before returning; partial blocks go through one reused block buffer.
    """

    def __init__(self, source: IO[bytes], digests: list[int], length: int, block_size: int):
        super().__init__()
        self._source = source
        self._digests = digests
        self._length = length
        self._block_size = block_size
        self._next = 0  # index of the next block to read from the source
        self._buffer = bytearray(min(block_size, length))
        self._pending = memoryview(self._buffer)[:0]  # verified bytes not handed out yet

    def readable(self) -> bool:
        return True

    def at_end(self) -> bool:
        return self._next == len(self._digests) and not self._pending

    def _block_length(self, index: int) -> int:
        return min(self._block_size, self._length - index * self._block_size)

    def _fill_verified(self, target: memoryview) -> None:
        """Read block ``self._next`` into ``target`` (its exact size) and check it."""
        filled = 0
        while filled < len(target):
            got = self._source.readinto(target[filled:])  # type: ignore[attr-defined]
            if not got:
                raise DamagedError(f"truncated in block {self._next + 1} of {len(self._digests)}")
            filled += got
        if _xxh3(target) != self._digests[self._next]:
            first = self._next * self._block_size
            raise DamagedError(
                f"checksum mismatch in block {self._next + 1} of {len(self._digests)} "
                f"(payload bytes {first}-{first + len(target) - 1})"
            )
        self._next += 1

    def readinto(self, buffer: Any) -> int:
        out = memoryview(buffer).cast("B")
        done = 0
        while done < len(out):
            if self._pending:
                take = min(len(self._pending), len(out) - done)
                out[done : done + take] = self._pending[:take]
                self._pending = self._pending[take:]
                done += take
                continue
            if self._next == len(self._digests):
                break
            size = self._block_length(self._next)
            if len(out) - done >= size:  # a whole block fits: no copy through the buffer
                self._fill_verified(out[done : done + size])
                done += size
            else:
                block = memoryview(self._buffer)[:size]
                self._fill_verified(block)
                self._pending = block
        return done

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            return self.readall()
        if len(self._pending) >= size:  # the common small read (pickle frames): one copy
            data = bytes(self._pending[:size])
            self._pending = self._pending[size:]
            return data
        target = bytearray(size)
        return bytes(memoryview(target)[: self.readinto(target)])
