"""keras.applications-style `decode_predictions` for clips."""

from __future__ import annotations

import keras
import numpy as np

from kvid.weights import WeightSpec, get_weights_spec, kinetics400_categories


def class_names_for(classes: int, class_names=None) -> tuple[str, ...]:
    """The name of each of a classifier's `classes` outputs: one rule for every path.

    `class_names` when given (one per output), else Kinetics-400's for 400
    outputs, else `class_0`, `class_1`, ...

    Raises:
        ValueError: if `class_names` has another length than `classes`.

    Example:
        >>> kvid.models.class_names_for(2)
        ('class_0', 'class_1')
    """
    if class_names is not None:
        class_names = tuple(str(name) for name in class_names)
        if len(class_names) != classes:
            raise ValueError(
                f"`class_names` must have one name per class ({classes}). "
                f"Received: {len(class_names)} class names"
            )
        return class_names
    if classes == 400:
        return kinetics400_categories()
    return tuple(f"class_{i}" for i in range(classes))


def decode_predictions(
    preds, top: int | None = 5, class_names=None, *, weights=None, threshold=None
):
    """Turns a batch of class scores into readable `(index, class_name, score)` lists.

    Args:
        preds: `(batch, classes)` scores (probabilities or logits).
        top: how many of the best classes to return per clip (`None`: all).
        class_names: the class names; defaults to Kinetics-400's when
            `classes == 400`.
        weights: a `kvid.weights.WeightSpec`, or `(model, weights name)`:
            its `categories` are the class names.
        threshold: keep only the classes scoring at least this (a multi-label
            model's sigmoid probabilities: the labels of each clip), at most `top`.

    Returns:
        One list per clip of `(index, class_name, score)` tuples, best first.

    Example:
        >>> kvid.decode_predictions([[0.9, 0.2, 0.7]], class_names=["cup", "dog", "tap"],
        ...                         threshold=0.5)
        [[(0, 'cup', 0.9), (2, 'tap', 0.7)]]

    Raises:
        ValueError: if `preds` is not 2D or does not match `class_names`.
    """
    if weights is not None:
        spec = weights if isinstance(weights, WeightSpec) else get_weights_spec(*weights)
        if spec is None or spec.categories is None:
            raise ValueError(f"No categories for weights. Received: weights={weights!r}")
        class_names = spec.categories
    preds = np.asarray(keras.ops.convert_to_numpy(preds))
    if class_names is None and preds.ndim == 2 and preds.shape[1] == 400:
        class_names = kinetics400_categories()
    if preds.ndim != 2 or class_names is None or preds.shape[1] != len(class_names):
        raise ValueError(
            "`decode_predictions` expects a batch of shape (samples, classes) with one name per "
            f"class (Kinetics-400 names are used for 400 classes). Received: preds.shape="
            f"{preds.shape}, {'no' if class_names is None else len(class_names)} class names"
        )
    order = np.argsort(-preds, axis=1, kind="stable")[:, :top]
    return [
        [
            (int(i), class_names[i], float(row[i]))
            for i in idx
            if threshold is None or row[i] >= threshold
        ]
        for row, idx in zip(preds, order, strict=True)
    ]
