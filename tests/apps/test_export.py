"""apps/export.py: flags in, a TF Serving SavedModel out."""

import numpy as np
import tensorflow as tf

import kvid
from kvid.models import get_preprocessing
from tests import backend_reference
from tests.apps import assert_quiet, run_app
from tests.export.test_saved_model import TOLERANCE, reference_inputs, synthetic_clip
from tests.processes import run_installed

TINY = ["--model=r3d_18", "--alpha=0.0625", "--classes=3", "--class_names=run,jump,swim"]
CLASSES = backend_reference.CLASSES


def test_exports_to_saved_models_by_default_then_next_version(tmp_path):
    # First the installed console script (the wheel's kvid), then the checkout's app.
    first = run_installed("kvid-export", *TINY, cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    second = run_app("export", *TINY, "--top_k=2", cwd=tmp_path)
    assert_quiet(second.stderr)
    assert "Exported r3d_18 to saved_models/r3d_18/1" in first.stdout
    assert "Exported r3d_18 to saved_models/r3d_18/2" in second.stdout
    loaded = tf.saved_model.load(str(tmp_path / "saved_models/r3d_18/2"))
    result = loaded.signatures["serving_default"](frames=tf.zeros([1, 2, 20, 30, 3], tf.uint8))
    assert result["top_k_classes"].shape == (1, 2)
    assert set(result["top_k_classes"].numpy()[0]) <= {b"run", b"jump", b"swim"}


def test_exports_a_weights_file_saved_under_jax_to_the_dir_and_version_given(tmp_path):
    # The route for weights trained on another backend: their .weights.h5 into kvid-export.
    key, kwargs = backend_reference.FILE_MODEL
    weights = backend_reference.weights_file("jax")
    shape = [f"--model={key}", f"--alpha={kwargs['alpha']}", f"--classes={CLASSES}"]
    mine = tmp_path / "mine"
    run_app("export", *shape, f"--weights={weights}", f"--export_dir={mine}", "--version=7")
    assert sorted(p.name for p in mine.iterdir()) == ["7"]
    model = kvid.get_model(key, **kwargs, classes=CLASSES, weights=weights)
    frames = synthetic_clip(np.random.default_rng(0), 4, 40, 60)[None]
    expected = model.predict(reference_inputs(frames, get_preprocessing(key)), verbose=0)
    served = tf.saved_model.load(str(mine / "7")).signatures["serving_default"]
    probabilities = served(frames=tf.constant(frames))["probabilities"].numpy()
    assert np.abs(probabilities - expected).max() <= TOLERANCE
