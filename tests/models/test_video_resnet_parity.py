"""Exact parity with torchvision's r3d_18, mc3_18 and r2plus1d_18 (tests/fixtures/parity)."""

import keras
import numpy as np
import pytest

from tests import parity

FIXTURES = [
    f"{model}__{case}"
    for model in ("r3d_18", "mc3_18", "r2plus1d_18")
    for case in ("public", "public_nc10")
]


@pytest.mark.parametrize("fixture_name", FIXTURES)
def test_logits_and_features_match_torchvision(fixture_name):
    fixture = parity.load(fixture_name)
    model = parity.reference_model(fixture_name, fixture)
    features_model = keras.Model(model.input, [model.output, model.get_layer("avgpool").output])

    logits, features = features_model.predict(fixture["input"], verbose=0)

    tolerance = 1e-4 * np.abs(fixture["logits_f64"]).max()
    assert parity.max_error(logits, fixture["logits_f64"]) <= tolerance
    assert (
        parity.max_error(features, fixture["features"]) <= 1e-4 * np.abs(fixture["features"]).max()
    )
