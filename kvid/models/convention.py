"""Which `Preprocessing` makes a model's clips: decided here, once, for every path.

Training, evaluation, prediction and export all call `model_convention`, so a
model is fed the same clips wherever it runs, and `--model_name` (or
`preprocessing=`) means the same thing to every app.
"""

from __future__ import annotations

import dataclasses

import keras

from kvid import preprocessing as preprocessing_lib
from kvid.layers import model_preprocessing
from kvid.models.registry import get_preprocessing, get_spec, list_models
from kvid.preprocessing import Preprocessing
from kvid.weights import get_weights_spec


def weights_convention(key: str, weights=None) -> Preprocessing:
    """The convention of model `key` built with `weights`: a named set's own, else the model's.

    Example:
        >>> kvid.models.weights_convention("s3d", "kinetics400").num_frames
        128
    """
    spec = get_weights_spec(key, weights) if isinstance(weights, str) else None
    if spec is not None and spec.preprocessing is not None:
        return spec.preprocessing
    return get_spec(key).preprocessing


def _found_convention(model: keras.Model) -> Preprocessing | None:
    """What `model` records, else the convention of the key it (or its one nested model) is."""
    recorded = model_preprocessing(model)
    if recorded is not None:
        return recorded
    keys = set(list_models())
    if model.name in keys:
        return get_preprocessing(model.name)
    nested = {layer.name for layer in model.layers if isinstance(layer, keras.Model)} & keys
    return get_preprocessing(nested.pop()) if len(nested) == 1 else None


def model_convention(
    model: keras.Model,
    preprocessing=None,
    *,
    num_frames: int | None = None,
    size: int | tuple[int, int] | None = None,
) -> Preprocessing:
    """The `Preprocessing` clips for `model` are made with.

    The convention is `preprocessing` when given; else the one the model
    records (the `ClipConvention` layer of every kvid model, also inside a model
    built on a kvid backbone, after `.keras` save and load, and set by `train`
    to the convention it trained with); else the registry entry of
    `model.name` or of the one kvid model nested in it. It is then fitted to
    the model: the crop is `size`, else the model's fixed input size, and a
    crop other than the convention's scales its resize with it (see
    `kvid.preprocessing.rescaled`, which datasets use for `image_size` too); the
    clip length is `num_frames`, else the model's fixed one, else the
    convention's.

    Args:
        model: the model to feed.
        preprocessing: a registry key (e.g. `"r3d_18"`), `ModelSpec` or
            `Preprocessing` that overrides what the model records.
        num_frames: frames per clip.
        size: the crop, an int or `(height, width)`.

    Raises:
        ValueError: if `preprocessing` is `None` and the model gives no convention.

    Example:
        >>> model = kvid.R3D18(alpha=1 / 16, input_shape=(8, 56, 56, 3))
        >>> convention = kvid.models.model_convention(model)
        >>> convention.num_frames, convention.crop_shape, convention.resize
        (8, (56, 56), (64, 86))
    """
    convention = (
        get_preprocessing(preprocessing) if preprocessing is not None else _found_convention(model)
    )
    if convention is None:
        raise ValueError(
            f"Cannot tell which preprocessing model {model.name!r} expects: it records none (or "
            "several), and neither it nor one model nested in it is named after a registry key. "
            "Pass `preprocessing=` a registry key (e.g. 'r3d_18') or a `kvid.Preprocessing`."
        )
    _, frames, height, width, _ = model.inputs[0].shape
    crop = size or ((height, width) if height and width else None)
    if crop is not None:
        convention = preprocessing_lib.rescaled(convention, crop)
    return dataclasses.replace(convention, num_frames=num_frames or frames or convention.num_frames)


def preprocess_input(x, model):
    """Maps `[0, 255]` pixels to `model`'s input range (keras.applications' `preprocess_input`).

    It neither resizes nor crops: for decoded frames of any size, use
    `preprocess_frames`.

    Args:
        x: `(..., channels)` pixels in `[0, 255]`.
        model: a registry key, `ModelSpec`, `Preprocessing` or a built model.

    Example:
        >>> kvid.preprocess_input(np.full((1, 2, 4, 4, 3), 255.0), "i3d")[0, 0, 0, 0]
        <tf.Tensor: shape=(3,), dtype=float32, numpy=array([1., 1., 1.], dtype=float32)>
    """
    convention = model_convention(model) if isinstance(model, keras.Model) else None
    return preprocessing_lib.normalize(x, convention or get_preprocessing(model))


def preprocess_frames(frames, model, *, weights=None):
    """Decoded uint8 frames to `model`'s input: resize, centre crop, normalise.

    The one call from frames to clips, for any model or named weight set:
    what evaluation, prediction and the exported `serving_default` compute.

    Args:
        frames: `[T, H, W, 3]` or `[batch, T, H, W, 3]` pixels in `[0, 255]`.
        model: a built model (its recorded convention, fitted to its input
            size), a registry key, a `ModelSpec` or a `Preprocessing`.
        weights: with a registry key, the named weight set whose convention
            to use (e.g. `"kinetics400"`).

    Example:
        >>> frames = np.zeros((16, 240, 320, 3), np.uint8)
        >>> kvid.models.preprocess_frames(frames, "s3d", weights="kinetics400").shape
        TensorShape([16, 224, 224, 3])
    """
    if isinstance(model, keras.Model):
        convention = model_convention(model)
    elif isinstance(model, str):
        convention = weights_convention(model, weights)
    else:
        convention = get_preprocessing(model)
    return preprocessing_lib.preprocess_frames(frames, convention)
