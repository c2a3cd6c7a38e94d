"""The dataset that carries non-catalog (memory) datasets between steps as files under the pipeline root.

Layout: ``<root>/kedro-vertex-ci/<run id>/<escaped dataset name>.bin``, one file per dataset and run, so
two runs never see each other's data and a rerun with the same run id overwrites its own files. ``root``
is a local folder, ``gs://bucket/prefix`` (through :mod:`.gcs`) or any other fsspec URL. The bytes are written by
:mod:`kedro_vertex_ci.runtime.codec` (cloudpickle, zstd on object stores), with a checksum per block
that is verified before anything is unpickled (:class:`DamagedIntermediateError` otherwise).

Writes are atomic: the data goes to a temp name next to the target (``.<name>.<random>.tmp``) and is then
renamed (``os.replace`` locally; a server-side copy + delete of the temp object on object stores), so a
step that fails or is killed half-way never leaves a readable half file under the final name.

Dataset names are escaped to one safe path component (percent-encoding of everything outside
``[A-Za-z0-9._~-]`` and of a leading dot), which is stable and reversible: :func:`unescape_name`.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, unquote

from kedro.io import AbstractDataset, DatasetError

from ..model import strip_transcoding
from . import codec

FOLDER = "kedro-vertex-ci"
SUFFIX = ".bin"


class MissingIntermediateError(DatasetError):
    """A step reads an intermediate dataset that no earlier step of this run wrote."""


class DamagedIntermediateError(DatasetError):
    """An intermediate file failed its checksum (or is foreign, truncated, or of an older format)."""


def escape_name(name: str) -> str:
    """``name`` as one file-name component; reversible with :func:`unescape_name`."""
    escaped = quote(name, safe="")
    if escaped.startswith("."):
        escaped = "%2E" + escaped[1:]
    return escaped


def unescape_name(escaped: str) -> str:
    return unquote(escaped)


def run_folder(root: str, run_id: str) -> str:
    """Where one run's intermediate datasets live."""
    return f"{root.rstrip('/')}/{FOLDER}/{escape_name(run_id)}"


def dataset_path(root: str, run_id: str, name: str) -> str:
    """The file holding dataset ``name`` of run ``run_id`` under ``root``."""
    return f"{run_folder(root, run_id)}/{escape_name(name)}{SUFFIX}"


def _is_local(path: str) -> bool:
    return "://" not in path or path.startswith("file://")


def _local(path: str) -> str:
    return path[len("file://") :] if path.startswith("file://") else path


def _copy(data: Any) -> Any:
    """Copy like Kedro's MemoryDataset does, so an in-step consumer cannot mutate what another one sees."""
    from ..kedro_private import copy_like_memory_dataset

    return copy_like_memory_dataset(data)


