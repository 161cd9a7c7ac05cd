"""Which kernels kvid's layers run: TensorFlow's fast paths, or `keras.ops` on any backend.

The fast paths (`Conv3D`'s sliced kernel, `BatchNormalization`'s fused kernel on
4D views) are TensorFlow graphs; on JAX and PyTorch the same layers are exactly
their Keras parents, so weights and numbers are the same on every backend.
"""

from __future__ import annotations

import keras


def use_tensorflow_kernels() -> bool:
    """Whether the TensorFlow-only fast paths may run: only on the TensorFlow backend."""
    return keras.backend.backend() == "tensorflow"
