"""Exact parity of I3D, S3D and S3D-G with their references (fixtures in tests/fixtures/parity)."""

import keras
import numpy as np
import pytest

import kvid
from tests import parity

# fixture -> the layer whose output is the fixture's `features`
FIXTURES = {
    "i3d__public": "avg_pool",
    "i3d__public_min": "avg_pool",
    "s3d__public": "avgpool",
    "s3d__public_nc10": "avgpool",
    "s3dg__public": "avgpool",  # the global mean of Mixed_5c
    "s3dg__public_odd": "avgpool",
}


def _relative_error(actual, expected):
    return parity.max_error(actual, expected) / np.abs(expected).max()


@pytest.mark.parametrize("fixture_name", sorted(FIXTURES))
def test_logits_and_features_match_the_reference(fixture_name):
    fixture = parity.load(fixture_name)
    model = parity.reference_model(fixture_name, fixture)
    features_layer = model.get_layer(FIXTURES[fixture_name])
    outputs = [model.output, features_layer.output]
    if fixture_name.startswith("i3d"):
        outputs.append(model.get_layer("logits_conv3d").output)
    results = keras.Model(model.input, outputs).predict(fixture["input"], verbose=0)

    assert _relative_error(results[0], fixture["logits_f64"]) <= 1e-4
    expected_features = fixture.get("features_ndhwc", fixture["features"])
    assert results[1].shape == expected_features.shape
    assert _relative_error(results[1], expected_features) <= 1e-4
    if fixture_name.startswith("i3d"):
        # The reference's raw output: per-frame logits, (N, classes, t').
        per_frame = results[2][:, :, 0, 0, :].transpose(0, 2, 1)
        assert _relative_error(per_frame, fixture["logits_per_t"]) <= 1e-4


def test_space_to_depth_stem_matches_the_reference_computation():
    """conv1 of the released weights: fold 2x2x2, pad (1, 2, 2), 2x4x4 conv, drop first outputs."""
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(1, 3, 4, 8, 6)).astype("float32")  # N,C,T,H,W
    model = kvid.S3DG(include_top=False, alpha=1 / 32, space_to_depth=True)
    conv = model.get_layer("conv1_conv1")
    weight = rng.normal(size=(conv.filters, 24, 2, 4, 4)).astype("float32")
    conv.kernel.assign(weight.transpose(2, 3, 4, 1, 0))

    b, c, t, h, w = x.shape
    folded = x.reshape(b, c, t // 2, 2, h // 2, 2, w // 2, 2).transpose(0, 3, 5, 7, 1, 2, 4, 6)
    folded = folded.reshape(b, 8 * c, t // 2, h // 2, w // 2)
    padded = np.pad(folded, ((0, 0), (0, 0), (1, 1), (2, 2), (2, 2)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, (2, 4, 4), axis=(2, 3, 4))
    expected = np.einsum("bcthwijk,ocijk->bothw", windows, weight)[:, :, 1:, 1:, 1:]

    stem = keras.Model(model.input, conv.output)
    actual = stem.predict(x.transpose(0, 2, 3, 4, 1), verbose=0).transpose(0, 4, 1, 2, 3)
    assert actual.shape == expected.shape
    parity.assert_close_to_scale(actual, expected, 1e-5)


@pytest.mark.parametrize("fixture_name", ["i3d__public", "s3d__public", "s3dg__public"])
def test_reference_weights_load_into_a_headless_model(fixture_name, tmp_path):
    fixture = parity.load(fixture_name)
    path = tmp_path / "reference.npz"
    np.savez(path, **fixture["state_dict"])
    model = kvid.get_model(fixture_name.split("__")[0], include_top=False, weights=str(path))
    first_bn = next(
        layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)
    )
    key = next(k for k in fixture["state_dict"] if k.endswith("running_var"))
    np.testing.assert_array_equal(first_bn.moving_variance.numpy(), fixture["state_dict"][key])
