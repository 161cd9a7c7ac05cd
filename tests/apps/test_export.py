"""apps/export.py: flags in, a TF Serving SavedModel out."""

import tensorflow as tf

from tests.apps import run_app

TINY = ["--model=r3d_18", "--alpha=0.0625", "--classes=3", "--class_names=run,jump,swim"]


def test_exports_to_saved_models_by_default_then_next_version(tmp_path):
    first = run_app("export", *TINY, cwd=tmp_path)
    second = run_app("export", *TINY, "--top_k=2", cwd=tmp_path)
    assert "Exported r3d_18 to saved_models/r3d_18/1" in first.stdout
    assert "Exported r3d_18 to saved_models/r3d_18/2" in second.stdout
    loaded = tf.saved_model.load(str(tmp_path / "saved_models/r3d_18/2"))
    result = loaded.signatures["serving_default"](frames=tf.zeros([1, 2, 20, 30, 3], tf.uint8))
    assert result["top_k_classes"].shape == (1, 2)
    assert set(result["top_k_classes"].numpy()[0]) <= {b"run", b"jump", b"swim"}


def test_export_dir_and_version_flags(tmp_path):
    run_app("export", *TINY, f"--export_dir={tmp_path / 'mine'}", "--version=7")
    assert (tmp_path / "mine/7/saved_model.pb").is_file()
