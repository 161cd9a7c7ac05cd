import keras
import numpy as np
import pytest

import kvid
from kvid.layers import ClipConvention, model_preprocessing, set_model_preprocessing

pytestmark = pytest.mark.backends  # also run under KERAS_BACKEND=jax in CI

CONVENTION = kvid.Preprocessing(num_frames=2, crop_size=8, resize=9, fps=15.0)
OTHER = kvid.Preprocessing(num_frames=4, crop_size=6, resize=(7, 8))


def _model(name="clips"):
    clips = keras.Input((None, None, None, 3))
    x = ClipConvention(CONVENTION, name=f"{name}_convention")(clips)
    return keras.Model(clips, keras.layers.GlobalAveragePooling3D()(x), name=name)


def test_the_layer_passes_clips_through_unchanged_and_uncast():
    x = np.random.default_rng(0).uniform(0, 255, (1, 2, 3, 4, 3)).astype("float32")
    layer = ClipConvention(CONVENTION)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(layer(keras.ops.convert_to_tensor(x))), x
    )
    assert layer.dtype == "float32"


def test_the_convention_survives_keras_save_and_load_in_safe_mode(tmp_path):
    _model().save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    assert model_preprocessing(loaded) == CONVENTION


def test_nested_models_are_searched_and_two_conventions_give_none():
    inputs = keras.Input((None, None, None, 3))
    outer = keras.Model(inputs, keras.layers.Dense(2)(_model()(inputs)))
    assert model_preprocessing(outer) == CONVENTION
    set_model_preprocessing(outer, OTHER)
    assert model_preprocessing(outer) == OTHER
    other = _model("other")
    both = keras.Model(inputs, keras.layers.Concatenate()([outer(inputs), other(inputs)]))
    assert model_preprocessing(both) is None


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="Received: preprocessing='r3d_18'"):
        ClipConvention("r3d_18")
    bare = keras.Sequential([keras.Input((2, 4, 4, 3)), keras.layers.Flatten()], name="bare")
    with pytest.raises(ValueError, match="Model 'bare' has no `ClipConvention` layer"):
        set_model_preprocessing(bare, OTHER)
    assert model_preprocessing(bare) is None


def test_flat_layers_lists_nested_models_layers_in_their_place():
    inputs = keras.Input((None, None, None, 3))
    inner = _model()
    outer = keras.Model(inputs, keras.layers.Dense(2, name="head")(inner(inputs)))
    names = [layer.name for layer in kvid.layers.flat_layers(outer)]
    inner_names = [layer.name for layer in inner.layers]
    assert names == [outer.layers[0].name, *inner_names, "head"]
