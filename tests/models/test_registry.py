"""Tests every registered model: the keras.applications contract at tiny widths."""

import keras
import numpy as np
import pytest

import kvid
from kvid.models import get_spec, list_models

VIDEO_RESNET_KEYS = [
    "r3d_18", "r3d_34", "mc2_18", "mc3_18", "mc4_18", "mc5_18", "rmc2_18", "rmc3_18",
    "rmc4_18", "rmc5_18", "r2d_18", "fr2d_18", "r2plus1d_18", "r2plus1d_34",
]  # fmt: skip
CLIP = (8, 32, 32)  # frames, height, width: small but deep enough for every stride


def tiny(key, **kwargs):
    return kvid.get_model(key, **{**get_spec(key).test_kwargs, **kwargs})


def clips(batch=2, frames=CLIP[0], size=CLIP[1:], channels=3, seed=0):
    return (
        np.random.default_rng(seed)
        .uniform(-1, 1, (batch, frames, *size, channels))
        .astype("float32")
    )


def test_registry_lists_every_family_member():
    assert set(VIDEO_RESNET_KEYS) <= set(list_models())


def test_unknown_name_is_rejected_with_the_name():
    with pytest.raises(ValueError, match="r3d_81"):
        kvid.get_model("r3d_81")


@pytest.mark.parametrize("key", list_models())
def test_top_outputs_class_probabilities(key):
    model = tiny(key, classes=7)
    probabilities = model.predict(clips(), verbose=0)
    assert probabilities.shape == (2, 7)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("key", list_models())
@pytest.mark.parametrize("pooling", [None, "avg", "max"])
def test_headless_output_shapes(key, pooling):
    model = tiny(key, include_top=False, pooling=pooling)
    features = model.predict(clips(), verbose=0)
    if pooling is None:
        assert features.ndim == 5 and features.shape[0] == 2
    else:
        assert features.shape == (2, model.output_shape[-1])


@pytest.mark.parametrize("key", list_models())
def test_one_model_takes_clips_of_different_sizes(key):
    model = tiny(key, include_top=False, pooling="avg")
    frames = model.input_shape[1]  # fixed for R2D, None otherwise
    for shape in [(frames or 8, 32, 32), (frames or 12, 48, 40)]:
        assert model.predict(clips(1, shape[0], shape[1:]), verbose=0).shape[0] == 1


@pytest.mark.parametrize("key", list_models())
def test_keras_file_round_trip_in_safe_mode(key, tmp_path):
    model = tiny(key, classes=3)
    path = tmp_path / f"{key}.keras"
    model.save(path)
    restored = keras.saving.load_model(path, safe_mode=True)
    x = clips()
    np.testing.assert_array_equal(model.predict(x, verbose=0), restored.predict(x, verbose=0))


@pytest.mark.backends
@pytest.mark.parametrize("key", list_models())
def test_one_fit_step_changes_the_weights(key):
    model = tiny(key, classes=3)
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    before = [w.numpy().copy() for w in model.trainable_weights]
    history = model.fit(clips(), np.array([0, 2]), epochs=1, batch_size=2, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert any(
        not np.array_equal(b, w.numpy())
        for b, w in zip(before, model.trainable_weights, strict=True)
    )


@pytest.mark.parametrize("key", list_models())
def test_registry_entry_describes_its_input(key):
    spec = get_spec(key)
    assert spec.preprocessing.num_frames > 0 and spec.preprocessing.crop_size > 0
    assert len(spec.preprocessing.mean) == len(spec.preprocessing.std) == 3
    model = tiny(key, include_top=False)
    layer_names = {layer.name for layer in model.layers}
    assert spec.endpoints and set(spec.endpoints) <= layer_names


def test_optical_flow_stream_takes_two_channels():
    model = tiny("r3d_18", input_shape=(None, None, None, 2), classes=4)
    assert model.predict(clips(channels=2), verbose=0).shape == (2, 4)


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
