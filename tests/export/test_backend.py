"""Export is TensorFlow-only: another Keras backend gets an error that says what to do."""

import keras
import pytest

import kvid


def test_export_under_another_backend_asks_for_weights_and_a_tensorflow_process(
    tmp_path, monkeypatch
):
    model = kvid.get_model("r3d_18", alpha=1 / 16, classes=3)
    monkeypatch.setattr(keras.backend, "backend", lambda: "jax")
    message = r"(?s)backend\(\)='jax'.*r3d_18\.weights\.h5.*KERAS_BACKEND=tensorflow"
    with pytest.raises(RuntimeError, match=message):
        kvid.export.export_saved_model(model, tmp_path / "export")
    assert not (tmp_path / "export").exists()
