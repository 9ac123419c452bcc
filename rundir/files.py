"""Files of a run directory on any filesystem pyarrow reaches: opening a location, and atomic writes."""
from __future__ import annotations

import os
import uuid
from contextlib import contextmanager
from typing import Iterator, Union

import pyarrow as pa
import pyarrow.fs as pafs

from searchspace.cli import first_line

TEMPORARY_PREFIX = "."


class RunDirError(ValueError):
    """A run directory (or a file in it) that cannot be used; the message names it."""


def open_filesystem(out: str) -> tuple[pafs.FileSystem, str]:
    """(filesystem, path) of a local path or a filesystem URI: pyarrow's own schemes (file, s3,
    gs, hdfs, ...) first, then any protocol of an installed fsspec implementation (memory, az, ...)."""
    if "://" not in out:
        return pafs.LocalFileSystem(), os.path.abspath(os.path.expanduser(out))
    try:
        return pafs.FileSystem.from_uri(out)
    except (pa.ArrowException, OSError) as err:
        reason = first_line(err)
    try:
        import fsspec  # optional: pyarrow alone covers the usual stores
        fs, path = fsspec.core.url_to_fs(out)
    except (ImportError, ValueError, OSError):
        raise RunDirError(f"{out}: unsupported location: {reason}") from None
    return pafs.PyFileSystem(pafs.FSSpecHandler(fs)), path


@contextmanager
def atomic_output(fs: pafs.FileSystem, path: str) -> Iterator[pa.NativeFile]:
    """A stream whose content appears at ``path`` only when the block ends without an error:
    it is written to a hidden temporary name in the same folder, then renamed over ``path``."""
    folder, name = path.rsplit("/", 1)
    temporary = f"{folder}/{TEMPORARY_PREFIX}{name}.{uuid.uuid4().hex[:12]}.tmp"
    try:
        with fs.open_output_stream(temporary) as stream:
            yield stream
        fs.move(temporary, path)
    except OSError as err:  # a full disk, a read-only folder: one line naming the file
        _remove(fs, temporary)
        raise RunDirError(f"{path}: cannot write: {first_line(err)}") from None
    except BaseException:
        _remove(fs, temporary)
        raise


def make_dir(fs: pafs.FileSystem, path: str) -> None:
    """``path`` and its parents; a folder that cannot be made is a :class:`RunDirError` naming it."""
    try:
        fs.create_dir(path, recursive=True)
    except OSError as err:
        raise RunDirError(f"{path}: cannot make the folder: {first_line(err)}") from None


def _remove(fs: pafs.FileSystem, temporary: str) -> None:
    """Delete a temporary left by a failed write, if there is one (and it can be deleted)."""
    try:
        if fs.get_file_info(temporary).type != pafs.FileType.NotFound:
            fs.delete_file(temporary)
    except OSError:
        pass  # resume removes what a failed writer left


def write_file_atomic(target: Union[str, os.PathLike], data: bytes) -> None:
    """Write ``data`` to a local path or URI; an existing file is replaced only on success."""
    fs, path = open_filesystem(str(target))
    if fs.get_file_info(path).type == pafs.FileType.Directory:
        raise RunDirError(f"{target}: is a directory")
    folder = path.rsplit("/", 1)[0] or "/"
    # Object stores have no folders to check; a local one must exist (we do not guess and make it).
    if isinstance(fs, pafs.LocalFileSystem) and fs.get_file_info(folder).type != pafs.FileType.Directory:
        raise RunDirError(f"{target}: cannot write: folder {folder} does not exist")
    with atomic_output(fs, path) as stream:  # an OSError comes out as a RunDirError naming the file
        stream.write(data)
