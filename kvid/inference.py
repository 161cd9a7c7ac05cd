"""Prediction timelines of whole videos, of any length, in bounded memory.

A video is decoded once, in order (`kvid.io.stream`); each frame a clip
needs goes through the one clip transform (`kvid.preprocessing.preprocess_frames`:
resize, centre crop, normalise, what the exported serving graph computes) as
it arrives, and waits in a window of one clip plus the stride. Clips are cut
from the window as it slides, batched, and classified while the next batch is
decoded in a background thread. Memory is a few batches of clips, whatever
the length or resolution of the video; the whole run takes about as long as
the slower of decoding and the model.
"""

from __future__ import annotations

import collections
import concurrent.futures
import csv
import dataclasses
import io
import json
import os
from collections.abc import Callable, Iterable, Iterator

import keras
import numpy as np
import tensorflow as tf

from kvid import plots
from kvid import preprocessing as preprocessing_lib
from kvid.io import atomic, stream
from kvid.io.class_names import class_names_beside, read_class_names
from kvid.io.progress import progress_bar
from kvid.models import class_names_for, load_model, model_convention

# Pixels resized in one call: one TF call per small frame costs more than its resize,
# and a 1080p frame (2.1 M pixels) is already 25 MB of float32 on the way through.
TRANSFORM_PIXELS = 1920 * 1080
TIMELINE_FORMATS = (".json", ".csv")


