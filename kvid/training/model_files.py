"""The files a training run leaves for inference: the `.keras` model and its class names."""

from __future__ import annotations

import os

import keras

from kvid import atomic
from kvid.models import list_models

CLASS_NAMES_FILE = "class_names.txt"


def load_model(path: str | os.PathLike) -> keras.Model:
    """Loads a `.keras` model file for inference."""
    path = os.fspath(path)
    if not (path.endswith(".keras") and os.path.isfile(path)):
        raise ValueError(f"Expected a `.keras` model file. Received: model_path={path!r}")
    return keras.saving.load_model(path, compile=False)


def preprocessing_key(model: keras.Model, model_name: str | None = None) -> str:
    """The registry key whose input convention `model` expects (by default its name)."""
    key = model_name or model.name
    if key not in list_models():
        raise ValueError(
            f"Cannot tell the input convention of model {model.name!r}: pass a registry key. "
            f"Received: model_name={model_name!r}"
        )
    return key


def write_class_names(directory: str, class_names) -> str:
    """Writes one class name per line to `directory/class_names.txt`; returns the path."""
    path = os.path.join(directory, CLASS_NAMES_FILE)
    with atomic.atomic_file(path) as f:
        f.write("".join(f"{name}\n" for name in class_names))
    return path


def read_class_names(path: str) -> tuple[str, ...]:
    """Reads a one-name-per-line file."""
    with open(path) as f:
        return tuple(line.strip() for line in f if line.strip())
