"""Clip- and video-level accuracy with several views per video.

The video protocol of the papers: K clips evenly spaced in time, times
1 or 3 spatial crops, softmax averaged over the views. Every view is also
scored alone (clip accuracy). Predictions are made batch by batch and matched
to their labels in the same loop, so a last partial batch (or a batch that
does not split evenly across replicas) is counted exactly once.
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import tensorflow as tf

from kvid.data import decode
from kvid.models import preprocess_input
from kvid.training import model_files, video_folder


@dataclasses.dataclass(frozen=True)
class EvaluationResult:
    """Accuracies in [0, 1]; `confusion[true, predicted]` counts videos."""

    clip_top1: float
    clip_top5: float
    video_top1: float
    video_top5: float
    num_clips: int
    num_videos: int
    confusion: np.ndarray
    class_names: tuple[str, ...] = ()


def view_starts(length: int, num_frames: int, num_clips: int) -> np.ndarray:
    """First frames of `num_clips` clips spread evenly over a `length`-frame video."""
    last = max(length - num_frames, 0)
    return np.round(np.linspace(0, last, num_clips)).astype(int)


def video_views(video, *, num_frames: int, num_clips: int, crop_size: int, num_crops: int = 1):
    """Cuts a video into `num_clips * num_crops` views, clip-major.

    Args:
        video: `(frames, height, width, channels)`, already resized so that its
            short side is at least `crop_size`.
        num_frames: frames per view; shorter videos repeat their last frame.
        num_clips: clips evenly spaced in time.
        crop_size: side of the square spatial crops.
        num_crops: 1 (centre) or 3 (both ends and centre of the long side).

    Returns:
        `(num_clips * num_crops, num_frames, crop_size, crop_size, channels)`.
    """
    if num_crops not in (1, 3):
        raise ValueError(f"`num_crops` must be 1 or 3. Received: num_crops={num_crops}")
    video = np.asarray(video)
    length, height, width = video.shape[:3]
    if min(height, width) < crop_size:
        raise ValueError(
            f"Frames of {height}x{width} are smaller than the crop. Received: crop_size={crop_size}"
        )
    top, left = (height - crop_size) // 2, (width - crop_size) // 2
    if num_crops == 1:
        corners = [(top, left)]
    elif width >= height:
        corners = [(top, 0), (top, left), (top, width - crop_size)]
    else:
        corners = [(0, left), (top, left), (height - crop_size, left)]
    views = []
    for start in view_starts(length, num_frames, num_clips):
        frames = video[np.minimum(start + np.arange(num_frames), length - 1)]
        for y, x in corners:
            views.append(frames[:, y : y + crop_size, x : x + crop_size])
    return np.stack(views)


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
    ids, inverse = np.unique(np.asarray(video_ids), return_inverse=True)
    counts = np.bincount(inverse, minlength=len(ids))
    video_probs = np.zeros((len(ids), probs.shape[1]))
    np.add.at(video_probs, inverse, probs)
    video_probs /= counts[:, None]
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
    )


def predict_views(model: keras.Model, dataset: tf.data.Dataset, *, from_logits: bool = False):
    """Runs `model` over `(views, labels, video_ids)` batches.

    The model is called directly, not through a distribution strategy: a
    strategy splits each batch over its replicas and returns padded results
    for batches that do not split evenly.

    Returns:
        `(probs, labels, video_ids)` as numpy arrays, one row per view.
    """
    forward = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    probs, labels, ids = [], [], []
    for views, batch_labels, batch_ids in dataset:
        out = forward(views).numpy().astype(np.float64)
        if from_logits:
            out = np.exp(out - out.max(axis=1, keepdims=True))
            out /= out.sum(axis=1, keepdims=True)
        probs.append(out)
        labels.append(np.asarray(batch_labels))
        ids.append(np.asarray(batch_ids))
    return np.concatenate(probs), np.concatenate(labels), np.concatenate(ids)


def evaluate(
    model: keras.Model, dataset: tf.data.Dataset, *, from_logits: bool = False
) -> EvaluationResult:
    """Clip and video top-1/top-5 of `model` on `(views, labels, video_ids)` batches."""
    probs, labels, ids = predict_views(model, dataset, from_logits=from_logits)
    return score(probs, labels, ids, num_classes=probs.shape[1])


def view_dataset(
    directory,
    *,
    num_frames: int,
    size: int,
    num_clips: int = 10,
    num_crops: int = 1,
    batch_size: int = 16,
    preprocess=None,
) -> tuple[tf.data.Dataset, list[str]]:
    """Every view of every video of a class-per-folder `directory`.

    Frames are resized so the short side is `size`, then cut into
    `num_clips x num_crops` views of `num_frames x size x size`.

    Args:
        directory: the class-per-folder root.
        num_frames: frames per view.
        size: the crop side (and the short side after resizing).
        num_clips: clips per video, evenly spaced.
        num_crops: 1 or 3 spatial crops.
        batch_size: views per batch.
        preprocess: optional function applied to uint8 view batches (e.g. the
            model's `preprocess_input`).

    Returns:
        `((views, labels, video_ids) batches, class_names)`.
    """
    paths, labels, class_names = video_folder.list_videos(directory)

    def views_of(index):
        video = decode.read_video(paths[index])
        video = video_folder.resize_short_side(video, size).numpy()
        cut = video_views(
            video, num_frames=num_frames, num_clips=num_clips, crop_size=size, num_crops=num_crops
        )
        count = len(cut)
        return cut, np.full(count, labels[index], np.int32), np.full(count, index, np.int32)

    def load(index):
        views, view_labels, ids = tf.numpy_function(
            views_of, [index], (tf.uint8, tf.int32, tf.int32)
        )
        views = tf.ensure_shape(views, [num_clips * num_crops, num_frames, size, size, 3])
        return tf.data.Dataset.from_tensor_slices((views, view_labels, ids))

    dataset = tf.data.Dataset.range(len(paths)).interleave(
        load, cycle_length=1, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )
    dataset = dataset.batch(batch_size)
    if preprocess is not None:
        dataset = dataset.map(lambda v, y, i: (preprocess(v), y, i))
    return dataset.prefetch(tf.data.AUTOTUNE), class_names


def evaluate_directory(
    model_path: str,
    directory: str,
    *,
    model_name: str | None = None,
    num_frames: int | None = None,
    size: int | None = None,
    num_clips: int = 10,
    num_crops: int = 1,
    batch_size: int = 16,
) -> EvaluationResult:
    """Evaluates the `.keras` model at `model_path` on a class-per-folder `directory`.

    Args:
        model_path: a `.keras` file (e.g. `best.keras` of a `train` run).
        directory: the class-per-folder videos.
        model_name: registry key of the input convention (default: the model's name).
        num_frames: frames per view (default: the model's input length).
        size: crop side (default: the model's input size).
        num_clips: clips per video, evenly spaced.
        num_crops: 1 or 3 spatial crops per clip.
        batch_size: views per forward pass.
    """
    model = model_files.load_model(model_path)
    key = model_files.preprocessing_key(model, model_name)
    _, frames, height, _, _ = model.inputs[0].shape
    dataset, class_names = view_dataset(
        directory,
        num_frames=num_frames or frames,
        size=size or height,
        num_clips=num_clips,
        num_crops=num_crops,
        batch_size=batch_size,
        preprocess=lambda views: preprocess_input(views, key),
    )
    result = evaluate(model, dataset)
    return dataclasses.replace(result, class_names=tuple(class_names))


def summary(result: EvaluationResult, class_names=None) -> str:
    """A readable report: accuracies, per-class video accuracy, worst confusions."""
    class_names = class_names or result.class_names
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
