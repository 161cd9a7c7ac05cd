"""Every registered model gives the same numbers on every Keras backend.

The README's test command runs the tests marked `backends` a second time with
`KERAS_BACKEND=jax`. Here, weights saved under the other backend (TensorFlow
when this process runs JAX or PyTorch, JAX when it runs TensorFlow) load into
the same model and give the other backend's logits within `1e-5 * max|logits|`.
"""

import os
import re
import shlex

import keras
import numpy as np
import pytest

import kvid
from kvid.data.encode import write_video
from kvid.models import list_models
from tests import backend_reference, parity
from tests.apps import ROOT, run_python

BACKEND = keras.backend.backend()
OTHER = "jax" if BACKEND == "tensorflow" else "tensorflow"
LOGITS_TEST = "tests/test_backends.py::test_weights_saved_under_the_other_backend_give_its_logits"
FIT_TEST = "tests/models/test_registry.py::test_one_fit_step_changes_the_weights"


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The other backend's weight files and logits of every registered model."""
    directory = tmp_path_factory.mktemp(f"{OTHER}_weights")
    run_python(
        "-m", "tests.backend_reference", str(directory), env={"KERAS_BACKEND": OTHER}, timeout=1800
    )
    with np.load(directory / "logits.npz") as saved:
        logits = {key: saved[key] for key in saved.files}
    assert str(logits.pop("backend")) == OTHER
    return directory, logits


@pytest.mark.backends
def test_the_other_backend_saved_every_registered_model(reference):
    _, logits = reference
    assert set(logits) - {"clips"} == set(list_models())


@pytest.mark.backends
@pytest.mark.parametrize("key", list_models())
def test_weights_saved_under_the_other_backend_give_its_logits(key, reference):
    directory, logits = reference
    model = backend_reference.tiny(key)
    model.load_weights(directory / f"{key}.weights.h5")
    actual = keras.ops.convert_to_numpy(model(logits["clips"], training=False))
    parity.assert_close_to_scale(actual, logits[key], 1e-5)


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
    # One -q lists the selected test ids (-qq would only count them per file).
    args = [arg for arg in args if arg != "-q"]
    done = run_python("-m", "pytest", "--collect-only", "-q", *args, timeout=600)
    selected = set(re.findall(r"^(tests/\S+::\S+)$", done.stdout, flags=re.M))
    for key in list_models():
        assert f"{LOGITS_TEST}[{key}]" in selected and f"{FIT_TEST}[{key}]" in selected
    modules = {test.split("::")[0] for test in selected}
    for name in kvid.layers.__all__:
        module = getattr(kvid.layers, name).__module__.rsplit(".", 1)[-1]
        assert f"tests/layers/test_{module}.py" in modules, name
