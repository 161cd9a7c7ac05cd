import keras
import numpy as np
import pytest
import tensorflow as tf

import kvid
from kvid.layers import BatchNormalization, backend
from tests import parity
from tests.gradients import outputs_and_gradients


def _pair(input_shape, **kwargs):
    """A Keras BatchNormalization and a kvid one with the same random state."""
    reference = keras.layers.BatchNormalization(epsilon=1e-5, momentum=0.9, **kwargs)
    layer = BatchNormalization(epsilon=1e-5, momentum=0.9, **kwargs)
    reference.build(input_shape)
    layer.build(input_shape)
    rng = np.random.default_rng(0)
    weights = [rng.uniform(0.5, 1.5, size=w.shape) for w in reference.get_weights()]
    reference.set_weights(weights)
    layer.set_weights(weights)
    return reference, layer


def _weighted_sum(y):
    # Weights per element: a per-channel weighting would zero the gamma gradients.
    weights = np.sin(np.arange(np.prod(y.shape), dtype="float32")).reshape(y.shape)
    return keras.ops.sum(y * keras.ops.convert_to_tensor(weights))


def _train_step(layer, x):
    """Outputs, input and weight gradients of one training call."""
    return outputs_and_gradients(layer, x, _weighted_sum, training=True)


def _assert_same_training(reference, layer, x):
    # One value per channel: the fused kernel computes x * gamma / sqrt(epsilon) + ..., terms
    # ~300x the output that cancel to beta, and keeps their rounding: a few float32 epsilons
    # of 300x the output, whatever the CPU (measured 3.4e-5 on one).
    cancelled = 3 * 300 * np.finfo(np.float32).eps  # 1.1e-4
    tolerance = cancelled if np.prod(x.shape[:-1]) == 1 else 1e-5
    for expected, got in zip(_train_step(reference, x), _train_step(layer, x), strict=True):
        parity.assert_close_to_scale(got, expected, tolerance)
    moving = zip(reference.non_trainable_weights, layer.non_trainable_weights, strict=True)
    for expected, got in moving:
        parity.assert_close_to_scale(got, expected, 1e-5)


def _fused_ops(layer, x, training):
    graph = tf.function(lambda x: layer(x, training=training)).get_concrete_function(x).graph
    return [op.type for op in graph.get_operations() if op.type.startswith("FusedBatchNorm")]


@pytest.mark.backends
@pytest.mark.parametrize("shape", [(3, 4, 5, 6, 7), (2, 5, 6, 7), (1, 1, 1, 1, 3)])
@pytest.mark.parametrize("affine", [True, False])
def test_training_matches_keras_outputs_gradients_and_moving_statistics(shape, affine):
    """On TensorFlow the fused kernel runs; on the other backends Keras' own layer."""
    x = np.random.default_rng(1).normal(2.0, 3.0, size=shape).astype("float32")
    reference, layer = _pair(shape, center=affine, scale=affine)
    _assert_same_training(reference, layer, x)


@pytest.mark.parametrize("shape", [(3, 4, 5, 6, 7), (2, 5, 6, 7)])
def test_training_takes_the_fused_kernel_on_tensorflow_and_keras_ops_elsewhere(shape, monkeypatch):
    x = np.random.default_rng(1).normal(2.0, 3.0, size=shape).astype("float32")
    _, layer = _pair(shape)
    assert _fused_ops(layer, tf.constant(x), training=True) == ["FusedBatchNormV3"]
    monkeypatch.setattr(backend, "use_tensorflow_kernels", lambda: False)
    assert _fused_ops(layer, tf.constant(x), training=True) == []
    reference, portable = _pair(shape)
    _assert_same_training(reference, portable, x)


def test_traced_training_keeps_the_static_shape_later_layers_read():
    _, layer = _pair((None, 3, 4, 4, 5))
    graph = tf.function(lambda x: layer(x, training=True)).get_concrete_function(
        tf.TensorSpec((None, 3, 4, None, 5))
    )
    assert graph.outputs[0].shape.as_list() == [None, 3, 4, None, 5]


def test_inference_and_unsupported_cases_take_keras_path():
    x = tf.ones((2, 3, 4, 4, 5))
    _, layer = _pair(x.shape)
    assert _fused_ops(layer, x, training=False) == []
    _, channels_first = _pair(x.shape, axis=1)
    assert _fused_ops(channels_first, x, training=True) == []
    _, flat = _pair((2, 5))
    assert _fused_ops(flat, tf.ones((2, 5)), training=True) == []
    tiny_epsilon = BatchNormalization(epsilon=1e-6)
    assert _fused_ops(tiny_epsilon, x, training=True) == []


@pytest.mark.backends
def test_models_use_it_and_round_trip_through_a_keras_file(tmp_path):
    model = kvid.get_model("s3dg", **kvid.models.get_spec("s3dg").test_kwargs)
    names = [layer.name for layer in model.layers if type(layer) is BatchNormalization]
    assert names
    path = tmp_path / "model.keras"
    model.save(path)
    restored = keras.saving.load_model(path, safe_mode=True)
    assert all(type(restored.get_layer(name)) is BatchNormalization for name in names)
    for saved, loaded in zip(model.weights, restored.weights, strict=True):
        assert saved.path == loaded.path
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(saved), keras.ops.convert_to_numpy(loaded)
        )
