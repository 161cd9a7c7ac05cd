"""Space-to-depth for clips: fold 2x2x2 neighbourhoods into channels."""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="kvid")
class SpaceToDepth3D(keras.layers.Layer):
    """`(B, T, H, W, C)` -> `(B, T/2, H/2, W/2, 8C)`, channels ordered `(dt, dh, dw, c)`.

    The channel order is that of the HowTo100M S3D-G port's `_space_to_depth`
    (a TPU trick of the MIL-NCE model), so its `conv1` weights apply unchanged.
    Frames, height and width must be even.

    Example:
        >>> clips = np.zeros((2, 8, 32, 32, 3), np.float32)
        >>> kvid.layers.SpaceToDepth3D()(clips).shape
        TensorShape([2, 4, 16, 16, 24])
    """

    def build(self, input_shape):
        """Checks that the known sizes are even."""
        odd = [d for d in input_shape[1:4] if d is not None and d % 2]
        if odd:
            raise ValueError(
                f"SpaceToDepth3D {self.name!r} needs even frames, height and width. "
                f"Received: input_shape={input_shape}"
            )

    def call(self, inputs):
        """Folds each 2x2x2 neighbourhood into the channels."""
        shape = keras.ops.shape(inputs)
        batch, frames, height, width = shape[0], shape[1], shape[2], shape[3]
        channels = inputs.shape[-1]
        x = keras.ops.reshape(
            inputs, (batch, frames // 2, 2, height // 2, 2, width // 2, 2, channels)
        )
        x = keras.ops.transpose(x, (0, 1, 3, 5, 2, 4, 6, 7))
        return keras.ops.reshape(x, (batch, frames // 2, height // 2, width // 2, 8 * channels))

    def compute_output_shape(self, input_shape):
        """Halved sizes, 8x channels."""
        batch, *sizes, channels = input_shape
        return (batch, *(None if d is None else d // 2 for d in sizes), 8 * channels)
