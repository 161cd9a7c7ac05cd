"""Resolve a `weights=` argument to a file and load it into a model."""

from __future__ import annotations

import os

import keras
import numpy as np

from kvid.weights.registry import WeightSpec, get_weights_spec, list_weights
from kvid.weights.torch_state_dict import load_torch_state_dict


def cache_dir() -> str:
    """Where downloads are kept: `$KVID_HOME`, by default `~/.keras/kvid`."""
    return os.path.expanduser(os.environ.get("KVID_HOME", os.path.join("~", ".keras", "kvid")))


def fetch_weights(spec: WeightSpec) -> str:
    """Downloads (or finds cached) the file of `spec` in `cache_dir()/weights`.

    Returns:
        The local path of the verified file.

    Raises:
        ValueError: if the file's hash is not `spec.sha256` (the file is deleted).
    """
    # get_file falls back to /tmp when its cache directory does not exist yet.
    os.makedirs(cache_dir(), exist_ok=True)
    try:
        return keras.utils.get_file(
            fname=spec.file_name,
            origin=spec.url,
            file_hash=spec.sha256,
            hash_algorithm="sha256",
            cache_dir=cache_dir(),
            cache_subdir="weights",
        )
    except ValueError as error:
        if "hash" not in str(error):
            raise
        path = os.path.join(cache_dir(), "weights", spec.file_name)
        if os.path.exists(path):
            os.remove(path)
        raise ValueError(
            f"Weights {spec.name!r} for {spec.model!r} downloaded from {spec.url} do not match "
            f"their SHA-256 {spec.sha256}; the file was deleted."
        ) from None


def load_weights_file(model: keras.Model, path: str, *, ignore=()) -> None:
    """Loads a `.weights.h5` (Keras) or `.npz` (reference-named arrays) file."""
    path = os.fspath(path)
    if path.endswith(".weights.h5"):
        model.load_weights(path)
    elif path.endswith(".npz"):
        with np.load(path, allow_pickle=False) as arrays:
            state_dict = {key: arrays[key] for key in arrays.files}
        load_torch_state_dict(model, state_dict, ignore=ignore)
    else:
        raise ValueError(
            f"Unsupported weights file {path!r}: expected a `.weights.h5` or `.npz` file."
        )


def load_weights(
    model: keras.Model,
    weights: str | os.PathLike,
    *,
    model_name: str,
    include_top: bool = True,
    classes: int | None = None,
    head_layers=(),
) -> None:
    """Loads `weights` (a file path or a registered name) into `model`.

    Args:
        model: the freshly built model.
        weights: a `.weights.h5` / `.npz` path, or a name registered for `model_name`.
        model_name: the model's registry key.
        include_top: whether `model` has its classifier; without it the
            weights' classifier entries (`head_layers`) are ignored.
        classes: the model's classifier width, checked against named weights.
        head_layers: the names of the classifier layers.

    Raises:
        ValueError: for an unknown name, a missing file, a hash or shape mismatch.
    """
    ignore = () if include_top else head_layers
    weights = os.fspath(weights)
    spec = get_weights_spec(model_name, weights)
    if spec is not None:
        if include_top and classes != spec.classes:
            raise ValueError(
                f"Weights {weights!r} have {spec.classes} classes; with include_top=True "
                f"`classes` must be {spec.classes}. Received: classes={classes}"
            )
        path = fetch_weights(spec)
    elif os.path.exists(weights):
        path = weights
    else:
        available = list_weights(model_name)
        raise ValueError(
            f"`weights` must be None, an existing file or a weights name registered for "
            f"{model_name!r} ({', '.join(available) or 'none registered'}). "
            f"Received: weights={weights!r}"
        )
    load_weights_file(model, path, ignore=ignore)
