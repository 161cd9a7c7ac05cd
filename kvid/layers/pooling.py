"""The Inception heads' pooling: the mean of sliding-window averages, at any clip size."""

from __future__ import annotations

import keras
from keras import ops


def _axis_weights(size, window, dtype):
    """Each position's share of the mean over all stride-1 windows along one axis.

    A window of `k = min(window, size)` slides over `size - k + 1` positions;
    position `j` lies in `min(j + 1, size - j, k, size - k + 1)` of them.
    """
    k = ops.minimum(window, size)
    outputs = size - k + 1
    j = ops.arange(size)
    count = ops.minimum(ops.minimum(j + 1, size - j), ops.minimum(k, outputs))
    return ops.cast(count, dtype) / ops.cast(k * outputs, dtype)


@keras.saving.register_keras_serializable(package="kvid")
class WindowMeanPooling3D(keras.layers.Layer):
    """`AveragePooling3D(window, strides=1)` followed by a global mean, as one weighted mean.

    I3D and S3D average `(2, 7, 7)` windows, then (after their linear
    classifier) take the mean over all windows. That equals one weighted
    global mean, which this layer computes, keeping dims: `(B, 1, 1, 1, C)`.
    Smaller inputs than `window`, where the references fail, use windows
    clamped to the input size, so any clip works.

    Args:
        window: the `(frames, height, width)` averaging window.
        **kwargs: standard `Layer` arguments.

    Example:
        >>> features = np.ones((2, 4, 7, 7, 16), np.float32)
        >>> kvid.layers.WindowMeanPooling3D((2, 7, 7))(features).shape
        TensorShape([2, 1, 1, 1, 16])
    """

    def __init__(self, window, **kwargs):
        super().__init__(**kwargs)
        self.window = tuple(int(w) for w in window)

    def call(self, inputs):
        """Weights every position by its share of the windows, then sums."""
        shape = ops.shape(inputs)
        t, h, w = (
            _axis_weights(shape[axis], size, inputs.dtype)
            for axis, size in zip((1, 2, 3), self.window, strict=True)
        )
        pooled = ops.einsum("bthwc,t,h,w->bc", inputs, t, h, w)
        return ops.reshape(pooled, (-1, 1, 1, 1, inputs.shape[-1]))

    def compute_output_shape(self, input_shape):
        """`(batch, 1, 1, 1, channels)`."""
        return (input_shape[0], 1, 1, 1, input_shape[-1])

    def get_config(self):
        """The layer config, for saving."""
        return {**super().get_config(), "window": self.window}
