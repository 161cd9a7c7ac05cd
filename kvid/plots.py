"""Labelled pictures of a prediction timeline, a training run and an evaluation.

Each `*_figure` function returns a `matplotlib.figure.Figure` (titles, axis
labels and legends can be read from it before it is saved); `save_figure`
writes one as a PNG. Figures are drawn with matplotlib's Agg canvas directly,
without `pyplot`: nothing needs a display, and the caller's pyplot state and
backend are left alone.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from kvid import preprocessing
from kvid.io import atomic, decode
from kvid.training import callbacks as callbacks_lib

CURVES_FILE = "curves.png"
DPI = 100
# Timeline colours in rank order; the first five are the ones kvid-predict's text
# report names its columns by.
TIMELINE_COLORS = (
    "tab:red",
    "tab:blue",
    "tab:green",
    "tab:orange",
    "tab:purple",
    "tab:brown",
    "tab:pink",
    "tab:gray",
    "tab:olive",
    "tab:cyan",
)
# Per-cell percentages stop being readable beyond this many classes.
MAX_ANNOTATED_CLASSES = 20


def _figure(width: float, height: float, **kwargs) -> Figure:
    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained", **kwargs)
    FigureCanvasAgg(figure)
    return figure


def save_figure(figure: Figure, path: str | os.PathLike) -> str:
    """Writes `figure` as a PNG of its own size (inches x 100 dpi); returns the path.

    The file is written under a temporary name and renamed when complete
    (`kvid.io.atomic`), so a reader never sees half a picture.
    """
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with atomic.atomic_file(path, "wb") as f:
        # No "Software" stamp: the same figure gives the same bytes.
        figure.savefig(f, format="png", dpi=DPI, metadata={"Software": None})
    return path


def video_thumbnails(
    path: str | os.PathLike, count: int = 8, max_height: int = 128
) -> tuple[np.ndarray, float]:
    """`count` frames at the centres of equal stretches of a video, and its duration.

    Each frame is decoded on its own (a seek to the keyframe before it), so a
    long video is not decoded whole, and is resized to at most `max_height` rows.

    Returns:
        `(uint8 [count, height, width, 3] frames, duration in seconds)`.
    """
    if count < 1:
        raise ValueError(f"`count` must be at least 1. Received: count={count}")
    info = decode.probe(os.fspath(path))
    centres = (np.arange(count) + 0.5) * info.duration / count
    indices = np.searchsorted(info.times, centres + 1e-6, side="right") - 1
    frames = decode.decode_frames(info, np.clip(indices, 0, info.num_frames - 1))
    height, width = frames.shape[1:3]
    if height > max_height:
        size = (max_height, max(1, round(width * max_height / height)))
        frames = np.asarray(preprocessing.resize_to(frames, size)).round().astype(np.uint8)
    return frames, info.duration


def timeline_figure(
    times: Sequence[float],
    probs,
    class_names: Sequence[str],
    *,
    k: int = 5,
    title: str | None = None,
    duration: float | None = None,
    thumbnails=None,
    threshold: float | None = None,
) -> Figure:
    """The top-`k` classes' probability over a video, one line per class.

    Classes are ranked by their mean probability over the clips (the video's
    prediction); the legend lists them in that order with that mean. With a
    multi-label `threshold`, every class reaching it in some clip is drawn
    too (several labels at once) and the threshold is a dashed line.

    Args:
        times: the centre of each clip, in seconds from the video's start.
        probs: `(clips, classes)` probabilities.
        class_names: the name of each class.
        k: how many classes to draw.
        title: the figure's title, e.g. the video and the model.
        duration: the video's length in seconds (the time axis' end);
            defaults to just past the last clip centre.
        thumbnails: optional `uint8 [n, height, width, 3]` frames taken at the
            centres of `n` equal stretches of `[0, duration]`, drawn as a
            strip under the time axis (see `video_thumbnails`).
        threshold: a multi-label model's decision threshold.

    Returns:
        The figure, 9 inches wide (900 pixels when saved).
    """
    times = np.asarray(times, np.float64).reshape([-1])
    probs = np.asarray(probs, np.float64)
    if probs.ndim != 2 or len(probs) != len(times) or probs.shape[1] != len(class_names):
        raise ValueError(
            f"`probs` must be (clips, classes) = ({len(times)}, {len(class_names)}). "
            f"Received: probs.shape={probs.shape}"
        )
    if len(times) == 0:
        raise ValueError("The timeline has no clip.")
    end = float(duration) if duration else float(times[-1]) + max(float(times[0]), 1e-3)
    mean = probs.mean(axis=0)
    order = np.argsort(-mean, kind="stable")
    if threshold is None:
        order = order[:k]
    else:
        reached = probs.max(axis=0) >= threshold
        order = order[(np.arange(len(order)) < k) | reached[order]]

    strip_height = 0.0
    if thumbnails is not None:
        thumbnails = np.asarray(thumbnails)
        _, height, width, _ = thumbnails.shape
        # The plot is about 6 of the figure's 9 inches wide (the legend takes the rest).
        strip_height = min(6.0 / len(thumbnails) * height / width, 1.5)
    figure = _figure(9.0, 3.6 + strip_height)
    if thumbnails is None:
        axes = figure.add_subplot()
    else:
        grid = figure.add_gridspec(2, 1, height_ratios=[3.0, strip_height])
        axes = figure.add_subplot(grid[0])
        strip = figure.add_subplot(grid[1], sharex=axes)

    marker = "o" if len(times) <= 60 else None
    for rank, index in enumerate(order):
        axes.plot(
            times,
            probs[:, index],
            color=TIMELINE_COLORS[rank % len(TIMELINE_COLORS)],
            marker=marker,
            markersize=3,
            linewidth=1.8,
            label=f"{class_names[index]} ({mean[index]:.2f})",
        )
    if threshold is not None:
        axes.axhline(
            threshold, color="0.4", linestyle="--", linewidth=1, label=f"threshold {threshold:g}"
        )
    axes.set_xlim(0.0, end)
    axes.set_ylim(0.0, 1.02)
    axes.set_ylabel("probability")
    axes.grid(True, alpha=0.3)
    axes.legend(
        title=f"top {len(order)} (mean)" if threshold is None else f"{len(order)} classes (mean)",
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        fontsize="small",
        title_fontsize="small",
    )
    xlabel = "time in the video (s), at each clip's centre"
    if thumbnails is None:
        axes.set_xlabel(xlabel)
    else:
        axes.tick_params(labelbottom=False)
        # Images are drawn with aspect "auto" over the time axis; their pixels
        # stay about square because the strip's height follows the frames' aspect.
        step = end / len(thumbnails)
        for i, frame in enumerate(thumbnails):
            strip.imshow(frame, extent=(i * step, (i + 1) * step, 0, 1), aspect="auto")
        strip.set_xlim(0.0, end)
        strip.set_ylim(0, 1)
        strip.set_yticks([])
        strip.set_xlabel(xlabel)
    if title:
        figure.suptitle(title, wrap=True)
    return figure


def read_training_log(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The columns of a training log (`EpochLog`, Keras' `CSVLogger`), for its latest run.

    Read by `kvid.training.callbacks.read_log`: a torn last line is left out.

    The log is appended to: a resumed run continues its epochs, but a run
    started afresh in the same folder starts again at epoch 0. Only the rows
    from the last epoch-0 row on are kept, and of an epoch logged twice, the
    later row.

    Returns:
        `{column: float64 array}` with the rows in epoch order.

    Raises:
        ValueError: if the file holds no epoch.
    """
    header, cells = callbacks_lib.read_log(path)
    rows = [dict(zip(header, row, strict=True)) for row in cells]
    if not rows:
        raise ValueError(f"The training log holds no epoch. Received: path={os.fspath(path)!r}")
    starts = [i for i, row in enumerate(rows) if int(row["epoch"]) == 0]
    latest = {int(row["epoch"]): row for row in rows[starts[-1] if starts else 0 :]}
    epochs = sorted(latest)
    columns = {}
    for name in rows[0]:
        values = [latest[e].get(name) for e in epochs]
        columns[name] = np.array([_number(v) for v in values])
    return columns


