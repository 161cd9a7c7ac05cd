import keras
import numpy as np
import pytest

import kvid
from kvid.layers import SelfGating

pytestmark = pytest.mark.backends  # also run under KERAS_BACKEND=jax in CI


def _gating_model(channels=4):
    clips = keras.Input((None, None, None, channels))
    return keras.Model(clips, SelfGating(name="gating")(clips))


def test_gates_each_channel_by_the_sigmoid_of_a_dense_map_of_its_global_mean():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 3, 4, 5, 4)).astype("float32")
    weight, bias = rng.normal(size=(4, 4)), rng.normal(size=4)  # torch Linear layout (out, in)
    model = _gating_model()
    kvid.weights.load_torch_state_dict(model, {"gating.fc.weight": weight, "gating.fc.bias": bias})

    mean = x.mean(axis=(1, 2, 3))
    gate = 1 / (1 + np.exp(-(mean @ weight.T + bias)))
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(model(x)), x * gate[:, None, None, None, :], rtol=1e-5, atol=1e-6
    )


@pytest.mark.parametrize("frames", [1, 7])
def test_any_clip_length_works(frames):
    y = _gating_model()(np.ones((1, frames, 2, 2, 4), "float32"))
    assert y.shape == (1, frames, 2, 2, 4)


def test_loading_reports_missing_submodule_parameters():
    with pytest.raises(ValueError, match=r"missing: gating\.fc\.bias"):
        kvid.weights.load_torch_state_dict(_gating_model(), {"gating.fc.weight": np.eye(4)})


def test_without_bias_has_only_a_kernel():
    layer = SelfGating(use_bias=False)
    layer.build((None, 2, 2, 2, 3))
    assert [tuple(w.shape) for w in layer.weights] == [(3, 3)]
    assert list(layer.torch_weight_map()) == ["fc.weight"]


def test_round_trips_through_a_keras_file_in_safe_mode(tmp_path):
    model = _gating_model()
    x = np.random.default_rng(1).normal(size=(1, 2, 3, 3, 4)).astype("float32")
    path = tmp_path / "gating.keras"
    model.save(path)
    restored = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(restored(x)), keras.ops.convert_to_numpy(model(x)), rtol=1e-6
    )


def test_unknown_channel_count_is_rejected():
    with pytest.raises(ValueError, match="known channel count"):
        SelfGating().build((None, 2, 2, 2, None))
