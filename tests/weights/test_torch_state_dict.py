"""Strict loading of reference state dicts by module name."""

import keras
import numpy as np
import pytest

import kvid
from kvid.weights import load_torch_state_dict


def tiny_model(**kwargs):
    return kvid.R3D18(alpha=1 / 16, classes=5, **kwargs)


def torch_state_dict(model, seed=0, *, initialized=False):
    """A state dict in torch layout and naming for `model`: random values, or its own."""
    rng = np.random.default_rng(seed)
    state = {}
    for layer in model.layers:
        module = layer.name.replace("_", ".")
        for weight in layer.weights:
            if initialized:
                value = keras.ops.convert_to_numpy(weight.value)
            else:
                value = rng.normal(size=weight.shape).astype("float32")
            param = {
                "kernel": "weight", "bias": "bias", "gamma": "weight", "beta": "bias",
                "moving_mean": "running_mean", "moving_variance": "running_var",
            }[weight.name]  # fmt: skip
            if weight.name == "moving_variance" and not initialized:
                value = np.abs(value) + 0.5
            if value.ndim == 5:  # Keras (t, h, w, in, out) -> torch (out, in, t, h, w)
                value = value.transpose(4, 3, 0, 1, 2)
            elif value.ndim == 2:
                value = value.T
            state[f"{module}.{param}"] = value
        if any(w.name == "moving_mean" for w in layer.weights):
            state[f"{module}.num_batches_tracked"] = np.array(7)
    return state


def test_every_weight_is_loaded_and_transposed():
    model = tiny_model()
    state = torch_state_dict(model)
    load_torch_state_dict(model, state)
    np.testing.assert_array_equal(
        model.get_layer("layer2_0_conv1_0").kernel.numpy(),
        state["layer2.0.conv1.0.weight"].transpose(2, 3, 4, 1, 0),
    )
    np.testing.assert_array_equal(model.get_layer("fc").kernel.numpy(), state["fc.weight"].T)
    np.testing.assert_array_equal(
        model.get_layer("stem_1").moving_variance.numpy(), state["stem.1.running_var"]
    )


def test_missing_unexpected_and_misshaped_entries_are_all_listed():
    model = tiny_model()
    state = torch_state_dict(model)
    del state["layer1.0.conv1.1.running_mean"]
    state["head.weight"] = np.zeros((3, 3), "float32")
    state["fc.bias"] = np.zeros(6, "float32")
    before = model.get_layer("stem_0").kernel.numpy().copy()
    with pytest.raises(ValueError) as error:
        load_torch_state_dict(model, state)
    message = str(error.value)
    assert "1 missing: layer1_0_conv1_1.running_mean" in message
    assert "1 unexpected: head.weight" in message
    assert "fc.bias: got (6,)" in message
    # Nothing is assigned unless everything matches.
    np.testing.assert_array_equal(model.get_layer("stem_0").kernel.numpy(), before)


def test_num_batches_tracked_is_optional():
    model = tiny_model()
    state = {k: v for k, v in torch_state_dict(model).items() if "num_batches" not in k}
    load_torch_state_dict(model, state)


def test_ignored_modules_are_dropped():
    headless = tiny_model(include_top=False)
    state = torch_state_dict(tiny_model())
    with pytest.raises(ValueError, match="unexpected: fc.bias, fc.weight"):
        load_torch_state_dict(headless, state)
    load_torch_state_dict(headless, state, ignore=["fc"])
