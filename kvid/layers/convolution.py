"""A Conv3D that skips the kernel taps which can only meet zero padding."""

from __future__ import annotations

import keras

from kvid.layers import backend


@keras.saving.register_keras_serializable(package="kvid")
class Conv3D(keras.layers.Conv3D):
    """`keras.layers.Conv3D`, minus the work on taps that only see `"same"` padding.

    At stride 1, an axis of static length `L` reaches only the central `2L - 1`
    taps of a longer kernel; the others multiply zeros. So a 3x3x3 kernel over a
    single frame (the last stage of a video ResNet on 8-frame clips) runs as its
    1x3x3 centre: a third of the work forward and backward, with the same outputs
    and gradients (the skipped taps' gradients are zero either way). The weights
    and the saved model are those of a full `keras.layers.Conv3D`. The slice
    runs on the TensorFlow backend; on JAX and PyTorch this is exactly
    `keras.layers.Conv3D`.

    Example:
        >>> conv = kvid.layers.Conv3D(8, 3, padding="same", use_bias=False)
        >>> conv(np.zeros((2, 1, 16, 16, 3), np.float32)).shape  # 1 frame: the 1x3x3 centre runs
        TensorShape([2, 1, 16, 16, 8])
        >>> conv.kernel.shape  # the full kernel is saved
        TensorShape([3, 3, 3, 3, 8])
    """

    def convolution_op(self, inputs, kernel):
        """The convolution over the taps that can meet data."""
        taps = self._reachable_taps(inputs.shape) if backend.use_tensorflow_kernels() else None
        if taps is not None:
            # A Slice, not a StridedSlice: its gradient is a Pad, ~6x faster on CPU.
            start, size = zip(*taps, strict=True)
            kernel = keras.ops.slice(kernel, (*start, 0, 0), (*size, *kernel.shape[-2:]))
        return super().convolution_op(inputs, kernel)

    def _reachable_taps(self, input_shape):
        """Per-axis `(first tap, taps)` that can meet data, or None if all taps can."""
        axes = input_shape[1:-1] if self.data_format == "channels_last" else input_shape[2:]
        taps, trimmed = [], False
        for length, size, stride, dilation in zip(
            axes, self.kernel_size, self.strides, self.dilation_rate, strict=True
        ):
            reachable = size if length is None else 2 * length - 1
            if self.padding != "same" or stride != 1 or dilation != 1 or reachable >= size:
                taps.append((0, size))
            else:
                # "same" pads (size - 1) // 2 in front, so tap i meets offset i - that.
                first = max((size - 1) // 2 - (length - 1), 0)
                taps.append((first, min(reachable, size - first)))
                trimmed = True
        return tuple(taps) if trimmed else None
