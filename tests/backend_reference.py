"""The recipe of tests/fixtures/backends: every registered model's logits on each Keras backend.

Run it again, once per backend, whenever a model's numbers change:

    KERAS_BACKEND=tensorflow python -m tests.backend_reference
    KERAS_BACKEND=jax python -m tests.backend_reference

Each tiny model's weights are drawn with numpy from a seed, the same numbers on
every backend, so tests/test_backends.py compares the logits its backend
computes now with those another backend recorded. Each run also saves one
small model's weights file, which the tests load under the other backend.
"""

import os

import keras
import numpy as np

import kvid
from kvid.models import get_spec, list_models

FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "backends")
LOGITS = os.path.join(FIXTURE, "logits.npz")
CLIPS_SHAPE = (2, 8, 32, 32, 3)  # frames, height, width as tests/models/test_registry.py
CLASSES = 5
FILE_MODEL = ("r3d_18", {"alpha": 1 / 32})  # small: the weights file is kept in the repository


def weights_file(backend):
    """`FILE_MODEL`'s weights as `backend` saved them (`file_logits(backend)`: its logits)."""
    return os.path.join(FIXTURE, f"{FILE_MODEL[0]}.{backend}.weights.h5")


def file_logits(backend):
    return os.path.join(FIXTURE, f"{FILE_MODEL[0]}.{backend}.logits.npy")


def tiny(key, **kwargs):
    """The registry's tiny test model of `key`, returning logits."""
    kwargs = {
        **get_spec(key).test_kwargs,
        "classes": CLASSES,
        "classifier_activation": None,
        **kwargs,
    }
    return kvid.get_model(key, **kwargs)


def clips():
    return np.random.default_rng(0).uniform(-1, 1, CLIPS_SHAPE).astype("float32")


def set_seeded_weights(model, seed=0):
    """Every float variable from numpy: kernels He-scaled, BatchNorm away from its identity."""
    for index, variable in enumerate(model.weights):
        if "float" not in str(variable.dtype):
            continue  # e.g. a dropout layer's seed state
        rng = np.random.default_rng([seed, index])
        shape, name = tuple(variable.shape), variable.path.rsplit("/", 1)[-1]
        if name in ("gamma", "moving_variance"):
            value = rng.uniform(0.5, 1.5, shape)
        elif name in ("beta", "moving_mean", "bias"):
            value = rng.uniform(-0.1, 0.1, shape)
        else:
            value = rng.normal(0, 1, shape) * np.sqrt(2 / max(1, int(np.prod(shape[:-1]))))
        variable.assign(value.astype("float32"))
    return model


def logits(model):
    return keras.ops.convert_to_numpy(model(clips(), training=False))


def recorded():
    """`{(backend, key): logits}` as last recorded."""
    with np.load(LOGITS) as saved:
        return {tuple(name.split("__")): saved[name] for name in saved.files}


def main():
    if keras.backend.backend() == "jax":
        from tests.jax_initializers import use_numpy_initializers

        use_numpy_initializers()
    backend = keras.backend.backend()
    os.makedirs(FIXTURE, exist_ok=True)
    entries = recorded() if os.path.exists(LOGITS) else {}
    entries = {entry: value for entry, value in entries.items() if entry[0] != backend}
    for key in list_models():
        entries[backend, key] = logits(set_seeded_weights(tiny(key)))
    np.savez(LOGITS, **{f"{b}__{key}": value for (b, key), value in sorted(entries.items())})
    key, kwargs = FILE_MODEL
    model = set_seeded_weights(tiny(key, **kwargs), seed=1)
    model.save_weights(weights_file(backend))
    np.save(file_logits(backend), logits(model))


if __name__ == "__main__":
    main()
