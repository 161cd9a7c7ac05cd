"""The files a training run leaves for inference: the `.keras` model and its class names."""

from __future__ import annotations

import os

import keras

from kvid import preprocessing as preprocessing_lib
from kvid.io import atomic
from kvid.models import get_preprocessing, list_models

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


def model_convention(
    model: keras.Model, model_name: str | None = None
) -> preprocessing_lib.Preprocessing:
    """The `Preprocessing` `model` expects.

    `model_name` (a registry key) if given; else the convention the model
    records (its `ClipConvention` layer: every kvid model, models built on a
    kvid backbone, and models trained by `train` at their own size); else the
    registry entry named `model.name`.

    Raises:
        ValueError: if none applies, or the convention's crop does not fit the
            model's input size.
    """
    if model_name:
        convention = get_preprocessing(model_name)
    else:
        convention = preprocessing_lib.model_preprocessing(model)
    if convention is None:
        convention = get_preprocessing(preprocessing_key(model))
    height, width = model.inputs[0].shape[2:4]
    if any(
        side not in (None, crop)
        for side, crop in zip((height, width), convention.crop_shape, strict=True)
    ):
        raise ValueError(
            f"The model's input size {(height, width)} does not match the crop "
            f"{convention.crop_shape} of its preprocessing. Received: model_name={model_name!r}"
        )
    return convention


def class_names_beside(model_path: str | os.PathLike) -> tuple[str, ...] | None:
    """The names in `class_names.txt` next to a model file (written by `train`), if any."""
    path = os.path.join(os.path.dirname(os.path.abspath(model_path)), CLASS_NAMES_FILE)
    return read_class_names(path) if os.path.exists(path) else None


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
