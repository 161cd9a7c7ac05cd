"""apps/export.py: flags in, a TF Serving SavedModel out."""

import pytest
import tensorflow as tf
from absl import app
from absl.testing import flagsaver

from apps import export

TINY = ["--model=r3d_18", "--alpha=0.0625", "--classes=3", "--class_names=run,jump,swim"]


def run_app(*flags):
    with flagsaver.flagsaver():
        export.FLAGS(["export", *flags])
        export.main(["export"])


def test_exports_to_saved_models_by_default_then_next_version(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    run_app(*TINY)
    run_app(*TINY, "--top_k=2")
    assert "Exported r3d_18 to saved_models/r3d_18/2" in capsys.readouterr().out
    loaded = tf.saved_model.load(str(tmp_path / "saved_models/r3d_18/2"))
    result = loaded.signatures["serving_default"](frames=tf.zeros([1, 2, 20, 30, 3], tf.uint8))
    assert result["top_k_classes"].shape == (1, 2)
    assert set(result["top_k_classes"].numpy()[0]) <= {b"run", b"jump", b"swim"}


def test_export_dir_and_version_flags(tmp_path):
    run_app(*TINY, f"--export_dir={tmp_path / 'mine'}", "--version=7")
    assert (tmp_path / "mine/7/saved_model.pb").is_file()


def test_rejects_stray_arguments():
    with flagsaver.flagsaver():
        export.FLAGS(["export", *TINY])
        with pytest.raises(app.UsageError, match="Unexpected arguments: extra"):
            export.main(["export", "extra"])
