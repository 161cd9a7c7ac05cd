"""apps/convert.py: a checkpoint in, a `.weights.h5` out, the mapping and the difference printed."""

import pathlib

import numpy as np

import kvid
from tests.apps import assert_quiet, run_app

DATA = pathlib.Path(__file__).parents[1] / "weights" / "data"


def test_converts_the_howto100m_layout_and_compares_with_a_reference(tmp_path):
    source = DATA / "s3d_howto100m_tiny.pth"
    model = kvid.S3DG(space_to_depth=True, classes=16, alpha=1 / 32, classifier_activation=None)
    kvid.weights.load_weights_file(model, source, model_name="s3dg")
    inputs = np.random.default_rng(0).uniform(0, 1, (1, 8, 32, 32, 3)).astype("float32")
    np.savez(tmp_path / "reference.npz", inputs=inputs, logits=model.predict(inputs, verbose=0))

    done = run_app(
        "convert",
        "--model=s3dg",
        f"--source={source}",
        f"--output={tmp_path / 's3dg.weights.h5'}",
        "--classes=16",
        "--alpha=0.03125",
        "--space_to_depth",
        f"--reference={tmp_path / 'reference.npz'}",
    )
    assert_quiet(done.stderr)
    assert "conv1.conv1.weight -> conv1_conv1/kernel" in done.stdout
    assert "Max |logits - reference| = 0" in done.stdout
    converted = kvid.S3DG(space_to_depth=True, classes=16, alpha=1 / 32)
    converted.load_weights(tmp_path / "s3dg.weights.h5")
    np.testing.assert_array_equal(
        converted.get_layer("fc").bias.numpy(), model.get_layer("fc").bias.numpy()
    )
