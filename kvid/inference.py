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
from collections.abc import Callable, Iterable, Iterator, Sequence

import keras
import numpy as np
import tensorflow as tf

from kvid import plots
from kvid import preprocessing as preprocessing_lib
from kvid.io import atomic, stream
from kvid.io.class_names import class_names_beside, read_class_names
from kvid.io.decode import VideoDecodeError
from kvid.io.progress import progress_bar
from kvid.models import class_names_for, load_model, model_convention

# Pixels resized in one call: one TF call per small frame costs more than its resize,
# and a 1080p frame (2.1 M pixels) is already 25 MB of float32 on the way through.
TRANSFORM_PIXELS = 1920 * 1080
TIMELINE_FORMATS = (".json", ".csv")
CORPUS_FORMATS = (".jsonl", ".csv")


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

    def _clip_records(self, k: int) -> list[dict]:
        return [
            {
                "time": float(t),
                "start_frame": int(start),
                "top": [{"class": name, "probability": p} for name, p in best],
            }
            for t, start, best in zip(self.times, self.starts, self.clip_top(k), strict=True)
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
            "clips": self._clip_records(k),
        }
        if self.threshold is not None:
            for clip, labels in zip(data["clips"], self.clip_labels(), strict=True):
                clip["labels"] = [{"class": name, "probability": p} for name, p in labels]
        return json.dumps(data, indent=1)

    def record(self, k: int = 5, clips: bool = False) -> dict:
        """The video's prediction as one JSON-ready record (a line of a corpus' predictions).

        Args:
            k: how many best classes to list.
            clips: also list each clip's time and top-`k` (as `to_json` does).

        Returns:
            `{"video", "top", "probabilities"}` (the mean over the clips, one per
            class), plus `"clips"` when asked.
        """
        data = {
            "video": self.video,
            "top": [{"class": name, "probability": p} for name, p in self.top(k)],
            "probabilities": [float(p) for p in self.probs.mean(axis=0)],
        }
        if clips:
            data["clips"] = self._clip_records(k)
        return data

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


def _needed_chunks(timed_frames, num_frames: int, stride: int, seen: list, live: bool = False):
    """Groups the frames some clip needs into `(times, uint8 frames)` chunks.

    Clips start every `stride` frames, so frame `i` is in a clip unless the
    stride is longer than a clip and `i % stride >= num_frames`. `seen` gets
    `[frames read, time of the last]` as the stream is read. A `live` chunk
    is one frame, transformed as it arrives: a clip is ready when its last
    frame is read, and the transform keeps pace with the source.
    """
    times, frames = [], []
    for index, (seconds, frame) in enumerate(timed_frames):
        seen[:] = [index + 1, seconds]
        if stride > num_frames and index % stride >= num_frames:
            continue  # between clips: never transformed
        times.append(seconds)
        frames.append(frame)
        if live or len(frames) * frame.shape[0] * frame.shape[1] >= TRANSFORM_PIXELS:
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
    live: bool = False,
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
        live: yield each batch as soon as its last clip is complete (a live
            source: each frame is transformed as it arrives, and a full batch
            is not held until the next clip starts); with `workers` at 1, a
            batch then comes as soon as the frame that completes it is read.

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
        _needed_chunks(timed_frames, num_frames, stride, seen, live),
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
            if live and len(batch) == batch_size:
                yield emit()
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


def model_forward(model: keras.Model) -> Callable[[np.ndarray], np.ndarray]:
    """The model's inference call: a traced function on TensorFlow, the plain call elsewhere."""
    if keras.backend.backend() == "tensorflow":
        call = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
        return lambda x: call(tf.convert_to_tensor(x)).numpy()
    return lambda x: keras.ops.convert_to_numpy(model(x, training=False))


