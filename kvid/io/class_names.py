"""Class-name files: one name per line, `class_names.txt` beside what they name.

`train` writes one beside its model, `convert_directory` beside its TFRecord
shards; evaluation, prediction and export read them back with the same
functions, so a name never changes its index on the way.
"""

from __future__ import annotations

import os

import tensorflow as tf

from kvid.io import atomic

CLASS_NAMES_FILE = "class_names.txt"


def write_class_names(directory: str | os.PathLike, class_names) -> str:
    """Writes one class name per line to `directory/class_names.txt`; returns the path.

    Example:
        >>> kvid.io.write_class_names("run", ["cat", "dog"])
        'run/class_names.txt'
        >>> kvid.io.read_class_names("run/class_names.txt")
        ('cat', 'dog')
    """
    path = os.path.join(os.fspath(directory), CLASS_NAMES_FILE)
    with atomic.atomic_path(path) as temporary, tf.io.gfile.GFile(temporary, "w") as f:
        f.write("".join(f"{name}\n" for name in class_names))
    return path


def read_class_names(path: str | os.PathLike) -> tuple[str, ...]:
    """Reads a one-name-per-line file (any `tf.io.gfile` path); blank lines are skipped.

    Raises:
        ValueError: if the file does not exist or names no class.
    """
    path = os.fspath(path)
    if not tf.io.gfile.exists(path):
        raise ValueError(f"No class-names file at {path!r}.")
    with tf.io.gfile.GFile(path) as f:
        names = tuple(line.strip() for line in f if line.strip())
    if not names:
        raise ValueError(f"The class-names file {path!r} names no class.")
    return names


def class_names_beside(path: str | os.PathLike) -> tuple[str, ...] | None:
    """The names in the `class_names.txt` in the folder of `path` (a file), if there is one."""
    path = os.fspath(path)
    folder = os.path.dirname(path if "://" in path else os.path.abspath(path))
    beside = os.path.join(folder, CLASS_NAMES_FILE)
    return read_class_names(beside) if tf.io.gfile.exists(beside) else None
