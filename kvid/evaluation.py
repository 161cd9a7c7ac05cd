"""Clip- and video-level accuracy (multi-label: mAP) with several views per video.

The video protocol of the papers: K clips evenly spaced in time, times
1 or 3 spatial crops, softmax averaged over the views. Every view is also
scored alone (clip accuracy). A multi-label model's sigmoid probabilities
are combined over the views by their maximum (SlowFast's Charades setting)
or mean, and scored by the Charades mAP (`kvid.metrics`). Predictions are
made batch by batch and matched to their labels in the same loop, so a last
partial batch (or a batch that does not split evenly across replicas) is
counted exactly once.
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import tensorflow as tf

from kvid import data, metrics
from kvid.io.class_names import class_names_beside
from kvid.io.progress import progress_bar
from kvid.models import load_model, model_convention


@dataclasses.dataclass(frozen=True)
class EvaluationResult:
    """Accuracies in [0, 1]; `confusion[true, predicted]` counts videos.

    `video_probabilities[i]` is the mean of the views' probabilities of the
    video `video_ids[i]` (ids sorted), the score the accuracies are taken from.
    """

    clip_top1: float
    clip_top5: float
    video_top1: float
    video_top5: float
    num_clips: int
    num_videos: int
    confusion: np.ndarray
    class_names: tuple[str, ...] = ()
    video_ids: np.ndarray | None = None
    video_probabilities: np.ndarray | None = None


AGGREGATIONS = ("mean", "max")


@dataclasses.dataclass(frozen=True)
class MultiLabelResult:
    """Multi-label scores of videos: the Charades mAP and each class's AP.

    Attributes:
        mean_ap: video mAP over the classes with a positive video.
        weighted_mean_ap: the same, each class weighted by its positive videos.
        per_class_ap: `[classes]` video AP of each class, NaN without a positive video.
        clip_mean_ap: mAP of every view scored alone (against its video's labels).
        aggregation: how the views' probabilities were combined (`"max"` or `"mean"`).
        num_clips: views scored.
        num_videos: videos scored.
        class_names: the name of each class.
        video_ids: the videos, sorted.
        video_probabilities: `[videos, classes]` their combined probabilities.
        video_labels: `[videos, classes]` their k-hot labels.
    """

    mean_ap: float
    weighted_mean_ap: float
    per_class_ap: np.ndarray
    clip_mean_ap: float
    aggregation: str
    num_clips: int
    num_videos: int
    class_names: tuple[str, ...] = ()
    video_ids: np.ndarray | None = None
    video_probabilities: np.ndarray | None = None
    video_labels: np.ndarray | None = None


def aggregate_views(probs, video_ids, aggregation: str = "mean"):
    """Combines per-view `(views, classes)` scores into one row per video.

    Args:
        probs: `(views, classes)` probabilities.
        video_ids: `(views,)` which video each view comes from.
        aggregation: `"mean"` or `"max"` over a video's views.

    Returns:
        `(ids, video_probs, inverse)`: the sorted distinct ids, `(videos, classes)`
        scores, and the video row of each view.
    """
    if aggregation not in AGGREGATIONS:
        raise ValueError(
            f"`aggregation` must be one of {AGGREGATIONS}. Received: aggregation={aggregation!r}"
        )
    probs = np.asarray(probs, np.float64)
    ids, inverse = np.unique(np.asarray(video_ids), return_inverse=True)
    if aggregation == "max":
        video_probs = np.full((len(ids), probs.shape[1]), -np.inf)
        np.maximum.at(video_probs, inverse, probs)
        return ids, video_probs, inverse
    counts = np.bincount(inverse, minlength=len(ids))
    video_probs = np.zeros((len(ids), probs.shape[1]))
    np.add.at(video_probs, inverse, probs)
    return ids, video_probs / counts[:, None], inverse


def score_multi_label(probs, labels, video_ids, aggregation: str = "max") -> MultiLabelResult:
    """The Charades mAP of videos from per-view probabilities and k-hot labels.

    Args:
        probs: `(views, classes)` probabilities (sigmoid outputs).
        labels: `(views, classes)` k-hot labels (the same for all views of a video).
        video_ids: `(views,)` which video each view comes from.
        aggregation: `"max"` (default, SlowFast's for Charades) or `"mean"` over a video's views.

    Raises:
        ValueError: if a video's views disagree on its labels.
    """
    probs = np.asarray(probs, np.float64)
    labels = np.asarray(labels, np.float64)
    ids, video_probs, inverse = aggregate_views(probs, video_ids, aggregation)
    video_labels = np.zeros_like(video_probs)
    video_labels[inverse] = labels
    if np.any(video_labels[inverse] != labels):
        raise ValueError("The views of one video carry different labels.")
    return MultiLabelResult(
        mean_ap=metrics.mean_average_precision(video_labels, video_probs),
        weighted_mean_ap=metrics.mean_average_precision(video_labels, video_probs, weighted=True),
        per_class_ap=metrics.average_precision_per_class(video_labels, video_probs),
        clip_mean_ap=metrics.mean_average_precision(labels, probs),
        aggregation=aggregation,
        num_clips=len(probs),
        num_videos=len(ids),
        video_ids=ids,
        video_probabilities=video_probs,
        video_labels=video_labels,
    )


def _in_top_k(probs, labels, k):
    # A stable sort on -probs breaks ties towards the lower class index.
    order = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    return (order == labels[:, None]).any(axis=1)


def score(probs, labels, video_ids, num_classes: int | None = None) -> EvaluationResult:
    """Accuracies from per-view class probabilities.

    Args:
        probs: `(views, classes)` probabilities.
        labels: `(views,)` true classes (the same for all views of a video).
        video_ids: `(views,)` which video each view comes from.
        num_classes: rows/columns of the confusion matrix; defaults to `classes`.

    Raises:
        ValueError: if a video's views disagree on its label.
    """
    probs = np.asarray(probs, np.float64)
    labels = np.asarray(labels).astype(int)
    ids, video_probs, inverse = aggregate_views(probs, video_ids, "mean")
    video_labels = np.full(len(ids), -1)
    video_labels[inverse] = labels
    if np.any(video_labels[inverse] != labels):
        raise ValueError("The views of one video carry different labels.")
    num_classes = num_classes or probs.shape[1]
    confusion = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(confusion, (video_labels, video_probs.argmax(axis=1)), 1)
    return EvaluationResult(
        clip_top1=float(_in_top_k(probs, labels, 1).mean()),
        clip_top5=float(_in_top_k(probs, labels, 5).mean()),
        video_top1=float(_in_top_k(video_probs, video_labels, 1).mean()),
        video_top5=float(_in_top_k(video_probs, video_labels, 5).mean()),
        num_clips=len(labels),
        num_videos=len(ids),
        confusion=confusion,
        video_ids=ids,
        video_probabilities=video_probs,
    )


def predict_views(
    model: keras.Model,
    dataset: tf.data.Dataset,
    *,
    from_logits: bool = False,
    progress: bool = False,
    num_views: int | None = None,
    sigmoid: bool = False,
):
    """Runs `model` over `(views, labels, video_ids)` batches.

    The model is called directly, not through a distribution strategy: a
    strategy splits each batch over its replicas and returns padded results
    for batches that do not split evenly.

    Args:
        model: the classifier.
        dataset: `(views, labels, video_ids)` batches.
        from_logits: the model outputs logits (softmaxed here).
        sigmoid: the model outputs multi-label logits (a sigmoid applied here).
        progress: show a progress bar (`kvid.io.progress`) on stderr, in views.
        num_views: the views `dataset` holds, the bar's length (`None`: unknown).

    Returns:
        `(probs, labels, video_ids)` as numpy arrays, one row per view.
    """
    forward = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    bar = progress_bar(num_views, "view", enabled=progress)
    probs, labels, ids = [], [], []
    for views, batch_labels, batch_ids in dataset:
        out = forward(views).numpy().astype(np.float64)
        if from_logits:
            out = np.exp(out - out.max(axis=1, keepdims=True))
            out /= out.sum(axis=1, keepdims=True)
        if sigmoid:
            out = 1 / (1 + np.exp(-out))
        probs.append(out)
        labels.append(np.asarray(batch_labels))
        ids.append(np.asarray(batch_ids))
        bar.add(len(out))
    bar.finish()
    return np.concatenate(probs), np.concatenate(labels), np.concatenate(ids)


def evaluate(
    model: keras.Model,
    dataset: tf.data.Dataset,
    *,
    from_logits: bool = False,
    progress: bool = False,
    num_views: int | None = None,
    multi_label: bool = False,
    aggregation: str | None = None,
) -> EvaluationResult | MultiLabelResult:
    """Clip and video top-1/top-5 of `model` on `(views, labels, video_ids)` batches.

    With `multi_label` (k-hot labels, sigmoid outputs), the mAP instead
    (`score_multi_label`, views combined by `aggregation`, default `"max"`);
    single-label scores average the views (`aggregation` must be unset or
    `"mean"`). `progress` and `num_views` are `predict_views'`; a multi-label
    model's logits (`from_logits`) go through a sigmoid.
    """
    if multi_label:
        probs, labels, ids = predict_views(
            model, dataset, progress=progress, num_views=num_views, sigmoid=from_logits
        )
        return score_multi_label(probs, labels, ids, aggregation or "max")
    if aggregation not in (None, "mean"):
        raise ValueError(
            "Single-label scores average the views' probabilities. "
            f"Received: aggregation={aggregation!r}"
        )
    probs, labels, ids = predict_views(
        model, dataset, from_logits=from_logits, progress=progress, num_views=num_views
    )
    return score(probs, labels, ids, num_classes=probs.shape[1])


def view_batches(dataset: tf.data.Dataset, batch_size: int, *, reverse: bool = False):
    """`(views, labels, video_ids)` batches from `kvid.data.video_evaluation_dataset` elements.

    Args:
        dataset: one `(views, label, video_id)` element per video.
        batch_size: views per batch (a video's views may span batches).
        reverse: play every view backwards (labels unchanged): a model that
            reads temporal order scores far lower.
    """

    def per_view(views, label, video_id):
        if reverse:
            views = views[:, ::-1]
        count = tf.shape(views)[0]
        # One label row per view: a scalar class, or a multi-label video's k-hot vector.
        labels = tf.repeat(label[None], count, axis=0)
        return tf.data.Dataset.from_tensor_slices((views, labels, tf.fill([count], video_id)))

    return dataset.flat_map(per_view).batch(batch_size).prefetch(tf.data.AUTOTUNE)


def evaluate_directory(
    model_path: str,
    directory: str,
    *,
    model_name: str | None = None,
    num_frames: int | None = None,
    num_clips: int = 10,
    num_crops: int = 1,
    batch_size: int = 16,
    progress: bool = False,
    multi_label: bool = False,
    aggregation: str | None = None,
) -> EvaluationResult | MultiLabelResult:
    """Evaluates the `.keras` model at `model_path` on a class-per-folder `directory`.

    Views come from `kvid.data.video_evaluation_dataset` with the model's own
    preprocessing (recorded in the model, e.g. by `train`), so each centre-crop
    view is what the model's SavedModel export computes from the same frames.

    Args:
        model_path: a `.keras` file (e.g. `best.keras` of a `train` run).
        directory: the class-per-folder videos, or an annotation file
            (`kvid.data.read_annotations`; several labels a video with `multi_label`).
        model_name: the registry key whose convention to use instead of the one the
            model records (`kvid.models.model_convention` decides, as for
            every path).
        num_frames: frames per view (default: the model's input length, else
            its convention's).
        num_clips: clips per video, evenly spaced.
        num_crops: 1 or 3 spatial crops per clip.
        batch_size: views per forward pass.
        progress: show a progress bar (`kvid.io.progress`) on stderr, in views.
        multi_label: score the mAP of k-hot labels (`evaluate`).
        aggregation: how a video's views are combined (`evaluate`).
    """
    model = load_model(model_path)
    convention = model_convention(model, model_name, num_frames=num_frames)
    names = class_names_beside(model_path)
    dataset = data.video_evaluation_dataset(
        directory,
        num_clips=num_clips,
        num_crops=num_crops,
        class_names=list(names) if names else None,
        num_frames=convention.num_frames,
        model=convention,
        multi_label=multi_label,
    )
    result = evaluate(
        model,
        view_batches(dataset, batch_size),
        progress=progress,
        num_views=len(dataset.file_paths) * num_clips * num_crops,
        multi_label=multi_label,
        aggregation=aggregation,
    )
    return dataclasses.replace(result, class_names=tuple(dataset.class_names))


def summary(result: EvaluationResult | MultiLabelResult, class_names=None) -> str:
    """A readable report: accuracies, per-class video accuracy, worst confusions.

    A multi-label result's: the mAP, weighted mAP, clip mAP and each class's AP.
    """
    class_names = class_names or result.class_names
    if isinstance(result, MultiLabelResult):
        return _multi_label_summary(result, class_names)
    lines = [
        f"clips: {result.num_clips}  videos: {result.num_videos}",
        f"clip top-1 {result.clip_top1:.3f}  top-5 {result.clip_top5:.3f}",
        f"video top-1 {result.video_top1:.3f}  top-5 {result.video_top5:.3f}",
        "per class (video top-1, most confused with):",
    ]
    confusion = result.confusion
    for label, name in enumerate(class_names):
        row = confusion[label]
        total = row.sum()
        if not total:
            continue
        others = row.copy()
        others[label] = 0
        worst = int(others.argmax())
        confused = f"{class_names[worst]} ({others[worst]})" if others[worst] else "-"
        lines.append(f"  {name:<28} {row[label] / total:.3f}  {confused}")
    return "\n".join(lines)


def _multi_label_summary(result: MultiLabelResult, class_names) -> str:
    positives = result.video_labels.sum(axis=0).astype(int)
    lines = [
        f"clips: {result.num_clips}  videos: {result.num_videos}  views combined by "
        f"{result.aggregation}",
        f"video mAP {result.mean_ap:.3f}  weighted mAP {result.weighted_mean_ap:.3f}  "
        f"clip mAP {result.clip_mean_ap:.3f}",
        "per class (video AP, positive videos):",
    ]
    for name, ap, count in zip(class_names, result.per_class_ap, positives, strict=True):
        lines.append(f"  {name:<28} {'-' if np.isnan(ap) else f'{ap:.3f}':>5}  {count}")
    return "\n".join(lines)