def clip_stride(
    num_frames: int, stride: int | None, stride_seconds: float | None, rate: float
) -> int:
    """Frames between clip starts: the one rule of files and live sources.

    `stride`, else `stride_seconds` at `rate` frames per second (rounded, at
    least 1), else half a clip.

    Raises:
        ValueError: if both are given, or `stride_seconds` is not positive.
    """
    if stride is not None and stride_seconds is not None:
        raise ValueError(
            "Pass `stride` (frames) or `stride_seconds`, not both. "
            f"Received: stride={stride}, stride_seconds={stride_seconds}"
        )
    if stride_seconds is not None:
        if stride_seconds <= 0:
            raise ValueError(f"`stride_seconds` must be positive. Received: {stride_seconds}")
        stride = max(round(stride_seconds * rate), 1)
    return stride or max(num_frames // 2, 1)


@dataclasses.dataclass(frozen=True)
class VideoClips:
    """The clips `predict_video` cuts from one video, before a model sees them.

    Attributes:
        header: what the video's headers declare.
        fps: the rate the clips' frames are counted at (the resampling rate,
            or the video's nominal rate).
        num_frames: frames per clip.
        stride: frames between clip starts.
        batches: the `ClipBatch`es, cut as the video is read.
    """

    header: stream.StreamInfo
    fps: float
    num_frames: int
    stride: int
    batches: Iterator[ClipBatch]

    def timeline(self, probs, starts, times, seconds_read: float, class_names) -> Timeline:
        """The `Timeline` of the clips' `probs` (`starts`, `times` as the batches gave them)."""
        return Timeline(
            times=np.asarray(times, np.float64),
            probs=np.asarray(probs),
            class_names=tuple(class_names),
            starts=np.asarray(starts, np.int64),
            duration=self.header.duration or seconds_read,
            fps=self.fps,
            num_frames=self.num_frames,
            stride=self.stride,
            video=self.header.path,
        )


def video_clips(
    path: str | os.PathLike,
    convention: preprocessing_lib.Preprocessing | None,
    *,
    num_frames: int | None = None,
    stride: int | None = None,
    stride_seconds: float | None = None,
    fps: float | None = None,
    batch_size: int = 8,
    transform_threads: int = 2,
) -> VideoClips:
    """The clips of `predict_video` (see there for the arguments), for any model runner.

    The headers are read now (a bad file raises here); the clips are cut as
    `batches` is iterated. With `convention=None` the clips hold the frames
    as decoded (uint8, the video's size), for a model that preprocesses in
    its graph (a `kvid.export` SavedModel); `num_frames` then says their length.

    Raises:
        VideoDecodeError: if the video cannot be opened.
    """
    path = os.fspath(path)
    if convention is not None:
        num_frames = convention.num_frames
    elif not num_frames:
        raise ValueError(f"Clips of decoded frames need `num_frames`. Received: {num_frames}")
    header = stream.stream_info(path)
    rate = float(fps) if fps else header.nominal_fps
    stride = clip_stride(num_frames, stride, stride_seconds, rate)

    def transform(frames):
        if convention is None:
            return frames
        return preprocessing_lib.preprocess_frames(frames, convention).numpy()

    batches = sliding_clips(
        stream.iter_timed_frames(path, fps),
        transform,
        num_frames=num_frames,
        stride=stride,
        batch_size=batch_size,
        workers=transform_threads,
    )
    return VideoClips(header, rate, num_frames, stride, batches)


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
    convention = model_convention(model, model_name, num_frames=num_frames, size=size)
    clips = video_clips(
        path,
        convention,
        stride=stride,
        stride_seconds=stride_seconds,
        fps=fps,
        batch_size=batch_size,
        transform_threads=transform_threads,
    )
    header = clips.header
    # The frames the headers declare (at `fps`, those the resampling will give): an estimate
    # for the bar's length, which ends at the frames actually read.
    expected = round(header.duration * clips.fps) if fps else header.num_frames
    length = f" ({header.duration:.1f} s of video)" if header.duration > 0 else ""
    title = f"Predicting {os.path.basename(header.path)}{length}"
    bar = progress_bar(expected or None, "frame", enabled=progress, title=title)
    timeline = classify_clips(clips, model_forward(model), class_names, bar)
    bar.finish()
    return dataclasses.replace(timeline, threshold=threshold)


def classify_clips(clips: VideoClips, forward, class_names, bar=None) -> Timeline:
    """The `Timeline` of `clips` scored by `forward` (`model_forward`'s), batch by batch.

    The next batch is cut while one is classified; `bar` (a `kvid.io.progress`
    bar), if given, advances to the frames read.
    """
    starts, centres, probs = [], [], []
    seconds_read = 0.0
    for batch in stream.prefetch(clips.batches, depth=1):
        probs.append(forward(batch.clips))
        starts.append(batch.starts)
        centres.append(batch.times)
        seconds_read = batch.seconds_read
        if bar is not None:
            bar.update(batch.frames_read)
    return clips.timeline(
        np.concatenate(probs),
        np.concatenate(starts),
        np.concatenate(centres),
        seconds_read,
        class_names,
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


def check_timeline_path(output_path: str | None) -> None:
    """Raises a `ValueError` naming `output_path` unless a timeline can be saved there.

    Checked before a video is read, so a long run does not end in the error.
    """
    if output_path and os.path.splitext(output_path)[1].lower() not in TIMELINE_FORMATS:
        raise ValueError(
            f"A timeline is saved as {' or '.join(TIMELINE_FORMATS)}. "
            f"Received: output_path={output_path!r}"
        )


def model_class_names(model: keras.Model, model_path: str, labels_path: str | None = None):
    """The name of each output of `model`, the one rule of every prediction path.

    From `labels_path`, else `class_names.txt` beside `model_path` (written by
    `train`), else `kvid.models.class_names_for`'s default.
    """
    names = read_class_names(labels_path) if labels_path else class_names_beside(model_path)
    return class_names_for(model.outputs[0].shape[-1], names)


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
    check_timeline_path(output_path)
    model = load_model(model_path)
    timeline = predict_video(
        model,
        video,
        class_names=model_class_names(model, model_path, labels_path),
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


def corpus_format(output_path: str) -> str:
    """The format of a corpus' predictions file, by its extension: `".jsonl"` or `".csv"`."""
    extension = os.path.splitext(output_path)[1].lower()
    if extension not in CORPUS_FORMATS:
        raise ValueError(
            f"A corpus' predictions are saved as {' or '.join(CORPUS_FORMATS)}. "
            f"Received: output_path={output_path!r}"
        )
    return extension


def corpus_header(output_path: str, k: int) -> str | None:
    """The first line of a corpus' predictions file: the CSV header, `None` for JSON lines."""
    if corpus_format(output_path) != ".csv":
        return None
    ranks = range(1, k + 1)
    return ",".join(["video", *(f"{c}_{r}" for r in ranks for c in ("class", "probability"))])


def corpus_line(record: dict, output_path: str) -> str:
    """One video's `Timeline.record` as a line of the predictions file (no newline)."""
    if corpus_format(output_path) == ".jsonl":
        return json.dumps(record)
    out = io.StringIO()
    cells = [value for best in record["top"] for value in (best["class"], best["probability"])]
    csv.writer(out, lineterminator="").writerow([record["video"], *cells])
    return out.getvalue()


@dataclasses.dataclass(frozen=True)
class CorpusSummary:
    """What a corpus prediction did: its output file, videos predicted, skipped `(path, error)`."""

    output: str
    written: int
    skipped: list[tuple[str, str]]


def predict_corpus(
    videos: Sequence[str],
    model_path: str,
    output_path: str,
    *,
    labels_path: str | None = None,
    top_k: int = 5,
    clips: bool = False,
    model_name: str | None = None,
    num_frames: int | None = None,
    size: int | None = None,
    stride: int | None = None,
    stride_seconds: float | None = None,
    fps: float | None = None,
    batch_size: int = 8,
    progress: bool = True,
) -> CorpusSummary:
    """Predicts every video with one model, one process, a line per video (`kvid-predict`'s).

    The single-process path of `kvid-predict-corpus` (`kvid.beam` runs the same
    per-video prediction on a Beam runner). A video that cannot be read is
    skipped and listed in the summary.

    Args:
        videos: the video files.
        model_path: the `.keras` model.
        output_path: a `.jsonl` (one `Timeline.record` per line) or `.csv` file,
            written under a temporary name and renamed when complete.
        labels_path: class names, as in `predict_file`.
        top_k: classes listed per video.
        clips: also list each clip's time and top-k (JSON lines only).
        model_name: as in `predict_video`.
        num_frames: as in `predict_video`.
        size: as in `predict_video`.
        stride: as in `predict_video`.
        stride_seconds: as in `predict_video`.
        fps: as in `predict_video`.
        batch_size: clips per forward pass.
        progress: a progress bar over the videos on stderr.

    Returns:
        A `CorpusSummary`.
    """
    header = corpus_header(output_path, top_k)
    model = load_model(model_path)
    class_names = model_class_names(model, model_path, labels_path)
    convention = model_convention(model, model_name, num_frames=num_frames, size=size)
    forward = model_forward(model)  # traced once for the whole corpus
    title = f"Predicting {len(videos)} videos"
    bar = progress_bar(len(videos), "video", enabled=progress, title=title)
    lines, skipped = [] if header is None else [header], []
    for video in videos:
        try:
            cut = video_clips(
                video,
                convention,
                stride=stride,
                stride_seconds=stride_seconds,
                fps=fps,
                batch_size=batch_size,
            )
            timeline = classify_clips(cut, forward, class_names)
        except VideoDecodeError as err:  # listed in the summary the caller prints
            skipped.append((video, str(err)))
        else:
            lines.append(corpus_line(timeline.record(top_k, clips), output_path))
        bar.add(1, skipped=len(skipped))
    bar.finish(skipped=len(skipped))
    with atomic.atomic_file(output_path) as f:
        f.write("".join(f"{line}\n" for line in lines))
    return CorpusSummary(output_path, len(videos) - len(skipped), skipped)