def _number(cell: str | None) -> float:
    """A CSV cell as a float; empty or "NA" (a metric missing that epoch) is NaN."""
    try:
        return float(cell)
    except (TypeError, ValueError):
        return float("nan")


def training_curves_figure(
    history: Mapping[str, Sequence[float]], *, title: str | None = None
) -> Figure:
    """Loss and accuracy (a multi-label run's: PR-AUC) per epoch, for training and validation.

    Args:
        history: per-epoch values under Keras' names (`loss`, `val_loss`,
            `accuracy`, `val_accuracy`, or a multi-label run's `pr_auc`,
            `val_pr_auc`; an optional `epoch` column counts from 0), e.g. from
            `read_training_log` or `History.history`.
        title: the figure's title.

    Returns:
        The figure (1000 x 400 pixels when saved); the best validation epoch
        is marked on both panels.
    """
    count = len(history["loss"])
    epochs = np.asarray(history.get("epoch", np.arange(count)), np.float64) + 1
    figure = _figure(10.0, 4.0)
    loss_axes, accuracy_axes = figure.subplots(1, 2)
    best = None
    score, score_label = "accuracy", "top-1 accuracy"
    if "pr_auc" in history or "val_pr_auc" in history:
        score, score_label = "pr_auc", "area under the precision-recall curves"
    if f"val_{score}" in history and np.isfinite(history[f"val_{score}"]).any():
        best = int(np.nanargmax(history[f"val_{score}"]))
    panels = (
        (loss_axes, "loss", "cross-entropy (log scale)"),
        (accuracy_axes, score, score_label),
    )
    for axes, metric, ylabel in panels:
        for key, label in ((metric, "training"), (f"val_{metric}", "validation")):
            if key in history:
                axes.plot(epochs, history[key], marker="o", markersize=4, label=label)
        if best is not None:
            axes.axvline(epochs[best], color="gray", linestyle=":", linewidth=1)
        axes.set_xlabel("epoch")
        axes.set_ylabel(ylabel)
        axes.set_title(metric)
        axes.grid(True, alpha=0.3)
        # Epochs are whole numbers; let matplotlib pick how many to show.
        axes.xaxis.get_major_locator().set_params(integer=True)
    # A first epoch's validation loss can be 10x the rest (BatchNorm statistics
    # not settled yet); a log scale keeps the later epochs readable.
    loss_axes.set_yscale("log")
    accuracy_axes.set_ylim(0.0, 1.02)
    if best is not None:
        value = history[f"val_{score}"][best]
        label = f"best validation: {value:.3f} (epoch {epochs[best]:.0f})"
        accuracy_axes.plot([], [], color="gray", linestyle=":", label=label)
    loss_axes.legend()
    accuracy_axes.legend(loc="lower right")
    if title:
        figure.suptitle(title, wrap=True)
    return figure


