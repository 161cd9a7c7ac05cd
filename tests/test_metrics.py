"""`kvid.metrics` against scikit-learn's `average_precision_score`, independent code."""

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from kvid import metrics


def _data(seed, videos=60, classes=7, *, levels=None):
    rng = np.random.default_rng(seed)
    y_true = (rng.random((videos, classes)) < 0.3).astype(int)
    y_true[:, -1] = 0  # a class without a positive video: left out of the mean
    y_true[0, :-1] = 1  # every other class has at least one
    y_score = rng.random((videos, classes))
    if levels is not None:  # few distinct scores: many ties, within and across labels
        y_score = np.round(y_score * levels) / levels
    return y_true, y_score


@pytest.mark.parametrize("levels", [None, 3, 1], ids=["random", "tied", "all-tied"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_per_class_ap_equals_scikit_learn(seed, levels):
    y_true, y_score = _data(seed, levels=levels)
    ours = metrics.average_precision_per_class(y_true, y_score)
    assert np.isnan(ours[-1])
    for c in range(y_true.shape[1] - 1):
        expected = average_precision_score(y_true[:, c], y_score[:, c])
        assert abs(ours[c] - expected) <= 1e-9, (c, ours[c], expected)


@pytest.mark.parametrize("levels", [None, 4])
@pytest.mark.parametrize("weighted", [False, True])
def test_map_equals_scikit_learn_over_classes_with_positives(levels, weighted):
    y_true, y_score = _data(3, levels=levels)
    present = y_true.sum(axis=0) > 0
    expected = average_precision_score(
        y_true[:, present], y_score[:, present], average="weighted" if weighted else "macro"
    )
    ours = metrics.mean_average_precision(y_true, y_score, weighted=weighted)
    assert abs(ours - expected) <= 1e-9


def test_hand_computed_ties():
    # Scores 0.5 (positive), 0.5 (negative), 0.2 (positive): the tie is one threshold,
    # precision 1/2 at recall 1/2, then 2/3 at recall 1: AP = 1/4 + 1/3.
    ap = metrics.average_precision_per_class([[1], [0], [1]], [[0.5], [0.5], [0.2]])
    assert ap[0] == pytest.approx(0.25 + 1 / 3, abs=1e-12)


def test_a_perfect_ranking_scores_one():
    y_true = np.eye(4, dtype=int)
    assert metrics.mean_average_precision(y_true, y_true * 0.9 + 0.05) == 1.0


@pytest.mark.parametrize(
    ("y_true", "y_score", "message"),
    [
        ([[1, 0]], [[0.1, 0.2, 0.3]], "both be"),
        ([[2, 0]], [[0.1, 0.2]], "k-hot"),
        ([[1, 0]], [[np.nan, 0.2]], "finite"),
        ([[0, 0]], [[0.1, 0.2]], "No class has a positive"),
    ],
)
def test_bad_input_is_an_error(y_true, y_score, message):
    with pytest.raises(ValueError, match=message):
        metrics.mean_average_precision(y_true, y_score)
