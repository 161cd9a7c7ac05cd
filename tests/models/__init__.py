"""Shared by the model tests."""

import functools

import keras
import numpy as np

import kvid

# The first map of a global-context block gets no gradient while the second map, which starts
# at zero (each DG-P3D block starts as its P3D block), multiplies everything after it.
ZERO_GRADIENT_AT_FIRST_STEP = "_gc_fc1/"


def call(model, x):
    """The model's outputs on `x` as numpy, called eagerly (a `predict` traces per shape)."""
    return keras.tree.map_structure(keras.ops.convert_to_numpy, model(x, training=False))


def assert_every_kernel_trained(model, before):
    """The stem's and the head's kernels moved from `before` (`{variable path: value}`), and
    at least 3/4 of the kernels in each quarter of the network's depth did.

    Not every kernel: at tiny widths a 1-channel branch can get no gradient in one step.
    """
    kernels = [  # every kernel, trainable or not: a frozen layer must count as not trained
        w.path
        for w in model.weights
        if w.name.endswith("kernel") and ZERO_GRADIENT_AT_FIRST_STEP not in w.path
    ]
    after = {w.path: keras.ops.convert_to_numpy(w) for w in model.weights}
    moved = [not np.array_equal(before[path], after[path]) for path in kernels]
    assert moved[0] and moved[-1], f"stem {kernels[0]} or head {kernels[-1]} did not train"
    for quarter in np.array_split(np.arange(len(kernels)), 4):
        unchanged = [kernels[i] for i in quarter if not moved[i]]
        assert len(unchanged) <= len(quarter) / 4, f"kernels that did not train: {unchanged}"


@functools.cache
def trainable_parameters(key, **kwargs):
    """torch's `parameters()` count of the full-size model `key`: BatchNorm statistics excluded.

    Cached: several modules check the counts of the same models, and a build takes seconds.
    """
    model = kvid.get_model(key, **kwargs)
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)