def write_training_curves(work_dir: str | os.PathLike) -> str:
    """Draws `work_dir/curves.png` from the run's CSV log (all its epochs, resumed or not).

    Returns:
        The path of the PNG.
    """
    work_dir = os.fspath(work_dir)
    history = read_training_log(os.path.join(work_dir, callbacks_lib.TRAINING_LOG))
    title = f"Training curves of {work_dir}"
    return save_figure(
        training_curves_figure(history, title=title), os.path.join(work_dir, CURVES_FILE)
    )


def confusion_figure(confusion, class_names: Sequence[str], *, title: str | None = None) -> Figure:
    """The confusion matrix normalised per true class, and each class's accuracy.

    Args:
        confusion: `(classes, classes)` counts, `confusion[true, predicted]`.
        class_names: the name of each class.
        title: the figure's title.

    Returns:
        The figure: the matrix (true class down, predicted class across, each
        row summing to 1) beside a bar per class of its accuracy (the matrix'
        diagonal), with the counts.
    """
    confusion = np.asarray(confusion, np.float64)
    classes = len(class_names)
    if confusion.shape != (classes, classes):
        raise ValueError(
            f"`confusion` must be ({classes}, {classes}) for {classes} class names. "
            f"Received: confusion.shape={confusion.shape}"
        )
    totals = confusion.sum(axis=1)
    rates = np.divide(
        confusion, totals[:, None], out=np.zeros_like(confusion), where=totals[:, None] > 0
    )
    # About 0.45 inch a class (square cells), plus room for the names.
    side = min(0.45 * max(classes, 6), 36.0)
    figure = _figure(side + 5.5, side + 1.8)
    matrix_axes, bar_axes = figure.subplots(
        1, 2, gridspec_kw={"width_ratios": [side, 2.2]}, sharey=True
    )
    image = matrix_axes.imshow(rates, cmap="Blues", vmin=0.0, vmax=1.0, aspect="auto")
    ticks = np.arange(classes)
    matrix_axes.set_xticks(ticks, class_names, rotation=45, ha="right", rotation_mode="anchor")
    matrix_axes.set_yticks(ticks, class_names)
    matrix_axes.set_xlabel("predicted class")
    matrix_axes.set_ylabel("true class")
    matrix_axes.set_title("confusion (each row sums to 1)")
    if classes <= MAX_ANNOTATED_CLASSES:
        for (true, predicted), rate in np.ndenumerate(rates):
            if confusion[true, predicted]:
                color = "white" if rate > 0.5 else "black"
                matrix_axes.text(
                    predicted,
                    true,
                    f"{rate:.2f}",
                    ha="center",
                    va="center",
                    color=color,
                    fontsize="small",
                )
    figure.colorbar(image, ax=matrix_axes, fraction=0.046, pad=0.02, label="fraction of the row")

    accuracy = np.diagonal(rates)
    bar_axes.barh(ticks, accuracy, color="#9ecae1")
    for row in range(classes):
        if totals[row]:
            text = f"{accuracy[row]:.2f} ({int(confusion[row, row])}/{int(totals[row])})"
        else:
            text = "no video"
        bar_axes.text(0.03, row, text, va="center", fontsize="small", color="black")
    bar_axes.set_xlim(0.0, 1.1)
    bar_axes.set_xticks([0.0, 0.5, 1.0])
    bar_axes.set_xlabel("accuracy")
    bar_axes.set_title("per class")
    bar_axes.tick_params(labelleft=False)
    bar_axes.grid(True, axis="x", alpha=0.3)
    if title:
        figure.suptitle(title, wrap=True)
    return figure


