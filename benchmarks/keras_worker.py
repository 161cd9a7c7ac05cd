"""Runs kvid models under another Keras backend for benchmarks/models.py.

The Keras backend is fixed when Keras is imported, so `models.py --backend=jax`
times the JAX forward pass in this process (started with `KERAS_BACKEND=jax`),
one JSON line each way over stdin/stdout:
`{"build": key, "batch": b, "clip": [t, h, w, c]}`, answered with the backend's
name and version, then `{"run": "forward"}`, answered with `{"seconds": s}`.
The forward pass is the model's inference call compiled once with `jax.jit`
(XLA), as Keras' own `predict` does on JAX. Initial weights come from numpy
(tests/jax_initializers.py): JAX's would compile one program per weight shape.
"""

import json
import sys
import time

import jax
import keras
import numpy as np

import kvid
from tests.jax_initializers import use_numpy_initializers


def build(request):
    """The jitted inference forward of one registered model, on a fixed batch."""
    model = kvid.get_model(request["build"], **request.get("kwargs", {}))
    x = np.random.default_rng(0).uniform(size=(request["batch"], *request["clip"]))
    x = jax.numpy.asarray(x, "float32")
    trainable = [v.value for v in model.trainable_variables]
    non_trainable = [v.value for v in model.non_trainable_variables]

    @jax.jit
    def forward(trainable, non_trainable, x):
        return model.stateless_call(trainable, non_trainable, x, training=False)[0]

    return lambda: forward(trainable, non_trainable, x).block_until_ready()


def main():
    if keras.backend.backend() != "jax":
        raise SystemExit(f"Start this worker with KERAS_BACKEND=jax, not {keras.backend.backend()}")
    use_numpy_initializers()
    forward = None
    for line in sys.stdin:
        request = json.loads(line)
        if "build" in request:
            forward = build(request)
            answer = {"backend": "jax", "version": jax.__version__}
        else:
            start = time.perf_counter()
            forward()
            answer = {"seconds": time.perf_counter() - start}
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
