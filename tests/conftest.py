"""Runs the suite as users run kvid: with oneDNN on, set before TensorFlow loads.

Test modules import tensorflow and keras before kvid (isort's order), which
would leave TensorFlow's oneDNN kernels off on CPUs where it does not enable
them itself (e.g. AVX2-only): conftest is imported first.
"""

import os

import pytest

if os.environ.get("KERAS_BACKEND") == "jax":
    # Each test compiles its programs once: XLA's least optimised code is the fastest end to
    # end (a tiny S3D-G's training step: 30 s to compile at the default level, 18 s here).
    os.environ.setdefault("XLA_FLAGS", "--xla_backend_optimization_level=0")

import kvid  # noqa: E402, F401


def pytest_configure(config):
    """On JAX, initial weights from numpy (see tests/jax_initializers.py)."""
    import keras

    if keras.backend.backend() == "jax":
        from tests.jax_initializers import use_numpy_initializers

        use_numpy_initializers()


@pytest.fixture(scope="session")
def tiny_data_dir(tmp_path_factory):
    """The built-in dataset at its smallest (16 training, 8 validation videos), written once."""
    from tests.training import helpers

    return helpers.tiny_dataset(tmp_path_factory.mktemp("builtin"))
