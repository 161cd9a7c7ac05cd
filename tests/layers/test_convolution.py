import keras
import numpy as np
import pytest
import tensorflow as tf

import kvid
from kvid.layers import Conv3D, backend
from tests import parity
from tests.gradients import outputs_and_gradients


def _pair(kernel, input_shape, **kwargs):
    """A Keras Conv3D and a kvid Conv3D with the same random weights."""
    reference = keras.layers.Conv3D(5, kernel, padding="same", **kwargs)
    layer = Conv3D(5, kernel, padding="same", **kwargs)
    reference.build(input_shape)
    layer.build(input_shape)
    rng = np.random.default_rng(0)
    reference.set_weights([rng.normal(size=w.shape) for w in reference.get_weights()])
    layer.set_weights(reference.get_weights())
    return reference, layer


def _squares(y):
    return keras.ops.sum(keras.ops.square(y))


@pytest.mark.backends
@pytest.mark.parametrize("size", [2, 3, 4, 5, 7])
@pytest.mark.parametrize("length", [1, 2, 3])
def test_matches_keras_conv3d_outputs_and_gradients_when_taps_are_skipped(size, length):
    """On TensorFlow the sliced kernel runs; on the other backends Keras' own Conv3D."""
    x = np.random.default_rng(1).normal(size=(2, length, length + 1, 3, 4))
    reference, layer = _pair((size, size, 3), x.shape)
    expected = outputs_and_gradients(reference, x, _squares)
    for want, got in zip(expected, outputs_and_gradients(layer, x, _squares), strict=True):
        parity.assert_close_to_scale(got, want, 1e-5)


def test_the_portable_path_runs_the_whole_kernel_and_matches(monkeypatch):
    x = np.random.default_rng(1).normal(size=(2, 1, 2, 3, 4))
    reference, layer = _pair((3, 3, 3), x.shape)
    fast = outputs_and_gradients(layer, x, _squares)
    monkeypatch.setattr(backend, "use_tensorflow_kernels", lambda: False)
    graph = tf.function(layer).get_concrete_function(tf.TensorSpec(x.shape)).graph
    (conv,) = [op for op in graph.get_operations() if op.type == "Conv3D"]
    assert conv.inputs[1].shape == (3, 3, 3, 4, 5)
    portable = outputs_and_gradients(layer, x, _squares)
    for want, got in zip(outputs_and_gradients(reference, x, _squares), portable, strict=True):
        parity.assert_close_to_scale(got, want, 1e-5)
    for want, got in zip(fast, portable, strict=True):
        parity.assert_close_to_scale(got, want, 1e-5)


@pytest.mark.backends
def test_one_frame_reaches_only_the_centre_of_a_3x3x3_kernel():
    layer = Conv3D(8, 3, padding="same")
    assert layer._reachable_taps((4, 1, 7, 7, 16)) == ((1, 1), (0, 3), (0, 3))


@pytest.mark.backends
@pytest.mark.parametrize(
    "kwargs, input_shape",
    [
        ({"padding": "same"}, (4, None, 7, 7, 16)),  # length unknown when traced
        ({"padding": "same"}, (4, 2, 7, 7, 16)),  # every tap meets data
        ({"padding": "valid"}, (4, 1, 7, 7, 16)),
        ({"padding": "same", "strides": 2}, (4, 1, 7, 7, 16)),
        ({"padding": "same", "dilation_rate": 2}, (4, 1, 7, 7, 16)),
    ],
)
def test_keeps_the_whole_kernel_where_it_cannot_tell_or_every_tap_counts(kwargs, input_shape):
    assert Conv3D(8, 3, **kwargs)._reachable_taps(input_shape) is None


def test_one_frame_costs_a_third_of_the_multiplies_in_the_traced_graph():
    layer = Conv3D(8, 3, padding="same", use_bias=False)
    layer.build((None, None, 5, 5, 4))
    graph = tf.function(layer).get_concrete_function(tf.TensorSpec((1, 1, 5, 5, 4))).graph
    (conv,) = [op for op in graph.get_operations() if op.type == "Conv3D"]
    assert conv.inputs[1].shape == (1, 3, 3, 4, 8)


@pytest.mark.backends
def test_video_resnets_use_it_and_round_trip_through_a_keras_file(tmp_path):
    model = kvid.get_model("r3d_18", **kvid.models.get_spec("r3d_18").test_kwargs)
    assert any(type(layer) is Conv3D for layer in model.layers)
    x = np.random.default_rng(2).normal(size=(1, 1, 16, 16, 3)).astype("float32")
    path = tmp_path / "model.keras"
    model.save(path)
    restored = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(restored(x)),
        keras.ops.convert_to_numpy(model(x)),
        rtol=1e-5,
        atol=1e-6,
    )
