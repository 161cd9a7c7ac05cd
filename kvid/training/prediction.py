"""Predictions over a whole video: top-5 labels and a per-clip probability timeline."""

from __future__ import annotations

import dataclasses
import os

import keras
import numpy as np
import tensorflow as tf

from kvid import preprocessing
from kvid.data import decode
from kvid.models import kinetics400_labels
from kvid.training import model_files

# Line colours of the timeline plot, one per top-k class, in rank order.
PALETTE = (
    ("red", (214, 39, 40)),
    ("blue", (31, 119, 180)),
    ("green", (44, 160, 44)),
    ("orange", (255, 127, 14)),
    ("purple", (148, 103, 189)),
)


@dataclasses.dataclass(frozen=True)
class Timeline:
    """Class probabilities of consecutive clips of one video.

    Attributes:
        starts: first frame of each clip.
        probs: `(clips, classes)` probabilities.
        class_names: the name of each class.
    """

    starts: np.ndarray
    probs: np.ndarray
    class_names: tuple[str, ...]

    def top(self, k: int = 5) -> list[tuple[str, float]]:
        """The `k` best classes of the whole video (mean over its clips), best first."""
        mean = self.probs.mean(axis=0)
        return [(self.class_names[i], float(mean[i])) for i in np.argsort(-mean, kind="stable")[:k]]


def class_names_for(model: keras.Model, labels_path: str | None = None) -> tuple[str, ...]:
    """Class names from a one-per-line file, Kinetics-400's for 400 outputs, else indices."""
    classes = model.outputs[0].shape[-1]
    if labels_path:
        names = model_files.read_class_names(labels_path)
        if len(names) != classes:
            raise ValueError(
                f"{labels_path!r} lists {len(names)} classes, the model has {classes} outputs"
            )
        return names
    if classes == 400:
        return kinetics400_labels()
    return tuple(f"class_{i}" for i in range(classes))


def predict_video(
    model: keras.Model,
    path: str | os.PathLike,
    *,
    class_names,
    model_name: str | None = None,
    num_frames: int | None = None,
    size: int | None = None,
    stride: int | None = None,
    batch_size: int = 8,
) -> Timeline:
    """Slides a clip over the whole video and predicts each position.

    Args:
        model: a classifier taking `(batch, frames, height, width, 3)` clips.
        path: the video file.
        class_names: the name of each output.
        model_name: the registry key of its input convention (default: the model's own).
        num_frames: frames per clip; defaults to the model's input length.
        size: the crop side, the model's resize scaled with it; defaults to
            the model's own preprocessing (`kvid.preprocessing.preprocess_frames`,
            as its SavedModel export computes).
        stride: frames between clip starts; defaults to `num_frames // 2`.
        batch_size: clips per forward pass.
    """
    convention = model_files.model_convention(model, model_name)
    if size:
        convention = preprocessing.rescaled(convention, size)
    num_frames = num_frames or model.inputs[0].shape[1] or convention.num_frames
    stride = stride or max(num_frames // 2, 1)
    video = decode.read_video(path)
    length = len(video)
    starts = np.arange(0, max(length - num_frames, 0) + 1, stride)
    # A video shorter than a clip loops, as kvid.preprocessing's sampler does.
    indices = (starts[:, None] + np.arange(num_frames)[None, :]) % length
    probs = []
    for first in range(0, len(starts), batch_size):
        batch = preprocessing.preprocess_frames(
            video[indices[first : first + batch_size]], convention
        )
        probs.append(keras.ops.convert_to_numpy(model(batch, training=False)))
    return Timeline(starts=starts, probs=np.concatenate(probs), class_names=tuple(class_names))


def _draw_line(canvas, points, color, thickness=2):
    """Draws a polyline through `(x, y)` pixel points onto an RGB canvas."""
    height, width = canvas.shape[:2]
    if len(points) == 1:
        points = np.array([points[0] - [4, 0], points[0] + [4, 0]])
    for (x0, y0), (x1, y1) in zip(points[:-1], points[1:], strict=True):
        steps = int(max(abs(x1 - x0), abs(y1 - y0))) + 1
        xs = np.round(np.linspace(x0, x1, steps)).astype(int)
        ys = np.round(np.linspace(y0, y1, steps)).astype(int)
        for dy in range(-(thickness // 2), thickness - thickness // 2):
            for dx in range(-(thickness // 2), thickness - thickness // 2):
                canvas[np.clip(ys + dy, 0, height - 1), np.clip(xs + dx, 0, width - 1)] = color


def timeline_image(timeline: Timeline, k: int = 5, width: int = 640, height: int = 240):
    """The top-`k` classes' probability over time as an RGB uint8 plot (no text).

    Colours follow `PALETTE` in rank order; probability 0 is the bottom grid
    line and 1 the top one, with grid lines every 0.25.
    """
    margin = 12
    canvas = np.full((height, width, 3), 255, np.uint8)
    plot_h, plot_w = height - 2 * margin, width - 2 * margin
    for level in np.linspace(0, 1, 5):
        canvas[margin + int(round((1 - level) * plot_h)), margin : margin + plot_w + 1] = 210
    canvas[margin : margin + plot_h + 1, margin] = 150
    order = np.argsort(-timeline.probs.mean(axis=0), kind="stable")[:k]
    count = len(timeline.starts)
    xs = margin + (np.arange(count) / max(count - 1, 1)) * plot_w
    for rank, index in enumerate(order):
        ys = margin + (1 - timeline.probs[:, index]) * plot_h
        _draw_line(canvas, np.stack([xs, ys], axis=1), PALETTE[rank % len(PALETTE)][1])
    return canvas


def report(timeline: Timeline, k: int = 5) -> str:
    """Top-`k` labels of the video, then each clip's probabilities for them."""
    top = timeline.top(k)
    lines = ["top-5 for the whole video:"]
    lines += [f"  {rank + 1}. {name:<28} {p:.3f}" for rank, (name, p) in enumerate(top)]
    indices = [timeline.class_names.index(name) for name, _ in top]
    header = "".join(f"{PALETTE[r % len(PALETTE)][0]:>10}" for r in range(len(top)))
    lines.append(f"timeline (clip start frame; columns in the order above):\n{'frame':>7}{header}")
    for start, row in zip(timeline.starts, timeline.probs, strict=True):
        lines.append(f"{start:>7}" + "".join(f"{row[i]:>10.3f}" for i in indices))
    return "\n".join(lines)


def predict_file(
    video: str,
    model_path: str,
    *,
    labels_path: str | None = None,
    model_name: str | None = None,
    num_frames: int | None = None,
    size: int | None = None,
    stride: int | None = None,
    plot_path: str | None = None,
) -> str:
    """Predicts `video` with the `.keras` model at `model_path`; returns the printed report.

    Class names come from `labels_path`, else from `class_names.txt` next to
    the model (written by `train`). With `plot_path`, the timeline is also
    saved as a PNG.
    """
    model = model_files.load_model(model_path)
    if labels_path is None:
        folder = os.path.dirname(os.path.abspath(model_path))
        beside = os.path.join(folder, model_files.CLASS_NAMES_FILE)
        labels_path = beside if os.path.exists(beside) else None
    timeline = predict_video(
        model,
        video,
        class_names=class_names_for(model, labels_path),
        model_name=model_name,
        num_frames=num_frames,
        size=size,
        stride=stride,
    )
    text = report(timeline)
    if plot_path:
        tf.io.write_file(plot_path, tf.io.encode_png(timeline_image(timeline)))
        text += f"\ntimeline plot: {plot_path}"
    return text
