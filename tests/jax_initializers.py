"""Random initial weights from numpy on the JAX backend, for the tests only.

On JAX, each Keras initializer call compiles one XLA program per weight shape
(threefry random bits): building the tiny r3d_18 took 51 CPU-s in 19 such
compiles on this project's 2-core machine, against about 2 s for the whole
build on TensorFlow. The tests load or overwrite those weights anyway, so they
draw them with numpy. Calls inside traced code (a jitted dropout) keep JAX's.
"""

import jax
import keras
import numpy as np
from keras.src.backend.jax import random as jax_random

_RNG = np.random.default_rng(0)


def _traced(seed):
    return isinstance(seed, jax.core.Tracer)


def _wrap(original, draw):
    def sample(shape, *args, seed=None, dtype=None, **kwargs):
        if _traced(seed):
            return original(shape, *args, seed=seed, dtype=dtype, **kwargs)
        values = draw(tuple(shape), *args, **kwargs)
        return jax.numpy.asarray(values, dtype or keras.config.floatx())

    return sample


def _uniform(shape, minval=0.0, maxval=1.0):
    return _RNG.uniform(minval, maxval, shape)


def _normal(shape, mean=0.0, stddev=1.0):
    return _RNG.normal(mean, stddev, shape)


def _truncated_normal(shape, mean=0.0, stddev=1.0):
    values = _RNG.normal(size=shape)
    outside = np.abs(values) > 2
    while outside.any():
        values[outside] = _RNG.normal(size=int(outside.sum()))
        outside = np.abs(values) > 2
    return mean + stddev * values


def use_numpy_initializers():
    """Replaces the JAX backend's uniform, normal and truncated normal draws."""
    jax_random.uniform = _wrap(jax_random.uniform, _uniform)
    jax_random.normal = _wrap(jax_random.normal, _normal)
    jax_random.truncated_normal = _wrap(jax_random.truncated_normal, _truncated_normal)
