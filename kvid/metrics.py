"""Multi-label scores on numpy arrays: average precision per class and its means.

The mAP is the Charades protocol (the official Charades evaluation script,
SlowFast's `get_map`): for each class, the average precision of the videos
ranked by their score for it; then the mean over the classes that have at
least one positive video (a class without one has no defined AP).

Average precision of one class, with the videos sorted by score, highest
first, is `sum_k (R_k - R_{k-1}) * P_k` over the distinct scores `k`, where
`P_k` and `R_k` are the precision and recall of calling every video scoring
at least that score positive. Videos with tied scores form one threshold, as in
scikit-learn's `average_precision_score`, which this equals exactly: a ranking
that breaks ties arbitrarily (the Charades script sorts them) would give a
tied positive and negative an AP that depends on their order in the file.
Without ties, the two definitions are the same number.
"""

from __future__ import annotations

import numpy as np


def _check(y_true, y_score):
    y_true = np.asarray(y_true)
    y_score = np.asarray(y_score, np.float64)
    if y_true.ndim != 2 or y_true.shape != y_score.shape:
        raise ValueError(
            "`y_true` and `y_score` must both be (videos, classes). Received: "
            f"y_true.shape={y_true.shape}, y_score.shape={y_score.shape}"
        )
    if not np.isin(y_true, (0, 1)).all():
        raise ValueError("`y_true` must be k-hot: every entry 0 or 1.")
    if not np.isfinite(y_score).all():
        raise ValueError("`y_score` must be finite.")
    return y_true.astype(bool), y_score


def _average_precision(positive: np.ndarray, score: np.ndarray) -> float:
    """AP of one class: `positive` bool `[videos]`, `score` `[videos]`; NaN without positives."""
    total = positive.sum()
    if not total:
        return float("nan")
    order = np.argsort(-score, kind="stable")
    score, positive = score[order], positive[order]
    # The last video of each run of equal scores: one threshold per distinct score.
    last = np.r_[np.flatnonzero(np.diff(score)), len(score) - 1]
    true_positives = np.cumsum(positive)[last]
    precision = true_positives / (last + 1)
    recall_gain = np.diff(true_positives, prepend=0) / total
    return float(np.sum(recall_gain * precision))


def average_precision_per_class(y_true, y_score) -> np.ndarray:
    """Average precision of each class over the videos (module docstring: ties).

    Args:
        y_true: `(videos, classes)` k-hot targets (0 or 1).
        y_score: `(videos, classes)` scores, higher meaning more likely.

    Returns:
        float64 `[classes]`, NaN for a class with no positive video.

    Raises:
        ValueError: for shapes that differ or are not 2D, targets other than
            0/1, or scores that are not finite.

    Example:
        >>> kvid.metrics.average_precision_per_class(
        ...     [[1, 0], [0, 0], [1, 0]], [[0.9, 0.2], [0.8, 0.1], [0.3, 0.5]])
        array([0.83333333,        nan])
    """
    positive, score = _check(y_true, y_score)
    columns = range(score.shape[1])
    return np.array([_average_precision(positive[:, c], score[:, c]) for c in columns])


def mean_average_precision(y_true, y_score, *, weighted: bool = False) -> float:
    """The Charades mAP: per-class AP averaged over classes with >= 1 positive video.

    Args:
        y_true: `(videos, classes)` k-hot targets (0 or 1).
        y_score: `(videos, classes)` scores (probabilities, logits: only the
            order within a class matters).
        weighted: weight each class by its positive videos (scikit-learn's
            `average="weighted"`) instead of equally.

    Returns:
        The mean, in [0, 1].

    Raises:
        ValueError: as `average_precision_per_class`, or if no class has a
            positive video.

    Example:
        >>> kvid.metrics.mean_average_precision(
        ...     [[1, 0], [0, 1], [1, 0]], [[0.9, 0.2], [0.8, 0.7], [0.3, 0.5]])
        0.9166666666666666
    """
    per_class = average_precision_per_class(y_true, y_score)
    present = ~np.isnan(per_class)
    if not present.any():
        raise ValueError("No class has a positive video: the mAP is undefined.")
    weights = np.asarray(y_true, np.float64).sum(axis=0)[present] if weighted else None
    return float(np.average(per_class[present], weights=weights))
