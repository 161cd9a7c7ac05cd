import keras
import numpy as np
import pytest

from kvid.layers import WindowMeanPooling3D

pytestmark = pytest.mark.backends  # also run under KERAS_BACKEND=jax in CI


def _x(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


@pytest.mark.parametrize("sizes", [(2, 7, 7), (4, 9, 8), (3, 7, 12)])
def test_equals_window_averages_then_their_mean(sizes):
    x = _x((2, *sizes, 5))
    windows = keras.layers.AveragePooling3D((2, 7, 7), strides=1)(x)
    expected = keras.ops.mean(windows, axis=(1, 2, 3), keepdims=True)
    actual = WindowMeanPooling3D((2, 7, 7))(x)
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6)


def test_windows_larger_than_the_input_are_clamped_to_it():
    x = _x((1, 1, 3, 9, 2))
    # frames: one 1-frame window; height: one 3-row window; width: three 7-column windows.
    columns = np.array([1, 2, 3, 3, 3, 3, 3, 2, 1]) / (7 * 3)
    expected = np.einsum("bthwc,w->bc", x, columns) / 3
    actual = WindowMeanPooling3D((2, 7, 7))(x)
    assert actual.shape == (1, 1, 1, 1, 2)
    np.testing.assert_allclose(np.reshape(actual, (1, 2)), expected, rtol=1e-5, atol=1e-6)


def test_round_trips_through_a_keras_file_in_safe_mode(tmp_path):
    clips = keras.Input((None, None, None, 3))
    model = keras.Model(clips, WindowMeanPooling3D((2, 7, 7))(clips))
    path = tmp_path / "pool.keras"
    model.save(path)
    restored = keras.saving.load_model(path, safe_mode=True)
    x = _x((1, 3, 8, 8, 3))
    np.testing.assert_allclose(restored(x), model(x), rtol=1e-6)
