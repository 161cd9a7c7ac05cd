import keras
import numpy as np
import pytest

from kvid.layers import SpaceToDepth3D

pytestmark = pytest.mark.backends  # also run under KERAS_BACKEND=jax in CI


def _torch_space_to_depth(x):
    """The HowTo100M port's `_space_to_depth`, on an N,C,T,H,W array."""
    b, c, t, h, w = x.shape
    x = x.reshape(b, c, t // 2, 2, h // 2, 2, w // 2, 2)
    x = x.transpose(0, 3, 5, 7, 1, 2, 4, 6)
    return x.reshape(b, 8 * c, t // 2, h // 2, w // 2)


def test_matches_the_reference_channel_order():
    x = np.random.default_rng(0).normal(size=(2, 3, 4, 6, 8)).astype("float32")  # N,C,T,H,W
    expected = _torch_space_to_depth(x).transpose(0, 2, 3, 4, 1)
    y = SpaceToDepth3D()(x.transpose(0, 2, 3, 4, 1))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(y), expected)


def test_works_with_unknown_sizes():
    clips = keras.Input((None, None, None, 3))
    model = keras.Model(clips, SpaceToDepth3D()(clips))
    assert model.output.shape == (None, None, None, None, 24)
    assert model(np.zeros((1, 2, 4, 6, 3), "float32")).shape == (1, 1, 2, 3, 24)


def test_odd_sizes_are_rejected():
    with pytest.raises(ValueError, match="even"):
        SpaceToDepth3D()(keras.Input((3, 4, 4, 3)))
