"""The parity fixtures (tests/fixtures/parity) with their weights and inputs regenerated.

A fixture stores the reference's state-dict schema, the weight seed and its
outputs; `tests/fixtures/parity/recipe.py`, the numpy recipe that made them,
regenerates the weights and inputs bit-exactly, no torch needed.
"""

import json
import pathlib

import numpy as np

import kvid
from tests.fixtures.parity import recipe

FIXTURES = pathlib.Path(__file__).parent / "fixtures" / "parity"


def load(name):
    """Returns the fixture `name` with its regenerated weights and NDHWC input."""
    with np.load(FIXTURES / f"{name}.npz", allow_pickle=False) as z:
        fixture = {key: z[key] for key in z.files}
    schema = json.loads(str(fixture["schema"]))
    seed = int(fixture["seed"])
    weights = recipe.make_weights(schema, seed)
    assert recipe.weights_digest(weights, schema) == str(fixture["weights_sha256"]), name
    x = recipe.make_input(seed, fixture["input_shape"])
    fixture["state_dict"] = weights
    fixture["input"] = x.transpose(0, 2, 3, 4, 1)
    fixture["meta"] = json.loads(str(fixture["meta"]))
    return fixture


def reference_model(name, fixture):
    """The kvid model of fixture `name`, with the fixture's weights, returning logits."""
    model = kvid.get_model(
        name.split("__")[0],
        classes=int(fixture["meta"]["num_classes"]),
        classifier_activation=None,
    )
    kvid.weights.load_torch_state_dict(model, fixture["state_dict"])
    return model


def max_error(actual, expected):
    return float(np.max(np.abs(np.asarray(actual, np.float64) - expected)))


def assert_close_to_scale(actual, expected, tolerance):
    """`max|actual - expected| <= tolerance * max|expected|`, as the parity tests compare.

    An elementwise `rtol`/`atol` holds or not depending on the CPU's summation
    order (oneDNN's or Eigen's kernels, AVX2 or AVX-512): an element that nearly
    cancels keeps the absolute error of the large terms it summed.
    """
    expected = np.asarray(expected, np.float64)
    error, scale = max_error(actual, expected), float(np.abs(expected).max())
    assert error <= tolerance * scale, f"max error {error:.3g} > {tolerance:g} * {scale:.3g}"
