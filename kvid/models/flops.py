"""Count the floating-point operations of a built model's convolutions and dense layers."""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np

_COUNTED = (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D, keras.layers.Dense)


def _counted_layers(model):
    """Conv and Dense layers of `model`, including those of nested models."""
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _counted_layers(layer)
        elif isinstance(layer, _COUNTED):
            yield layer


def count_flops(model: keras.Model, input_shape: Sequence[int]) -> int:
    """FLOPs of one clip through `model`'s Conv and Dense layers.

    A multiply-add counts as 2 FLOPs (torchvision's `_ops` metadata and papers
    quoting "GMACs" count it as 1). Biases, BatchNorm, activations, pooling
    and layers nested inside custom layers (e.g. the gating maps of S3D-G,
    ~0.1% of its total) are not counted.

    Args:
        model: a functional model, possibly built with `None` sizes.
        input_shape: the concrete `(frames, height, width, channels)` of one clip.

    Returns:
        The FLOP count, an int.

    Raises:
        ValueError: if `input_shape` is not fully known.

    Example:
        >>> round(kvid.models.flops.count_flops(kvid.S3D(), (16, 224, 224, 3)) / 2e9, 1)  # GMACs
        18.0
    """
    if any(not isinstance(d, int) or d < 1 for d in input_shape):
        raise ValueError(
            f"`input_shape` must be positive integers for one clip. Received: {input_shape}"
        )
    layers = list(_counted_layers(model))
    if not layers:
        return 0
    probe = keras.Model(model.inputs, [layer.output for layer in layers])
    outputs = probe.compute_output_spec(keras.KerasTensor((1, *input_shape)))
    flops = 0
    for layer, output in zip(layers, outputs, strict=True):
        positions = int(np.prod(output.shape[1:-1]))  # output positions per clip
        if isinstance(layer, keras.layers.Dense):
            fan_in = layer.kernel.shape[0]
        else:
            fan_in = int(np.prod(layer.kernel_size)) * layer.kernel.shape[-2]
        flops += 2 * positions * output.shape[-1] * fan_in
    return flops