def average_precision_figure(
    per_class_ap, class_names: Sequence[str], positives=None, *, title: str | None = None
) -> Figure:
    """A bar per class of its average precision (a multi-label evaluation), the mAP marked.

    Args:
        per_class_ap: `[classes]` APs, NaN for a class without a positive video.
        class_names: the name of each class.
        positives: optional `[classes]` positive videos per class, written by each bar.
        title: the figure's title.

    Returns:
        The figure: classes down, AP across, a dashed line at the mean of the
        classes that have an AP.
    """
    per_class_ap = np.asarray(per_class_ap, np.float64)
    classes = len(class_names)
    if per_class_ap.shape != (classes,):
        raise ValueError(
            f"`per_class_ap` must be ({classes},) for {classes} class names. "
            f"Received: per_class_ap.shape={per_class_ap.shape}"
        )
    figure = _figure(7.0, min(0.3 * max(classes, 6), 48.0) + 1.5)
    axes = figure.add_subplot()
    ticks = np.arange(classes)
    axes.barh(ticks, np.nan_to_num(per_class_ap), color="#9ecae1")
    for row, ap in enumerate(per_class_ap):
        text = "no positive video" if np.isnan(ap) else f"{ap:.2f}"
        if positives is not None and not np.isnan(ap):
            text += f" ({int(positives[row])})"
        axes.text(0.02, row, text, va="center", fontsize="small")
    mean = float(np.nanmean(per_class_ap)) if np.isfinite(per_class_ap).any() else 0.0
    axes.axvline(mean, color="0.3", linestyle="--", linewidth=1, label=f"mAP {mean:.3f}")
    axes.set_yticks(ticks, class_names)
    axes.invert_yaxis()
    axes.set_xlim(0.0, 1.05)
    axes.set_xlabel("average precision over the videos")
    axes.grid(True, axis="x", alpha=0.3)
    axes.legend(loc="lower right", fontsize="small")
    if title:
        figure.suptitle(title, wrap=True)
    return figure