@dataclasses.dataclass(frozen=True)
class Timeline:
    """Class probabilities of consecutive clips of one video.

    Attributes:
        times: `float64 [clips]` the centre of each clip in seconds from the
            video's first frame (halfway between its first and last frames).
        probs: `(clips, classes)` probabilities.
        class_names: the name of each class.
        starts: `int64 [clips]` the first frame of each clip, counted in the
            frames the clips are cut from (at `fps` when resampled).
        duration: the video's length in seconds.
        fps: the rate of the frames `starts` counts (the resampling rate, or
            the video's own average rate).
        num_frames: frames per clip.
        stride: frames between clip starts.
        video: the video's path.
        threshold: a multi-label model's decision threshold: each clip's
            labels are the classes whose probability reaches it (`clip_labels`).
    """

    times: np.ndarray
    probs: np.ndarray
    class_names: tuple[str, ...]
    starts: np.ndarray
    duration: float = 0.0
    fps: float = 0.0
    num_frames: int = 0
    stride: int = 0
    video: str = ""
    threshold: float | None = None

    def clip_labels(self, threshold: float | None = None) -> list[list[tuple[str, float]]]:
        """A multi-label model's labels per clip: classes reaching `threshold`, best first.

        `threshold` defaults to the timeline's own.
        """
        threshold = self.threshold if threshold is None else threshold
        if threshold is None:
            raise ValueError("`clip_labels` needs a threshold; the timeline has none.")
        return [
            [(name, p) for name, p in clip if p >= threshold]
            for clip in self.clip_top(len(self.class_names))
        ]

    def top(self, k: int = 5) -> list[tuple[str, float]]:
        """The `k` best classes of the whole video (mean over its clips), best first."""
        mean = self.probs.mean(axis=0)
        return [(self.class_names[i], float(mean[i])) for i in np.argsort(-mean, kind="stable")[:k]]

    def clip_top(self, k: int = 5) -> list[list[tuple[str, float]]]:
        """The `k` best classes of each clip, best first."""
        order = np.argsort(-self.probs, axis=1, kind="stable")[:, :k]
        return [
            [(self.class_names[i], float(row[i])) for i in best]
            for row, best in zip(self.probs, order, strict=True)
        ]

    def to_json(self, k: int = 5) -> str:
        """The timeline as JSON: the video's top-`k`, then each clip's time and top-`k`."""
        data = {
            "video": self.video,
            **({} if self.threshold is None else {"threshold": self.threshold}),
            "duration": self.duration,
            "fps": self.fps,
            "num_frames": self.num_frames,
            "stride": self.stride,
            "top": [{"class": name, "probability": p} for name, p in self.top(k)],
            "clips": [
                {
                    "time": float(t),
                    "start_frame": int(start),
                    "top": [{"class": name, "probability": p} for name, p in best],
                }
                for t, start, best in zip(self.times, self.starts, self.clip_top(k), strict=True)
            ],
        }
        if self.threshold is not None:
            for clip, labels in zip(data["clips"], self.clip_labels(), strict=True):
                clip["labels"] = [{"class": name, "probability": p} for name, p in labels]
        return json.dumps(data, indent=1)

    def to_csv(self, k: int = 5) -> str:
        """The timeline as CSV: one row per clip, `time,start_frame,class_1,probability_1,...`."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        ranks = range(1, min(k, len(self.class_names)) + 1)
        labelled = self.threshold is not None
        writer.writerow(
            ["time", "start_frame", *(f"{c}_{r}" for r in ranks for c in ("class", "probability"))]
            + (["labels"] if labelled else [])
        )
        labels = self.clip_labels() if labelled else [None] * len(self.times)
        rows = zip(self.times, self.starts, self.clip_top(k), labels, strict=True)
        for t, start, best, above in rows:
            cells = [value for name, p in best for value in (name, f"{p:.6f}")]
            extra = [";".join(name for name, _ in above)] if labelled else []
            writer.writerow([f"{t:.3f}", int(start), *cells, *extra])
        return out.getvalue()

    def save(self, path: str | os.PathLike, k: int = 5) -> str:
        """Writes the timeline as JSON or CSV (by the extension); returns the path.

        The file is written under a temporary name and renamed when complete.
        """
        path = os.fspath(path)
        extension = os.path.splitext(path)[1].lower()
        if extension not in TIMELINE_FORMATS:
            raise ValueError(
                f"A timeline is saved as {' or '.join(TIMELINE_FORMATS)}. Received: path={path!r}"
            )
        text = self.to_json(k) if extension == ".json" else self.to_csv(k)
        with atomic.atomic_file(path) as f:
            f.write(text)
        return path


@dataclasses.dataclass(frozen=True)
class ClipBatch:
    """Clips cut from a video stream, ready for the model.

    Attributes:
        clips: float32 `[batch, num_frames, height, width, 3]`, the model's input.
        starts: `int64 [batch]` first frame of each clip.
        times: `float64 [batch]` centre of each clip in seconds.
        frames_read: frames read from the stream when the batch was complete.
        seconds_read: the time of the last of those frames.
    """

    clips: np.ndarray
    starts: np.ndarray
    times: np.ndarray
    frames_read: int
    seconds_read: float


def _needed_chunks(timed_frames, num_frames: int, stride: int, seen: list):
    """Groups the frames some clip needs into `(times, uint8 frames)` chunks.

    Clips start every `stride` frames, so frame `i` is in a clip unless the
    stride is longer than a clip and `i % stride >= num_frames`. `seen` gets
    `[frames read, time of the last]` as the stream is read.
    """
    times, frames = [], []
    for index, (seconds, frame) in enumerate(timed_frames):
        seen[:] = [index + 1, seconds]
        if stride > num_frames and index % stride >= num_frames:
            continue  # between clips: never transformed
        times.append(seconds)
        frames.append(frame)
        if len(frames) * frame.shape[0] * frame.shape[1] >= TRANSFORM_PIXELS:
            yield times, np.stack(frames)
            times, frames = [], []
    if frames:
        yield times, np.stack(frames)


def _ordered_map(function, items: Iterable, workers: int) -> Iterator:
    """`map(function, items)` on `workers` threads, in order, at most `workers` items ahead."""
    if workers <= 1:
        yield from map(function, items)
        return
    with concurrent.futures.ThreadPoolExecutor(workers, "kvid-transform") as pool:
        running: collections.deque = collections.deque()
        for item in items:
            running.append(pool.submit(function, item))
            if len(running) >= workers:
                yield running.popleft().result()
        while running:
            yield running.popleft().result()


def sliding_clips(
    timed_frames: Iterable[tuple[float, np.ndarray]],
    transform: Callable[[np.ndarray], np.ndarray],
    *,
    num_frames: int,
    stride: int,
    batch_size: int,
    workers: int = 1,
) -> Iterator[ClipBatch]:
    """Cuts clips starting every `stride` frames from a stream of frames, in batches.

    Each frame a clip needs is transformed once, up to `TRANSFORM_PIXELS`
    at a time on `workers` threads, and kept until the last clip that needs it is cut;
    frames between clips (a stride longer than a clip) are never transformed.
    Clips start at `0, stride, 2 * stride, ...` while a whole clip fits; a
    video shorter than one clip gives one clip, the one evaluation samples
    (`kvid.preprocessing.consecutive_indices`: the video looped), centred
    halfway between its first and last frames.

    Args:
        timed_frames: `(seconds, uint8 [H, W, 3] frame)` pairs in order.
        transform: uint8 `[n, H, W, 3]` frames to float `[n, h, w, 3]` model input.
        num_frames: frames per clip.
        stride: frames between clip starts.
        batch_size: clips per batch.
        workers: threads transforming frames (the transform releases the GIL).

    Yields:
        `ClipBatch`es; the last one may be smaller.
    """
    if num_frames < 1 or stride < 1 or batch_size < 1:
        raise ValueError(
            "`num_frames`, `stride` and `batch_size` must be positive. Received: "
            f"num_frames={num_frames}, stride={stride}, batch_size={batch_size}"
        )
    seen = [0, 0.0]  # frames read, time of the last one
    chunks = _ordered_map(
        lambda chunk: (chunk[0], np.asarray(transform(chunk[1]))),
        _needed_chunks(timed_frames, num_frames, stride, seen),
        workers,
    )
    window: collections.deque = collections.deque()  # (time, frame) from the next clip's start
    batch: list[tuple[np.ndarray, int, float]] = []
    next_start = 0  # first frame of the next clip

    def cut(start):
        clip = np.stack([window[i][1] for i in range(num_frames)])
        centre = (window[0][0] + window[num_frames - 1][0]) / 2
        batch.append((clip, start, centre))

    def emit():
        clips, starts, centres = zip(*batch, strict=True)
        batch.clear()
        return ClipBatch(
            np.stack(clips),
            np.asarray(starts, np.int64),
            np.asarray(centres, np.float64),
            *seen,
        )

    for times, frames in chunks:
        window.extend(zip(times, frames, strict=True))
        while len(window) >= num_frames:
            # A full batch waits for the next clip, so the last batch reports the whole video.
            if len(batch) == batch_size:
                yield emit()
            cut(next_start)
            next_start += stride
            # Frames between clips never entered the window: drop at most this clip's.
            for _ in range(min(stride, num_frames)):
                window.popleft()
    if not seen[0]:
        raise ValueError("The video has no frame.")
    if next_start == 0:
        # Shorter than a clip: the evaluation samplers' clip of the video, which loops it.
        frames = list(window)
        indices = preprocessing_lib.consecutive_indices(len(frames), num_frames).numpy()
        clip = np.stack([frames[i][1] for i in indices])
        batch.append((clip, 0, (frames[0][0] + frames[-1][0]) / 2))
    if batch:
        yield emit()


def _forward(model: keras.Model):
    """The model's inference call: a traced function on TensorFlow, the plain call elsewhere."""
    if keras.backend.backend() == "tensorflow":
        call = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
        return lambda x: call(tf.convert_to_tensor(x)).numpy()
    return lambda x: keras.ops.convert_to_numpy(model(x, training=False))


