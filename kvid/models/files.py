"""The model files kvid writes, read back for evaluation, prediction and export."""

from __future__ import annotations

import os

import keras


def load_model(path: str | os.PathLike) -> keras.Model:
    """Loads a `.keras` model file (a `train` checkpoint, any kvid model) for inference.

    In safe mode: kvid's layers and schedules are registered with Keras by
    `import kvid`, and kvid never saves a `Lambda`.
    """
    path = os.fspath(path)
    if not (path.endswith(".keras") and os.path.isfile(path)):
        raise ValueError(f"Expected a `.keras` model file. Received: model_path={path!r}")
    return keras.saving.load_model(path, compile=False, safe_mode=True)
