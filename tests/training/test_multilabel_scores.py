"""Multi-label scoring pieces, each against values computed here by hand or by scikit-learn."""

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

import kvid
from kvid import evaluation
from kvid.inference import Timeline
from kvid.training import train_lib

# Two videos, three views each, three classes.
PROBS = np.array(
    [
        [0.9, 0.1, 0.3], [0.2, 0.4, 0.3], [0.1, 0.7, 0.3],  # video "a"
        [0.5, 0.2, 0.8], [0.6, 0.1, 0.2], [0.4, 0.3, 0.5],  # video "b"
    ]
)  # fmt: skip
IDS = np.array(["b", "b", "b", "a", "a", "a"])[[3, 4, 5, 0, 1, 2]]  # "a" first, "b" last
LABELS = np.repeat([[1, 1, 0], [0, 0, 1]], 3, axis=0)


@pytest.mark.parametrize(
    ("aggregation", "expected"),
    [
        ("max", [[0.9, 0.7, 0.3], [0.6, 0.3, 0.8]]),
        ("mean", [[0.4, 0.4, 0.3], [0.5, 0.2, 0.5]]),
    ],
)
def test_views_combine_by_max_or_mean(aggregation, expected):
    ids = np.array(["a"] * 3 + ["b"] * 3)
    result = evaluation.score_multi_label(PROBS, LABELS, ids, aggregation)
    np.testing.assert_allclose(result.video_probabilities, expected, atol=1e-12)
    np.testing.assert_array_equal(result.video_ids, ["a", "b"])
    np.testing.assert_array_equal(result.video_labels, [[1, 1, 0], [0, 0, 1]])
    assert result.mean_ap == pytest.approx(
        average_precision_score(result.video_labels, np.asarray(expected)), abs=1e-12
    )
    assert result.clip_mean_ap == pytest.approx(average_precision_score(LABELS, PROBS), abs=1e-12)
    assert (result.num_clips, result.num_videos, result.aggregation) == (6, 2, aggregation)


def test_weighted_map_weights_classes_by_their_positive_videos():
    rng = np.random.default_rng(0)
    labels = (rng.random((30, 4)) < 0.4).astype(int)
    labels[0] = 1
    probs = rng.random((30, 4))
    result = evaluation.score_multi_label(probs, labels, np.arange(30).astype(str))
    assert result.weighted_mean_ap == pytest.approx(
        average_precision_score(labels, probs, average="weighted"), abs=1e-9
    )


def test_views_of_one_video_must_agree_and_the_aggregation_be_known():
    with pytest.raises(ValueError, match="different labels"):
        evaluation.score_multi_label(PROBS[:2], [[1, 0, 0], [0, 1, 0]], ["a", "a"])
    with pytest.raises(ValueError, match="aggregation"):
        evaluation.score_multi_label(PROBS, LABELS, np.arange(6), "median")


def test_decode_predictions_keeps_the_classes_above_the_threshold():
    names = ["cup", "dog", "tap", "sun"]
    preds = [[0.9, 0.2, 0.7, 0.5], [0.1, 0.2, 0.3, 0.4]]
    assert kvid.decode_predictions(preds, class_names=names, threshold=0.5) == [
        [(0, "cup", 0.9), (2, "tap", 0.7), (3, "sun", 0.5)],
        [],
    ]
    assert kvid.decode_predictions(preds, top=1, class_names=names, threshold=0.5) == [
        [(0, "cup", 0.9)],
        [],
    ]


def test_timeline_labels_per_clip_in_its_files(tmp_path):
    timeline = Timeline(
        times=np.array([0.5, 1.5]),
        probs=np.array([[0.8, 0.6, 0.1], [0.2, 0.3, 0.95]]),
        class_names=("open", "hold", "pour"),
        starts=np.array([0, 8]),
        threshold=0.5,
    )
    assert timeline.clip_labels() == [[("open", 0.8), ("hold", 0.6)], [("pour", 0.95)]]
    assert timeline.clip_labels(0.25) == [
        [("open", 0.8), ("hold", 0.6)],
        [("pour", 0.95), ("hold", 0.3)],
    ]
    csv_rows = timeline.to_csv(k=1).splitlines()
    assert csv_rows == [
        "time,start_frame,class_1,probability_1,labels",
        "0.500,0,open,0.800000,open;hold",
        "1.500,8,pour,0.950000,pour",
    ]
    saved = __import__("json").loads(timeline.to_json(k=1))
    assert saved["threshold"] == 0.5
    assert [[c["class"] for c in clip["labels"]] for clip in saved["clips"]] == [
        ["open", "hold"],
        ["pour"],
    ]
    figure = kvid.plots.timeline_figure(
        timeline.times, timeline.probs, timeline.class_names, k=1, threshold=0.5
    )
    labels = figure.axes[0].get_legend_handles_labels()[1]
    assert labels == ["pour (0.53)", "open (0.50)", "hold (0.45)", "threshold 0.5"]


@pytest.mark.parametrize("model", ["s3dg", "r2plus1d_18"])
def test_a_multi_label_run_builds_every_factory_with_a_sigmoid_head(model):
    config = train_lib.TrainConfig(
        model=model,
        multi_label=True,
        num_frames=4,
        size=32,
        model_kwargs=kvid.models.get_spec(model).test_kwargs,
        label_smoothing=0.2,
    )
    preprocessing = train_lib.clip_preprocessing(config)
    net = train_lib.build_model(config, 5, preprocessing)
    train_lib.compile_model(net, config, steps_per_epoch=1)
    assert net.loss.get_config()["label_smoothing"] == 0.2
    _, (auc,), monitor = train_lib.loss_and_metrics(config, 5)
    assert (auc.curve.name, auc.multi_label, auc.name, monitor) == (
        "PR", False, "pr_auc", "val_pr_auc"
    )  # fmt: skip
    # Called eagerly: tracing a training step of each model costs more than the test may.
    probs = net(np.random.default_rng(0).random((2, 4, 32, 32, 3), "float32")).numpy()
    assert probs.shape == (2, 5) and ((probs > 0) & (probs < 1)).all()
    assert not np.allclose(probs.sum(axis=1), 1.0, atol=1e-3)  # independent classes