def predict_video(
    model: keras.Model,
    path: str | os.PathLike,
    *,
    class_names,
    model_name: str | None = None,
    num_frames: int | None = None,
    size: int | None = None,
    stride: int | None = None,
    stride_seconds: float | None = None,
    fps: float | None = None,
    batch_size: int = 8,
    transform_threads: int = 2,
    progress: bool = False,
    threshold: float | None = None,
) -> Timeline:
    """Slides a clip over the whole video and predicts each position.

    Frames are transformed by `kvid.preprocessing.preprocess_frames` with the
    convention `kvid.models.model_convention(model, model_name, ...)` gives:
    the clips the exported serving graph would make from the same frames.

    Args:
        model: a classifier taking `(batch, frames, height, width, 3)` clips.
        path: the video file (or frame folder).
        class_names: the name of each output.
        model_name: the registry key whose convention to use instead of the one the
            model records (`kvid.models.model_convention` decides, as for
            every path).
        num_frames: frames per clip; defaults to the model's input length,
            else its convention's.
        size: the crop side; defaults to the model's input size, else its
            convention's (the resize scales with it).
        stride: frames between clip starts; defaults to `num_frames // 2`.
        stride_seconds: seconds between clip starts instead of `stride`
            (rounded to frames at `fps`, or at the video's nominal rate).
        fps: resample the video to this frame rate first; `None` keeps its frames.
        batch_size: clips per forward pass.
        transform_threads: threads resizing frames while others decode and
            the model runs (a 1080p frame costs ~30 ms of CPU to resize,
            several times its decoding).
        progress: show a progress bar on stderr (`kvid.io.progress`), in frames
            read, advancing with each batch of clips.
        threshold: a multi-label model's decision threshold, kept in the
            timeline (its `clip_labels`, saved files and plot).

    Returns:
        A `Timeline`.

    Example:
        >>> model = kvid.R3D18(alpha=1 / 16, input_shape=(8, 32, 32, 3), classes=2)
        >>> video = kvid.io.write_video("match.mp4", np.zeros((90, 48, 64, 3), np.uint8), fps=30)
        >>> timeline = kvid.inference.predict_video(model, video, class_names=["goal", "play"],
        ...                                         stride_seconds=1.0, fps=15)
        >>> timeline.starts, timeline.probs.shape
        (array([ 0, 15, 30]), (3, 2))
        >>> timeline.save("match.json")
        'match.json'
    """
    path = os.fspath(path)
    convention = model_convention(model, model_name, num_frames=num_frames, size=size)
    num_frames = convention.num_frames
    header = stream.stream_info(path)
    rate = float(fps) if fps else header.nominal_fps
    if stride is not None and stride_seconds is not None:
        raise ValueError(
            "Pass `stride` (frames) or `stride_seconds`, not both. "
            f"Received: stride={stride}, stride_seconds={stride_seconds}"
        )
    if stride_seconds is not None:
        if stride_seconds <= 0:
            raise ValueError(f"`stride_seconds` must be positive. Received: {stride_seconds}")
        stride = max(round(stride_seconds * rate), 1)
    stride = stride or max(num_frames // 2, 1)

    def transform(frames):
        return preprocessing_lib.preprocess_frames(frames, convention).numpy()

    batches = sliding_clips(
        stream.iter_timed_frames(path, fps),
        transform,
        num_frames=num_frames,
        stride=stride,
        batch_size=batch_size,
        workers=transform_threads,
    )
    forward = _forward(model)
    # The frames the headers declare (at `fps`, those the resampling will give): an estimate
    # for the bar's length, which ends at the frames actually read.
    expected = round(header.duration * rate) if fps else header.num_frames
    length = f" ({header.duration:.1f} s of video)" if header.duration > 0 else ""
    title = f"Predicting {os.path.basename(path)}{length}"
    bar = progress_bar(expected or None, "frame", enabled=progress, title=title)
    starts, centres, probs = [], [], []
    seconds_read = 0.0
    for batch in stream.prefetch(batches, depth=1):
        probs.append(forward(batch.clips))
        starts.append(batch.starts)
        centres.append(batch.times)
        seconds_read = batch.seconds_read
        bar.update(batch.frames_read)
    bar.finish()
    return Timeline(
        times=np.concatenate(centres),
        probs=np.concatenate(probs),
        class_names=tuple(class_names),
        starts=np.concatenate(starts),
        duration=header.duration or seconds_read,
        fps=rate,
        num_frames=num_frames,
        stride=stride,
        video=path,
        threshold=threshold,
    )


def report(timeline: Timeline, k: int = 5) -> str:
    """Top-`k` labels of the video, then each clip's probabilities for them."""
    top = timeline.top(k)
    lines = [f"top-{k} for the whole video:"]
    lines += [f"  {rank + 1}. {name:<28} {p:.3f}" for rank, (name, p) in enumerate(top)]
    indices = [timeline.class_names.index(name) for name, _ in top]
    # Columns are named by the colour of their line in the plot.
    colors = [plots.TIMELINE_COLORS[r % len(plots.TIMELINE_COLORS)] for r in range(len(top))]
    header = "".join(f"{color.removeprefix('tab:'):>10}" for color in colors)
    lines.append(
        "timeline (clip start frame, clip centre in seconds; columns in the order above):\n"
        f"{'frame':>7}{'time':>9}{header}"
    )
    for start, t, row in zip(timeline.starts, timeline.times, timeline.probs, strict=True):
        lines.append(f"{start:>7}{t:>9.2f}" + "".join(f"{row[i]:>10.3f}" for i in indices))
    if timeline.threshold is not None:
        lines.append(f"labels of each clip (probability >= {timeline.threshold:g}):")
        for start, labels in zip(timeline.starts, timeline.clip_labels(), strict=True):
            lines.append(f"{start:>7}  " + (", ".join(name for name, _ in labels) or "-"))
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
    stride_seconds: float | None = None,
    fps: float | None = None,
    batch_size: int = 8,
    output_path: str | None = None,
    plot_path: str | None = None,
    plot_thumbnails: bool = True,
    progress: bool = True,
    threshold: float | None = None,
) -> str:
    """Predicts `video` with the `.keras` model at `model_path`; returns the printed report.

    Class names come from `labels_path`, else from `class_names.txt` next to
    the model (written by `train`). With `output_path` (`.json` or `.csv`),
    the timeline is also saved there; with `plot_path`, plotted as a PNG
    (with a strip of the video's frames under the time axis unless
    `plot_thumbnails` is False). `threshold` (a multi-label model's) adds
    each clip's labels to the report and files, and its line to the plot.
    """
    if output_path and os.path.splitext(output_path)[1].lower() not in TIMELINE_FORMATS:
        raise ValueError(
            f"A timeline is saved as {' or '.join(TIMELINE_FORMATS)}. "
            f"Received: output_path={output_path!r}"
        )
    model = load_model(model_path)
    names = read_class_names(labels_path) if labels_path else class_names_beside(model_path)
    timeline = predict_video(
        model,
        video,
        class_names=class_names_for(model.outputs[0].shape[-1], names),
        model_name=model_name,
        num_frames=num_frames,
        size=size,
        stride=stride,
        stride_seconds=stride_seconds,
        fps=fps,
        batch_size=batch_size,
        progress=progress,
        threshold=threshold,
    )
    text = report(timeline)
    if output_path:
        text += f"\ntimeline: {timeline.save(output_path)}"
    if plot_path:
        figure = plots.timeline_figure(
            timeline.times,
            timeline.probs,
            timeline.class_names,
            title=f"{os.path.basename(video)}: {model.name} ({model_path})",
            duration=timeline.duration,
            thumbnails=plots.video_thumbnails(video)[0] if plot_thumbnails else None,
            threshold=threshold,
        )
        text += f"\ntimeline plot: {plots.save_figure(figure, plot_path)}"
    return text
