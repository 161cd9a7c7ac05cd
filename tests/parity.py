"""The parity fixtures' numpy recipe (see tests/fixtures/parity), re-implemented for the tests.

A fixture stores the reference's state-dict schema, the weight seed and its
outputs; weights and inputs are regenerated here bit-exactly, no torch needed.
"""

import hashlib
import json
import pathlib

import numpy as np

import kvid

FIXTURES = pathlib.Path(__file__).parent / "fixtures" / "parity"


def _weight(key, shape, keyset, rng):
    if key.endswith("running_var"):
        return rng.uniform(0.5, 1.5, shape)
    if key.endswith("running_mean"):
        return rng.normal(0, 0.1, shape)
    if key.endswith(".weight") and key[: -len("weight")] + "running_var" in keyset:
        return rng.uniform(0.8, 1.2, shape)  # BatchNorm gamma
    if key.endswith("bias"):
        return rng.normal(0, 0.05, shape)
    return rng.normal(0, 1, shape) * np.sqrt(2 / int(np.prod(shape[1:])))


def make_weights(schema, seed):
    """The fixture's weights, torch layout, in schema order (num_batches_tracked skipped)."""
    keyset = {key for key, _ in schema}
    weights = {}
    for index, (key, shape) in enumerate(schema):
        if key.endswith("num_batches_tracked"):
            continue
        rng = np.random.default_rng([seed, index])
        weights[key] = _weight(key, tuple(shape), keyset, rng).astype(np.float32)
    return weights


def weights_digest(weights, schema):
    digest = hashlib.sha256()
    for key, _ in schema:
        if key in weights:
            digest.update(key.encode())
            digest.update(np.ascontiguousarray(weights[key], dtype="<f4").tobytes())
    return digest.hexdigest()


def load(name):
    """Returns the fixture `name` with its regenerated weights and NDHWC input."""
    with np.load(FIXTURES / f"{name}.npz", allow_pickle=False) as z:
        fixture = {key: z[key] for key in z.files}
    schema = json.loads(str(fixture["schema"]))
    seed = int(fixture["seed"])
    weights = make_weights(schema, seed)
    assert weights_digest(weights, schema) == str(fixture["weights_sha256"]), name
    shape = tuple(int(s) for s in fixture["input_shape"])
    x = np.random.default_rng(seed + 1000).uniform(-1, 1, size=shape).astype(np.float32)
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
