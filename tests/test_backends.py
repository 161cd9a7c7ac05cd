"""Every registered model gives the same numbers on every Keras backend.

The README's test command runs the tests marked `backends` a second time with
`KERAS_BACKEND=jax`. Each tiny model gets the same seeded weights on every
backend and must give the logits the other backend recorded
(tests/fixtures/backends, made by `tests/backend_reference.py`; TensorFlow's on
JAX or PyTorch, JAX's on TensorFlow) within `1e-5 * max|logits|`, and a weights
file the other backend saved must load and give its logits.
"""

import os
import re
import shlex

import keras
import numpy as np
import pytest

import kvid
from kvid.io.encode import write_video
from kvid.models import list_models
from tests import backend_reference, parity
from tests.processes import ROOT, run_python

BACKEND = keras.backend.backend()
OTHER = "jax" if BACKEND == "tensorflow" else "tensorflow"
RECORDED = backend_reference.recorded()
STALE = "the recorded logits are stale: rerun `python -m tests.backend_reference` on both backends"
LOGITS_TEST = "tests/test_backends.py::test_seeded_weights_give_the_other_backends_logits"
FIT_TEST = "tests/models/test_registry.py::test_one_fit_step_changes_the_weights"


@pytest.mark.backends
def test_both_backends_recorded_every_registered_model():
    for backend in ("tensorflow", "jax"):
        assert {key for b, key in RECORDED if b == backend} == set(list_models()), STALE


@pytest.mark.backends
@pytest.mark.parametrize("key", list_models())
def test_seeded_weights_give_the_other_backends_logits(key):
    model = backend_reference.set_seeded_weights(backend_reference.tiny(key))
    actual = backend_reference.logits(model)
    try:
        parity.assert_close_to_scale(actual, RECORDED[OTHER, key], 1e-5)
    except AssertionError as error:
        raise AssertionError(f"{error}; if {key} changed on purpose, {STALE}") from None


@pytest.mark.backends
def test_a_weights_file_saved_under_the_other_backend_gives_its_logits():
    key, kwargs = backend_reference.FILE_MODEL
    model = backend_reference.tiny(key, **kwargs)
    model.load_weights(backend_reference.weights_file(OTHER))
    expected = np.load(backend_reference.file_logits(OTHER))
    parity.assert_close_to_scale(backend_reference.logits(model), expected, 1e-5)


@pytest.mark.backends
def test_kvid_data_feeds_fit(tmp_path):
    rng = np.random.default_rng(0)
    for label in ("a", "b"):
        os.makedirs(tmp_path / label)
        for index in range(2):
            frames = rng.integers(0, 256, (6, 40, 48, 3), dtype=np.uint8)
            write_video(str(tmp_path / label / f"{index}.mp4"), frames)
    dataset = kvid.data.video_dataset_from_directory(
        str(tmp_path),
        batch_size=2,
        num_frames=4,
        seed=0,
        # r3d_18's convention at a 32-pixel crop: an image_size alone would contradict it.
        model=kvid.preprocessing.rescaled(kvid.models.get_preprocessing("r3d_18"), 32),
    )
    model = keras.Sequential(
        [
            keras.Input((4, 32, 32, 3)),
            kvid.layers.Conv3D(4, 3, padding="same"),
            kvid.layers.BatchNormalization(),
            keras.layers.GlobalAveragePooling3D(),
            keras.layers.Dense(2, activation="softmax"),
        ]
    )
    model.compile(keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy")
    history = model.fit(dataset, epochs=1, steps_per_epoch=2, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def _backend_command():
    """The pytest arguments of the README test command's second (backend) run."""
    readme = open(os.path.join(ROOT, "README.md")).read()
    command = re.search(r"```bash\n.*\n(.*)\n", readme).group(1)
    (second,) = re.findall(r"KERAS_BACKEND=(\w+) \S+python -m pytest ([^&]*)", command)
    return second[0], shlex.split(second[1])


def test_the_backend_run_covers_every_layer_and_registered_model():
    """CI's second run selects every layer's tests and every registered model's logits and fit."""
    backend, args = _backend_command()
    assert backend == "jax" and args[args.index("-m") + 1] == "backends"
    # One -q lists the selected test ids (-qq would only count them per file); the selection
    # is collected in this process, not by xdist's workers.
    args = [arg for arg in args if arg != "-q"]
    for option in ("-n", "--dist"):
        if option in args:
            del args[args.index(option) : args.index(option) + 2]
    done = run_python("-m", "pytest", "--collect-only", "-q", *args, timeout=240)
    selected = set(re.findall(r"^(tests/\S+::\S+)$", done.stdout, flags=re.M))
    for key in list_models():
        assert f"{LOGITS_TEST}[{key}]" in selected and f"{FIT_TEST}[{key}]" in selected
    modules = {test.split("::")[0] for test in selected}
    for name in kvid.layers.__all__:
        module = getattr(kvid.layers, name).__module__.rsplit(".", 1)[-1]
        assert f"tests/layers/test_{module}.py" in modules, name
