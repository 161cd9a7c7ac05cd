"""Saves every registered model's tiny weights and logits under this process's Keras backend.

    KERAS_BACKEND=tensorflow python -m tests.backend_reference OUTPUT_DIR

writes `<key>.weights.h5` for every key of `kvid.models.list_models()` and
`logits.npz` (the shared input `clips` and each model's logits on it), which
tests/test_backends.py loads under another backend.
"""

import os
import sys

import keras
import numpy as np

import kvid
from kvid.models import get_spec, list_models

CLIPS_SHAPE = (2, 8, 32, 32, 3)  # frames, height, width as tests/models/test_registry.py
CLASSES = 5


def tiny(key):
    """The registry's tiny test model of `key`, returning logits."""
    kwargs = {**get_spec(key).test_kwargs, "classes": CLASSES, "classifier_activation": None}
    return kvid.get_model(key, **kwargs)


def clips():
    return np.random.default_rng(0).uniform(-1, 1, CLIPS_SHAPE).astype("float32")


def randomize_batch_norm(model, seed):
    """Moving statistics and affine weights away from their identity initial values."""
    rng = np.random.default_rng(seed)
    for layer in model._flatten_layers():
        if isinstance(layer, keras.layers.BatchNormalization):
            for variable in layer.weights:
                name = variable.path.rsplit("/", 1)[-1]
                low, high = (0.5, 1.5) if name in ("gamma", "moving_variance") else (-0.1, 0.1)
                variable.assign(rng.uniform(low, high, variable.shape).astype("float32"))


def main(output_dir):
    if keras.backend.backend() == "jax":
        from tests.jax_initializers import use_numpy_initializers

        use_numpy_initializers()
    keras.utils.set_random_seed(0)
    os.makedirs(output_dir, exist_ok=True)
    x = clips()
    logits = {"clips": x}
    for index, key in enumerate(list_models()):
        model = tiny(key)
        randomize_batch_norm(model, index)
        model.save_weights(os.path.join(output_dir, f"{key}.weights.h5"))
        logits[key] = keras.ops.convert_to_numpy(model(x, training=False))
    np.savez(os.path.join(output_dir, "logits.npz"), backend=keras.backend.backend(), **logits)


if __name__ == "__main__":
    main(*sys.argv[1:])
