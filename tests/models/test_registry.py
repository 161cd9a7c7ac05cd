"""Tests every registered model: the keras.applications contract at tiny widths.

Each key's tiny models are built once (module-scoped fixtures, grouped by key)
and called eagerly: a `predict` would trace a graph per model and input size.
"""

import keras
import numpy as np
import pytest

import kvid
from kvid.models import get_spec, list_models
from tests.models import assert_every_kernel_trained, call

VIDEO_RESNET_KEYS = [
    "r3d_18", "r3d_34", "mc2_18", "mc3_18", "mc4_18", "mc5_18", "rmc2_18", "rmc3_18",
    "rmc4_18", "rmc5_18", "r2d_18", "fr2d_18", "r2plus1d_18", "r2plus1d_34",
]  # fmt: skip
CLIP = (8, 32, 32)  # frames, height, width: small but deep enough for every stride
# DG-P3D pools each of its two heads and concatenates them (tests/models/test_p3d.py).
POOLS_ITS_HEADS = {"dg_p3d_50"}


def tiny(key, **kwargs):
    return kvid.get_model(key, **{**get_spec(key).test_kwargs, **kwargs})


def clips(batch=2, frames=CLIP[0], size=CLIP[1:], channels=3, seed=0):
    return (
        np.random.default_rng(seed)
        .uniform(-1, 1, (batch, frames, *size, channels))
        .astype("float32")
    )


@pytest.fixture(scope="module", params=list_models())
def key(request):
    return request.param


@pytest.fixture(scope="module")
def classifier(key):
    """The tiny model of `key` with a 3-class softmax top."""
    return tiny(key, classes=3)


@pytest.fixture(scope="module")
def headless(key):
    """The tiny model of `key` without its top, unpooled and pooled, sharing one set of weights."""
    models = {pool: tiny(key, include_top=False, pooling=pool) for pool in (None, "avg", "max")}
    for pooling in ("avg", "max"):
        models[pooling].set_weights(models[None].get_weights())
    return models


def test_registry_lists_every_family_member():
    assert set(VIDEO_RESNET_KEYS) <= set(list_models())


def test_unknown_name_is_rejected_with_the_name():
    with pytest.raises(ValueError, match="r3d_81"):
        kvid.get_model("r3d_81")


def test_top_outputs_class_probabilities(classifier):
    probabilities = call(classifier, clips())
    assert probabilities.shape == (2, 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert np.all(probabilities > 0)


def test_headless_outputs_are_feature_maps_and_their_global_pools(key, headless):
    x = clips()
    features = call(headless[None], x)
    assert features.ndim == 5 and features.shape[0] == 2
    for pooling, reduce in (("avg", np.mean), ("max", np.max)):
        pooled = call(headless[pooling], x)
        assert pooled.shape == (2, headless[pooling].output_shape[-1])
        if key not in POOLS_ITS_HEADS:
            expected = reduce(features, axis=(1, 2, 3))
            np.testing.assert_allclose(pooled, expected, rtol=1e-5, atol=1e-6)


def test_one_model_takes_clips_of_different_sizes(headless):
    model = headless["avg"]
    frames = model.input_shape[1]  # fixed for R2D, None otherwise
    shapes = [(frames or 8, (32, 32)), (frames or 12, (48, 40))]
    features = [call(model, clips(1, n, size)) for n, size in shapes]
    for f in features:
        assert f.shape == (1, model.output_shape[-1]) and np.all(np.isfinite(f))
    assert not np.allclose(*features)


def test_keras_file_round_trip_in_safe_mode(key, classifier, tmp_path):
    path = tmp_path / f"{key}.keras"
    classifier.save(path)
    restored = keras.saving.load_model(path, safe_mode=True)
    x = clips()
    np.testing.assert_array_equal(call(classifier, x), call(restored, x))


@pytest.mark.backends
def test_one_fit_step_changes_the_weights(key):
    model = tiny(key, classes=3)
    model.compile(
        optimizer=keras.optimizers.SGD(0.1),
        loss="sparse_categorical_crossentropy",
        # One eager step on TensorFlow (tracing it costs 5x more); JAX compiles, as it must.
        run_eagerly=keras.backend.backend() != "jax",
    )
    before = {w.path: keras.ops.convert_to_numpy(w) for w in model.weights}
    history = model.fit(clips(), np.array([0, 2]), epochs=1, batch_size=2, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert_every_kernel_trained(model, before)


def test_registry_entry_describes_its_input(key, headless):
    spec = get_spec(key)
    assert spec.preprocessing.num_frames > 0 and spec.preprocessing.crop_size > 0
    assert len(spec.preprocessing.mean) == len(spec.preprocessing.std) == 3
    layer_names = {layer.name for layer in headless[None].layers}
    assert spec.endpoints and set(spec.endpoints) <= layer_names


def test_optical_flow_stream_takes_two_channels():
    model = tiny("r3d_18", input_shape=(None, None, None, 2), classes=4)
    assert call(model, clips(channels=2)).shape == (2, 4)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"pooling": "mean"}, "pooling='mean'"),
        ({"classes": 0}, "classes=0"),
        ({"include_top": "yes"}, "include_top=yes"),
        ({"input_shape": (8, 112, 112)}, r"input_shape=\(8, 112, 112\)"),
        ({"input_shape": (8, 0, 112, 3)}, r"input_shape=\(8, 0, 112, 3\)"),
        ({"alpha": -1}, "alpha=-1"),
        ({"weights": "kinetics400", "input_shape": (None, None, None, 2)}, "input_shape"),
        ({"weights": "no_such_weights"}, "weights='no_such_weights'"),
    ],
)
def test_bad_arguments_are_named_with_their_value(kwargs, message):
    with pytest.raises(ValueError, match=message):
        kvid.R3D18(**{"alpha": 1 / 16, **kwargs})


def test_r2d_needs_a_fixed_frame_count():
    with pytest.raises(ValueError, match="frame count must be fixed"):
        kvid.R2D18(input_shape=(None, 112, 112, 3), alpha=1 / 16)


def test_input_tensor_becomes_the_model_input():
    clip_tensor = keras.Input((8, 32, 32, 3))
    model = kvid.R2Plus1D18(input_tensor=clip_tensor, alpha=1 / 16, classes=2)
    assert model.inputs[0] is clip_tensor