class IntermediateDataset(AbstractDataset[Any, Any]):
    """A Kedro dataset stored as one cloudpickle file at ``path``: zstd-compressed on an object store
    (``gs://``), stored as it is in a local folder.

    ``keep_in_memory``: also keep the saved object (as MemoryDataset would) so consumers inside the same
    step get it without a read back; the file is still written for later steps.
    """

    def __init__(
        self,
        path: str,
        dataset_name: str | None = None,
        keep_in_memory: bool = False,
        producer: str = "",
        meta: Mapping[str, Any] | None = None,
    ):
        self._path = path
        self._dataset_name = dataset_name
        self._keep_in_memory = keep_in_memory
        self._producer = producer  # who writes it (for error messages), e.g. "node 'split' (step a, b)"
        self._meta = dict(meta or {})  # stored in the file's header when saving
        self._data: Any = None

    @classmethod
    def for_run(
        cls,
        root: str,
        run_id: str,
        name: str,
        keep_in_memory: bool = False,
        producer: str = "",
        meta: Mapping[str, Any] | None = None,
    ) -> IntermediateDataset:
        """The file of ``name`` in a run, keyed by the name without its transcoding suffix (``m@a`` → ``m``)."""
        meta = {"dataset": name, "run_id": run_id, **(meta or {})}
        return cls(
            dataset_path(root, run_id, strip_transcoding(name)),
            dataset_name=name,
            keep_in_memory=keep_in_memory,
            producer=producer,
            meta=meta,
        )

    @property
    def path(self) -> str:
        return self._path

    def _describe(self) -> dict[str, Any]:
        return {"path": self._path}

    def load(self) -> Any:
        if self._data is not None:
            return _copy(self._data)
        try:
            if _is_local(self._path):
                with open(_local(self._path), "rb") as source:
                    return codec.load(source, os.fstat(source.fileno()).st_size)
            fs, path = _filesystem(self._path)
            with fs.open(path, "rb", block_size=8 << 20) as source:
                return codec.load(source, source.size)
        except FileNotFoundError as err:
            raise MissingIntermediateError(self._missing_message()) from err
        except codec.CodecError as err:
            raise DamagedIntermediateError(self._damaged_message(err)) from err

    def save(self, data: Any) -> None:
        if _is_local(self._path):
            _write_local(_local(self._path), data, self._meta)
        else:
            _write_remote(self._path, data, self._meta)
        if self._keep_in_memory:
            self._data = _copy(data)

    def _exists(self) -> bool:
        if self._data is not None:
            return True
        if _is_local(self._path):
            return os.path.exists(_local(self._path))
        fs, path = _filesystem(self._path)
        return bool(fs.exists(path))

    def _release(self) -> None:
        self._data = None

    def _label(self) -> str:
        return (
            f"intermediate dataset {self._dataset_name!r}" if self._dataset_name else "intermediate dataset"
        )

    def _run_and_root(self) -> tuple[str, str]:
        folder, _, _ = self._path.rpartition("/")
        root, _, run_id = folder.rpartition("/")
        return unescape_name(run_id), root.removesuffix("/" + FOLDER)

    def _missing_message(self) -> str:
        run_id, root = self._run_and_root()
        return (
            f"{self._label()} not found: no {self._path} (run id {run_id!r}, root {root!r}). "
            "The step that writes it must have run first with the same --run-id and --root."
        )

    def _damaged_message(self, err: codec.CodecError) -> str:
        run_id, _ = self._run_and_root()
        producer = f", written by {self._producer}" if self._producer else ""
        return (
            f"{self._label()} of run {run_id!r} cannot be trusted: {self._path}: {err}{producer}. "
            "Nothing was unpickled from it. Rerun the step that writes it with the same --run-id "
            "(run-local: --from-nodes <its node>); if this repeats, check the disk or bucket."
        )


def _filesystem(url: str) -> tuple[Any, str]:
    """``gs://`` through our small JSON-API client (:mod:`.gcs`: gcsfs and its Google stack weigh ~65 MB in
    every step image); any other scheme through fsspec (``s3://`` needs s3fs installed in the image)."""
    if url.startswith(("gs://", "gcs://")):
        from .gcs import GcsFileSystem

        return GcsFileSystem(), url.split("://", 1)[1]
    import fsspec.core

    fs, path = fsspec.core.url_to_fs(url)
    return fs, path


def _write_local(path: str, data: Any, meta: Mapping[str, Any]) -> None:
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as out:
            codec.dump(data, out, compress=False, meta=meta)
        os.replace(temp, path)
    except BaseException:
        _remove_quietly(temp)
        raise


def _remove_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _write_remote(url: str, data: Any, meta: Mapping[str, Any]) -> None:
    """Upload under a temp object name, then rename: an object store shows a complete object or none."""
    fs, path = _filesystem(url)
    folder, _, name = path.rpartition("/")
    temp = f"{folder}/.{name}.{uuid.uuid4().hex}.tmp"
    out = fs.open(temp, "wb", block_size=16 << 20)
    try:
        codec.dump(data, out, meta=meta)
        out.close()
        # Server-side copy, then delete: the target appears whole. Not fs.mv — gcsfs first tries the
        # moveTo API, which emulators answer 501 to after ~30 s of retries.
        fs.copy(temp, path)
        fs.rm(temp)
    except BaseException:
        _abandon(out)
        try:
            fs.rm_file(temp)  # not guarded by fs.exists: its listing cache may predate the upload
        except Exception:  # noqa: BLE001 — absent already, or cleanup failed: the original error matters
            pass
        raise


def _abandon(out: Any) -> None:
    """Make sure a half-written remote file is never committed.

    fsspec files commit their buffer on ``close()``, which garbage collection also calls; gcsfs's
    ``discard()`` only cancels an upload that has started (more than one block written), so the file is
    marked closed by hand as well.
    """
    if out.closed:
        return
    try:
        out.discard()
    except Exception:  # noqa: BLE001 — cancelling is best effort; the temp object is removed after
        pass
    out.closed = True
