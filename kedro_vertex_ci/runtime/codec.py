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
every file carries an xxh3-64 checksum per payload block, and :func:`load` verifies each block before the
unpickler sees a byte of it. Per-block checksums keep the single streaming pass: a block is hashed while it
is still in the CPU cache, on write and on read, and nothing is read twice.

Blocks follow the writes (format ``KVC3``): a large write (a numpy/pandas buffer, a zstd chunk) starts a
new block and is cut into blocks of at most 1 MiB; small writes (pickle frames) are gathered into blocks of
up to 1 MiB. So when the unpickler asks for a large buffer, its bytes are whole blocks: they are read
straight into the destination and hashed there, with no copy through a block buffer (``KVC2``, fixed 1 MiB
blocks from the payload's start, copied the partial blocks at both ends of every buffer; still read). Large
buffers go to the file 8 MiB per write call and come back 8 MiB per read call (``WRITE_SIZE``): a call on
ext4 costs about 0.1 ms, so one per MiB cost as much CPU as the hash itself; 8 MiB still fit in the cache
between the hash and the copy.

Layout (integers little-endian)::

    header   MAGIC "KVC3" | kind (0 stored, 1 zstd) | 3 zero bytes | u32 meta length | meta JSON
             | u64 xxh3 of everything before it in the header
    payload  the cloudpickle stream as it is (kind 0), or one zstd frame holding it (kind 1)
    footer   (u64 xxh3, u32 length) of each payload block | u64 block count | u64 payload length
             | u64 xxh3 of the footer so far | END3 "KV3E"

``KVC2`` (read, no longer written) has the same header; its footer is u64 xxh3 of each 1 MiB block | u64
block count | u64 payload length | u32 block size | u64 xxh3 of the footer so far | END.

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
from itertools import accumulate
from typing import IO, Any

MAGIC = b"KVC3"  # current format (both kinds): blocks follow the writes
MAGIC_V2 = b"KVC2"  # fixed 1 MiB blocks: still read, so a run written by the previous version resumes
END = b"KVCE"  # end of a KVC2 footer
END3 = b"KV3E"  # end of a KVC3 footer: names its layout, so the footer can be read before the header
OLD_MAGICS = (b"KVC0", b"KVC1")  # before checksums (kedro-vertex-ci <= 0.x): refused with a clear error
STORED, ZSTD = 0, 1
ZSTD_LEVEL = 1
BLOCK_SIZE = 1 << 20
WRITE_SIZE = 8 << 20  # large buffers: hashed per block, then written (and read) 8 MiB per call
ALIGN_FROM = 1 << 18  # a write at least this large starts a new block (see the module docstring)
_HEAD = struct.Struct("<4sB3xI")  # magic, kind, meta length
_DIGEST = struct.Struct("<Q")
_ENTRY = struct.Struct("<QI")  # KVC3 block table: xxh3, length
_COUNTS = struct.Struct("<QQ")  # block count, payload length
_TAIL = struct.Struct("<QQQ4s")  # KVC3: block count, payload length, footer digest, END
_TAIL_V2 = struct.Struct("<QQIQ4s")  # KVC2: block count, payload length, block size, footer digest, END
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
    """Passes writes through to ``out``, hashing each block right before it is written (still cached).

    A large write starts a block of its own (cut at 1 MiB), so that the reader can hand its bytes to the
    unpickler's destination buffer block by block without copying; small writes share blocks.
    """

    def __init__(self, out: IO[bytes]):
        import xxhash

        self._out = out
        self._xxh3 = xxhash.xxh3_64_intdigest
        self._hasher = xxhash.xxh3_64()  # the block being gathered from small writes
        self._in_block = 0
        self._length = 0
        self._table = bytearray()
        self._count = 0

    def write(self, data: Any) -> int:
        view = pickle.PickleBuffer(data).raw()  # any contiguous buffer (numpy's C or F order) as bytes
        total = len(view)
        if total >= ALIGN_FROM:
            self._close_block()
            for group in range(0, total, WRITE_SIZE):
                chunk = view[group : group + WRITE_SIZE]
                for start in range(0, len(chunk), BLOCK_SIZE):
                    piece = chunk[start : start + BLOCK_SIZE]
                    self._add_block(self._xxh3(piece), len(piece))
                self._out.write(chunk)
        else:
            self._gather(view)
        self._length += total
        return total

    def _gather(self, view: memoryview) -> None:
        start = 0
        while start < len(view):
            piece = view[start : start + BLOCK_SIZE - self._in_block]
            self._hasher.update(piece)
            self._out.write(piece)
            start += len(piece)
            self._in_block += len(piece)
            if self._in_block == BLOCK_SIZE:
                self._close_block()

    def flush(self) -> None:
        self._out.flush()

    def _add_block(self, digest: int, length: int) -> None:
        self._table += _ENTRY.pack(digest, length)
        self._count += 1

    def _close_block(self) -> None:
        if self._in_block:
            self._add_block(self._hasher.intdigest(), self._in_block)
            self._hasher.reset()
            self._in_block = 0

    def footer(self) -> bytes:
        self._close_block()
        body = bytes(self._table) + _COUNTS.pack(self._count, self._length)
        return body + _DIGEST.pack(_xxh3(body)) + END3


def read_meta(source: IO[bytes]) -> dict[str, Any]:
    """The writer's meta JSON (dataset, run id, nodes) from the header; CodecError if it is damaged."""
    source.seek(0)
    return _read_header(source)[2]


def load(source: IO[bytes], size: int | None = None) -> Any:
    """Read an object written by :func:`dump` from the seekable binary file ``source`` of ``size`` bytes.

    Every block is verified before the unpickler reads it; any mismatch raises :class:`DamagedError`.
    """
    if size is None:
        size = source.seek(0, io.SEEK_END)
    footer = _read_footer_first(source, size)  # before the header: then the payload follows it in order
    source.seek(0)
    magic, kind, _, header_size = _read_header(source)
    if footer is not None and magic == MAGIC:
        digests, lengths, table_size = footer
        if header_size + sum(lengths) + table_size + _TAIL.size != size:
            raise _size_mismatch(size)
    elif magic == MAGIC_V2 and footer is None:
        digests, lengths = _read_footer_v2(source, size, header_size)
        source.seek(header_size)
    elif footer is not None:
        raise DamagedError("the header and the footer are of different formats")
    else:
        raise DamagedError("truncated or extended: the file does not end with the footer")
    stream = _VerifiedReader(source, digests, lengths, short_reads=kind == ZSTD)
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


def _read_header(source: IO[bytes]) -> tuple[bytes, int, dict[str, Any], int]:
    """(magic, kind, meta, header size in bytes)."""
    head = source.read(_HEAD.size)
    magic = head[:4]
    if magic in OLD_MAGICS:
        raise OldFormatError(
            "written by an older kedro-vertex-ci without checksums, which this version does not read; "
            "rerun the step that writes it"
        )
    if magic not in (MAGIC, MAGIC_V2):
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
    return magic, kind, meta if isinstance(meta, dict) else {}, _HEAD.size + meta_size + _DIGEST.size


def _read_tail(source: IO[bytes], size: int, header_size: int, tail: struct.Struct) -> bytes:
    if size < header_size + tail.size:
        raise DamagedError(f"truncated: {size} bytes, too short for the footer")
    source.seek(size - tail.size)
    data = source.read(tail.size)
    if data[-len(END) :] != END:
        raise DamagedError("truncated or extended: the file does not end with the footer")
    return data


def _read_table(source: IO[bytes], size: int, tail: bytes, table_size: int, digest: int) -> bytes:
    """The block table in front of the tail, after checking the footer's checksum over both."""
    source.seek(size - len(tail) - table_size)
    table = source.read(table_size)
    if _xxh3(table + tail[: -_DIGEST.size - len(END)]) != digest:
        raise DamagedError("the footer's checksum does not match")
    return table


def _size_mismatch(size: int) -> DamagedError:
    return DamagedError(
        f"truncated or extended: the footer describes a different file size than {size} bytes"
    )


def _read_footer_first(source: IO[bytes], size: int) -> tuple[list[int], list[int], int] | None:
    """KVC3: (block digests, block lengths, table size), read from the end before the header, or None when
    the file does not end like a KVC3 footer (KVC2, foreign, truncated: the header then tells which).

    Reading the footer first means that after the header the payload is read straight on: a seek back to
    the start after the footer would make a remote file's read-ahead fetch its first blocks twice.
    """
    if size < _TAIL.size:
        return None
    source.seek(size - _TAIL.size)
    tail = source.read(_TAIL.size)
    if tail[-len(END3) :] != END3:
        return None
    count, length, digest, _ = _TAIL.unpack(tail)
    table_size = count * _ENTRY.size
    if table_size + length + _TAIL.size > size:
        raise _size_mismatch(size)
    table = _read_table(source, size, tail, table_size, digest)
    digests, lengths = [], []
    for block_digest, block_length in _ENTRY.iter_unpack(table):
        digests.append(block_digest)
        lengths.append(block_length)
    if sum(lengths) != length or not all(0 < n <= MAX_BLOCK for n in lengths):
        raise DamagedError("the footer is damaged (block lengths do not fit the payload length)")
    return digests, lengths, table_size


def _read_footer_v2(source: IO[bytes], size: int, header_size: int) -> tuple[list[int], list[int]]:
    """KVC2 (fixed-size blocks): (block digests, block lengths), checked against the file size."""
    tail = _read_tail(source, size, header_size, _TAIL_V2)
    count, length, block_size, digest, _ = _TAIL_V2.unpack(tail)
    table_size = count * _DIGEST.size
    if not 0 < block_size <= MAX_BLOCK or header_size + length + table_size + _TAIL_V2.size != size:
        raise _size_mismatch(size)
    if count != -(-length // block_size):
        raise DamagedError("the footer is damaged (block count does not fit the payload length)")
    table = _read_table(source, size, tail, table_size, digest)
    lengths = [block_size] * count
    if count:
        lengths[-1] = length - block_size * (count - 1)
    return [d for (d,) in _DIGEST.iter_unpack(table)], lengths


class _VerifiedReader(io.RawIOBase):
    """The payload, handed out only after the block holding each byte has matched its checksum.

    Whole blocks go straight into the caller's buffer (``readinto``: numpy/pandas arrays, which the writer
    aligned to blocks) and are hashed there before returning; partial blocks go through one reused block
    buffer. ``short_reads`` (for the zstd decompressor, which takes what it gets): ``read`` returns one
    verified block as it came from the file instead of copying it to fill the request.
    """

    def __init__(self, source: IO[bytes], digests: list[int], lengths: list[int], short_reads: bool = False):
        import xxhash

        super().__init__()
        self._xxh3 = xxhash.xxh3_64_intdigest
        self._source = source
        self._digests = digests
        self._lengths = lengths
        self._starts = [0, *accumulate(lengths)]
        self._short_reads = short_reads
        self._next = 0  # index of the next block to read from the source
        self._buffer = bytearray()  # allocated on first use: aligned reads never need it
        self._pending = memoryview(self._buffer)  # verified bytes not handed out yet

    def readable(self) -> bool:
        return True

    def at_end(self) -> bool:
        return self._next == len(self._digests) and not self._pending

    def _check(self, data: Any) -> None:
        """Raise unless ``data`` (all of block ``self._next``) matches its checksum; then move on."""
        index = self._next
        if len(data) != self._lengths[index]:
            raise DamagedError(f"truncated in block {index + 1} of {len(self._digests)}")
        if self._xxh3(data) != self._digests[index]:
            first = self._starts[index]
            raise DamagedError(
                f"checksum mismatch in block {index + 1} of {len(self._digests)} "
                f"(payload bytes {first}-{first + len(data) - 1})"
            )
        self._next += 1

    def _fill_verified(self, target: memoryview) -> None:
        """Read the blocks from ``self._next`` on that exactly fill ``target``, then check each of them.

        One read call for several blocks (up to ``WRITE_SIZE``): each call has a fixed cost, and the
        blocks are still in the CPU cache when hashed right after.
        """
        filled = 0
        while filled < len(target):
            got = self._source.readinto(target[filled:])  # type: ignore[attr-defined]
            if not got:
                break
            filled += got
        start = 0
        while start < len(target):
            end = start + self._lengths[self._next]
            self._check(target[start : min(end, filled)])
            start = end

    def _whole_blocks(self, room: int) -> int:
        """How many bytes of whole blocks from ``self._next`` on fit in ``room`` (at most ``WRITE_SIZE``)."""
        index, span = self._next, 0
        limit = min(room, max(WRITE_SIZE, self._lengths[index]))
        while index < len(self._lengths) and span + self._lengths[index] <= limit:
            span += self._lengths[index]
            index += 1
        return span

    def _fill_buffer(self) -> None:
        """Read the next block into the block buffer and make it pending."""
        size = self._lengths[self._next]
        if len(self._buffer) < size:
            self._buffer = bytearray(max(self._lengths))
        block = memoryview(self._buffer)[:size]
        self._fill_verified(block)
        self._pending = block

    def readinto(self, buffer: Any) -> int:
        out = memoryview(buffer).cast("B")
        done = 0
        while done < len(out):
            if self._pending:
                take = min(len(self._pending), len(out) - done)
                out[done : done + take] = self._pending[:take]
                self._pending = self._pending[take:]
                done += take
            elif self._next == len(self._digests):
                break
            elif span := self._whole_blocks(len(out) - done):  # whole blocks fit: no copy
                self._fill_verified(out[done : done + span])
                done += span
            else:
                self._fill_buffer()
        return done

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            return self.readall()
        if len(self._pending) >= size or (self._short_reads and self._pending):
            data = bytes(self._pending[:size])  # the common small read (pickle frames): one copy
            self._pending = self._pending[len(data) :]
            return data
        if self._short_reads and self._next < len(self._digests) and size >= self._lengths[self._next]:
            block = self._source.read(self._lengths[self._next])  # bytes already: no copy
            self._check(block)
            return block
        target = bytearray(size)
        return bytes(memoryview(target)[: self.readinto(target)])
