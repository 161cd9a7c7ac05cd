"""Self-gating (S3D-G): reweight channels by a function of their global mean."""

from __future__ import annotations

import keras
import numpy as np


@keras.saving.register_keras_serializable(package="kvid")
class SelfGating(keras.layers.Layer):
    """`y = x * sigmoid(W @ mean_{t,h,w}(x) + b)`, per clip and channel.

    The mean is global, so any clip length and frame size works (Xie et al.
    2018, section 3.2; TF-slim `s3dg.py` and the HowTo100M port). `W` is a
    `channels x channels` map with a bias, as the HowTo100M port's `fc`.

    Args:
        use_bias: whether the map has a bias (TF-slim's S3D-G has none).
        **kwargs: standard `Layer` arguments (`name`, `dtype`, ...).

    Example:
        >>> features = np.ones((2, 4, 7, 7, 16), np.float32)
        >>> kvid.layers.SelfGating(name="gating")(features).shape
        TensorShape([2, 4, 7, 7, 16])
    """

    def __init__(self, use_bias: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.use_bias = use_bias
        self.fc = None  # sized in `build`, once the channel count is known

    def build(self, input_shape):
        """Creates the `channels x channels` map."""
        channels = input_shape[-1]
        if channels is None:
            raise ValueError(
                f"SelfGating {self.name!r} needs a known channel count. Received: "
                f"input_shape={input_shape}"
            )
        self.fc = keras.layers.Dense(
            channels, use_bias=self.use_bias, dtype=self.dtype_policy, name="fc"
        )
        self.fc.build((None, channels))

    def call(self, inputs):
        """Gates `inputs` by their global mean."""
        spatial_axes = tuple(range(1, len(inputs.shape) - 1))
        pooled = keras.ops.mean(inputs, axis=spatial_axes, keepdims=True)
        return inputs * keras.ops.sigmoid(self.fc(pooled))

    def compute_output_shape(self, input_shape):
        """Gating keeps the shape."""
        return input_shape

    def get_config(self):
        """The layer config, for saving."""
        return {**super().get_config(), "use_bias": self.use_bias}

    def torch_weight_map(self) -> dict:
        """Torch names (`fc.weight`, `fc.bias`) -> `(variable, convert)` pairs."""
        found = {"fc.weight": (self.fc.kernel, np.transpose)}
        if self.use_bias:
            found["fc.bias"] = (self.fc.bias, np.asarray)
        return found