def plan_figure(plan) -> Figure:
    """Draws the explored graph: each transition's held-out accuracy, the chosen path in red.

    One panel per sampling strategy; clip length grows to the right, the
    learning rate falls downwards (as in the paper's figures 4-5).

    Args:
        plan: a `kvid.planning.plan.Plan`.
    """
    graph = plan.graph
    samplings = list(dict.fromkeys(s.sampling for s in graph.states))
    chosen = {(t.source, t.target) for t in plan.path}
    figure = _figure(5.5 * len(samplings) + 0.6, 1.6 * len(graph.learning_rates) + 1.2)
    axes = figure.subplots(1, len(samplings), squeeze=False)[0]

    def position(state):
        return graph.clip_lengths.index(state.num_frames), -graph.learning_rates.index(
            state.learning_rate
        )

    for ax, sampling in zip(axes, samplings, strict=True):
        for t in plan.transitions:
            if t.target.sampling != sampling:
                continue
            on_path = (t.source, t.target) in chosen
            colour, width = ("tab:red", 2.5) if on_path else ("0.55", 1.0)
            end = position(t.target)
            label = f"{t.accuracy:.3f} ({t.epochs} ep)"
            if t.source is None:
                ax.annotate(
                    label,
                    end,
                    (0, 14),
                    textcoords="offset points",
                    ha="center",
                    color=colour,
                    fontsize=8,
                )
                continue
            start = position(t.source)
            ax.annotate(
                "",
                end,
                start,
                arrowprops={
                    "arrowstyle": "->",
                    "color": colour,
                    "lw": width,
                    "shrinkA": 14,
                    "shrinkB": 14,
                },
            )
            # Labels of the three kinds of edge sit apart: above, left of, or along the arrow.
            dx, dy = end[0] - start[0], end[1] - start[1]
            along = 0.5 if not (dx and dy) else 0.7
            offset = (0, 6) if not dy else (-6, 0) if not dx else (8, 0)
            ax.annotate(
                label,
                (start[0] + along * dx, start[1] + along * dy),
                offset,
                textcoords="offset points",
                ha="center" if not dy else "right" if not dx else "left",
                va="bottom" if not dy else "center",
                color=colour,
                fontsize=8,
            )
        states = [s for s in graph.states if s.sampling == sampling]
        xs, ys = zip(*(position(s) for s in states), strict=True)
        ax.scatter(xs, ys, s=500, c="white", edgecolors="black", zorder=3)
        ax.set_xticks(range(len(graph.clip_lengths)), [f"{n} frames" for n in graph.clip_lengths])
        ax.set_yticks(
            [-j for j in range(len(graph.learning_rates))],
            [f"lr {r:g}" for r in graph.learning_rates],
        )
        ax.set_xlim(-0.5, len(graph.clip_lengths) - 0.5)
        ax.set_ylim(-len(graph.learning_rates) + 0.5, 0.7)
        ax.set_title(f"{sampling} sampling")
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    figure.suptitle(
        f"Optimization plan: held-out accuracy {plan.accuracy:.3f} "
        f"in {sum(t.epochs for t in plan.path)} epochs (chosen path in red)"
    )
    return figure
