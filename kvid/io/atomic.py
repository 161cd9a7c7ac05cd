"""Files and folders that a reader finds complete or not at all.

Every kvid writer whose output a later run, a reader or a server may open
(checkpoints, backups, exports, TFRecord shards, caches, manifests) writes
to a temporary name next to the target and renames it when complete:
`os.replace` and `os.rename` are atomic on one file system, so a kill at any
moment leaves either the previous file or the new one, never a torn one.
Temporary names start with `.partial-` and record the writing process, so
the next write to the same folder removes the leftovers of dead writers
without touching those of a live one.

This module imports nothing of kvid.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import shutil
import socket
from collections.abc import Iterator

PARTIAL_PREFIX = ".partial-"
_SUFFIX = ".partial"

_HOST = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:6]


def is_partial(name: str) -> bool:
    """Whether `name` (a file or folder name) is a temporary name of this module."""
    return os.path.basename(name).startswith(PARTIAL_PREFIX)


def _is_remote(path: str) -> bool:
    # Object stores (gs://, s3://) publish an object only when its upload
    # completes, and have no rename: write those in place.
    return "://" in path


def _temporary_name(path: str, keep_extension: bool = False) -> str:
    directory, name = os.path.split(path)
    token = f"{_HOST}-{os.getpid()}-{secrets.token_hex(3)}"
    # A glob such as "shards/*.tfrecord" (TensorFlow's matches hidden files) must not find
    # it: the name ends in ".partial" unless the writer checks the extension.
    suffix = "" if keep_extension else _SUFFIX
    return os.path.join(directory, f"{PARTIAL_PREFIX}{token}-{name}{suffix}")


def _parse(entry: str):
    """`(host, pid, target name)` of a temporary name, or `None`."""
    parts = entry[len(PARTIAL_PREFIX) :].split("-", 3)
    if not entry.startswith(PARTIAL_PREFIX) or len(parts) < 4 or not parts[1].isdigit():
        return None
    return parts[0], int(parts[1]), parts[3].removesuffix(_SUFFIX)


def _writer_is_dead(host: str, pid: int) -> bool:
    """Whether a writing process is gone (known only for this host's processes)."""
    if host != _HOST:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


def remove_leftovers(directory: str | os.PathLike, name: str | None = None) -> list[str]:
    """Removes the temporary files and folders that killed writers left in `directory`.

    Args:
        directory: the folder to clean.
        name: only the leftovers of writes to this target name; `None` for all.

    Returns:
        The removed paths.
    """
    directory = os.fspath(directory)
    try:
        entries = os.listdir(directory)
    except FileNotFoundError:
        return []
    removed = []
    for entry in entries:
        parsed = _parse(entry)
        if parsed is None or not _writer_is_dead(*parsed[:2]):
            continue
        if name is not None and parsed[2] != name:
            continue
        path = os.path.join(directory, entry)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)
        removed.append(path)
    return removed


def fsync(path: str | os.PathLike):
    """Flushes a file (or every file under a folder, and the folder) to the disk."""
    if _is_remote(os.fspath(path)):
        return
    if os.path.isdir(path):
        for root, _, names in os.walk(path):
            for name in names:
                fsync(os.path.join(root, name))
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _commit(temporary: str, path: str, *, folder: bool, durable: bool):
    if durable:
        fsync(temporary)
    if folder:
        # Unlike os.replace, never merges into (or replaces) an existing folder.
        if os.path.exists(path):
            raise FileExistsError(f"Cannot publish {temporary!r}: {path!r} already exists.")
        os.rename(temporary, path)
    else:
        os.replace(temporary, path)
    if durable:
        fsync(os.path.dirname(path) or ".")


def _prepared_temporary(path: str, keep_extension: bool) -> str:
    """A temporary name next to `path`, its folder made and dead writers' leftovers removed."""
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    remove_leftovers(directory, os.path.basename(path))
    return _temporary_name(path, keep_extension)


@contextlib.contextmanager
def atomic_path(
    path: str | os.PathLike, *, durable: bool = True, keep_extension: bool = False
) -> Iterator[str]:
    """Yields a temporary path to write a file at; it becomes `path` when the block succeeds.

    For writers that take a path (Keras' `save`, `tf.io.TFRecordWriter`,
    PyAV). The temporary file is in the same folder, a hidden file whose
    name ends in `.partial`. If the block raises, the temporary file is
    removed and `path` is untouched.

    Args:
        path: the file to write (replaced if it exists).
        durable: fsync the file and its folder (survives a power cut, not
            only a kill).
        keep_extension: end the temporary name with `path`'s name instead,
            for writers that check the extension (`.keras`, `.weights.h5`,
            `.mp4`); a glob for that extension then matches it.

    Example:
        >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
        >>> with kvid.io.atomic.atomic_path("run/best.keras", keep_extension=True) as temporary:
        ...     model.save(temporary)
        >>> tf.io.gfile.listdir("run")
        ['best.keras']
    """
    path = os.fspath(path)
    if _is_remote(path):
        yield path
        return
    temporary = _prepared_temporary(path, keep_extension)
    try:
        yield temporary
        _commit(temporary, path, folder=False, durable=durable)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(temporary)
        raise


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike, mode: str = "w", *, durable: bool = True, **kwargs):
    """Opens a temporary file for writing; it becomes `path` when the block succeeds.

    Args:
        path: the file to write (replaced if it exists).
        mode: `"w"` or `"wb"`.
        durable: see `atomic_path`.
        **kwargs: more `open` arguments (`newline`, `encoding`).

    Example:
        >>> import json
        >>> with kvid.io.atomic.atomic_file("manifest.json") as f:
        ...     json.dump({"epochs": 10}, f)
        >>> with open("manifest.json") as f:
        ...     json.load(f)
        {'epochs': 10}
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"`mode` must be 'w' or 'wb'. Received: mode={mode!r}")
    with atomic_path(path, durable=durable) as temporary:
        with open(temporary, mode, **kwargs) as f:
            yield f


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike, *, durable: bool = True) -> Iterator[str]:
    """Yields a temporary folder path; it is renamed to `path` when the block succeeds.

    The temporary folder is a sibling of `path` (same file system) and is not
    created: the writer creates it. `path` must not exist. If the block
    raises, the temporary folder is removed.

    Args:
        path: the folder to publish.
        durable: see `atomic_path`.

    Raises:
        FileExistsError: if `path` exists when the folder is complete.
    """
    path = os.fspath(path).rstrip(os.sep)
    if _is_remote(path):
        yield path
        return
    temporary = _prepared_temporary(path, keep_extension=True)
    try:
        yield temporary
        _commit(temporary, path, folder=True, durable=durable)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise


def append_text(file, text: str, *, durable: bool = True):
    """Appends `text` to an open text file and flushes it (a log row, say).

    An append is not atomic: a kill can leave the start of `text` at the end
    of the file, which readers of logs written this way must drop (a line
    without its line end).
    """
    file.write(text)
    file.flush()
    if durable:
        os.fsync(file.fileno())


def sha256(path: str | os.PathLike) -> str:
    """The hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
