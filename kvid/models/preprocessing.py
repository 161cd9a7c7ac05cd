"""keras.applications-style `preprocess_input` and `decode_predictions` for clips.

`preprocess_input` is `kvid.preprocessing.normalize`, the one normalisation of kvid.
"""

from __future__ import annotations

import functools
from importlib import resources

import keras
import numpy as np

from kvid.preprocessing import preprocess_input

__all__ = ["decode_predictions", "kinetics400_labels", "preprocess_input"]


@functools.cache
def kinetics400_labels() -> tuple[str, ...]:
    """The 400 Kinetics class names, in the order of the models' outputs."""
    text = resources.files("kvid.models").joinpath("kinetics400_labels.txt").read_text()
    return tuple(line.strip() for line in text.splitlines() if line.strip())


def decode_predictions(preds, top: int = 5, class_names=None, *, weights=None):
    """Turns a batch of class scores into readable `(index, class_name, score)` lists.

    Args:
        preds: `(batch, classes)` scores (probabilities or logits).
        top: how many of the best classes to return per clip.
        class_names: the class names; defaults to Kinetics-400's when
            `classes == 400`.
        weights: a `kvid.weights.WeightSpec`, or `(model, weights name)`:
            its `categories` are the class names.

    Returns:
        One list per clip of `(index, class_name, score)` tuples, best first.

    Raises:
        ValueError: if `preds` is not 2D or does not match `class_names`.
    """
    if weights is not None:
        from kvid.weights import WeightSpec, get_weights_spec

        spec = weights if isinstance(weights, WeightSpec) else get_weights_spec(*weights)
        if spec is None or spec.categories is None:
            raise ValueError(f"No categories for weights. Received: weights={weights!r}")
        class_names = spec.categories
    preds = np.asarray(keras.ops.convert_to_numpy(preds))
    if class_names is None and preds.ndim == 2 and preds.shape[1] == 400:
        class_names = kinetics400_labels()
    if preds.ndim != 2 or class_names is None or preds.shape[1] != len(class_names):
        raise ValueError(
            "`decode_predictions` expects a batch of shape (samples, classes) with one name per "
            f"class (Kinetics-400 names are used for 400 classes). Received: preds.shape="
            f"{preds.shape}, {'no' if class_names is None else len(class_names)} class names"
        )
    order = np.argsort(-preds, axis=1)[:, :top]
    return [
        [(int(i), class_names[i], float(row[i])) for i in idx]
        for row, idx in zip(preds, order, strict=True)
    ]
