"""Live video classified as it arrives: each clip's result as soon as the clip is complete.

A camera, an RTSP or HTTP feed or a stream piped from another program
(`kvid.io.sources`) is read in a decoder thread, which cuts clips with the
file path's own functions (`kvid.io.sources.live_frames` resamples as
`kvid.io.stream` does; `kvid.inference.sliding_clips` cuts, with
`kvid.preprocessing.preprocess_frames`) and hands each complete clip to the
model through a queue of at most `batch_size` clips. The model thread takes
every waiting clip in one forward pass (`kvid.inference.model_forward`),
so a model that keeps up classifies each clip alone, as soon as it is
complete, and one that lags runs passes of up to `batch_size` clips.

Latency, from the decoder giving a clip's last frame to its result, is the
rest of the pass in progress plus the clip's own pass. When the model is
slower than the stream, a clip that completes with `batch_size` clips
waiting pushes out the oldest: whole clips are dropped and counted, never
partial ones, and the results stay in order. With `drop_clips=False` the
decoder waits for the model instead (a recorded stream piped in, classified
clip by clip as a file would be).
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
import json
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO

import keras
import numpy as np

from kvid import plots
from kvid import preprocessing as preprocessing_lib
from kvid.inference import (
    Timeline,
    check_timeline_path,
    clip_stride,
    model_class_names,
    model_forward,
    sliding_clips,
)
from kvid.io import sources
from kvid.io.decode import VideoDecodeError
from kvid.io.stream import SourceFaults
from kvid.models import load_model, model_convention


@dataclasses.dataclass(frozen=True)
class ClipResult:
    """The model's output for one clip of a live source.

    Attributes:
        start_frame: the clip's first frame, counted in the frames read (at `fps` when resampled).
        start: the time of its first frame, in seconds from the source's first frame.
        end: the time of its last frame.
        probs: `(classes,)` probabilities.
        latency: seconds from the decoder giving its last frame to this result.
    """

    start_frame: int
    start: float
    end: float
    probs: np.ndarray
    latency: float

    @property
    def time(self) -> float:
        """The clip's centre, as `Timeline.times` has it."""
        return (self.start + self.end) / 2

    def to_json(self, class_names, k: int = 5) -> str:
        """One line of JSON: the time range, the top-`k` classes and probabilities, the latency."""
        timeline = Timeline(
            np.asarray([self.time]), self.probs[None], tuple(class_names), np.asarray([0])
        )
        return json.dumps(
            {
                "start_frame": self.start_frame,
                "start": round(self.start, 6),
                "end": round(self.end, 6),
                "time": round(self.time, 6),
                "top": [{"class": name, "probability": p} for name, p in timeline.clip_top(k)[0]],
                "latency": round(self.latency, 4),
            }
        )


@dataclasses.dataclass(frozen=True)
class LiveRun:
    """What classifying a live source gave.

    Attributes:
        timeline: the classified clips, as `kvid.inference.predict_video` gives a file's.
        results: each classified clip's `ClipResult`, in order.
        clips_cut: complete clips cut from the source.
        dropped: those dropped because the model lagged (`clips_cut - len(results)`
            when the run was not interrupted).
        frames: frames read (at `fps` when resampled).
        faults: corrupt packets skipped, reconnects and failures of the source.
        interrupted: whether SIGINT or SIGTERM ended the run.
    """

    timeline: Timeline
    results: tuple[ClipResult, ...]
    clips_cut: int
    dropped: int
    frames: int
    faults: SourceFaults
    interrupted: bool

    def latency_percentiles(self) -> tuple[float, float]:
        """Median and 95th percentile of the results' latency, in seconds."""
        median, p95 = np.percentile([r.latency for r in self.results], [50, 95])
        return float(median), float(p95)


class ClipQueue:
    """The complete clips waiting for the model: at most `capacity`, in order.

    With `drop`, a clip put when `capacity` wait pushes out the oldest (counted
    in `dropped`); without, `put` waits for room. `take` gives every waiting clip.
    """

    def __init__(self, capacity: int, drop: bool = True):
        if capacity < 1:
            raise ValueError(f"`capacity` must be at least 1. Received: capacity={capacity}")
        self.capacity, self.drop, self.dropped = capacity, drop, 0
        self._items: collections.deque = collections.deque()
        self._changed = threading.Condition()
        self._closed = False
        self._error: BaseException | None = None

    def put(self, item) -> None:
        """Adds `item` (from the decoder thread); ignored once the queue is closed."""
        with self._changed:
            while not self.drop and len(self._items) >= self.capacity and not self._closed:
                self._changed.wait(0.1)
            if self._closed:
                return
            if len(self._items) >= self.capacity:
                self._items.popleft()
                self.dropped += 1
            self._items.append(item)
            self._changed.notify_all()

    def take(self) -> list | None:
        """Every waiting item, oldest first, once there is one; `None` when closed and empty.

        Raises:
            The error the queue was closed with, once the items before it are taken.
        """
        with self._changed:
            while not self._items and not self._closed:
                self._changed.wait(0.1)  # a timeout, so SIGINT reaches the waiting thread
            items = list(self._items)
            self._items.clear()
            self._changed.notify_all()
        if items:
            return items
        if self._error is not None:
            raise self._error
        return None

    def close(self, error: BaseException | None = None) -> None:
        """No more items; `take` raises `error` (if any) after the waiting ones."""
        with self._changed:
            self._closed, self._error = True, self._error or error
            self._changed.notify_all()


@dataclasses.dataclass
class _Pending:
    """A complete clip waiting for the model."""

    clip: np.ndarray
    start_frame: int
    start: float
    end: float
    arrival: float


def _cut_clips(frames, transform, num_frames, stride_of, queue, counts) -> None:
    """Cuts the frames of each connection into clips as they arrive and queues them.

    A clip never spans a reconnect: each connection is cut on its own, its
    clips counted from its first frame.
    """
    for _, connection in itertools.groupby(frames, key=lambda frame: frame.connection):
        _cut_connection(connection, transform, num_frames, stride_of, queue, counts)


def _cut_connection(frames, transform, num_frames, stride_of, queue, counts) -> None:
    frames = iter(frames)
    head = next(frames)
    last = [head]  # the frame read last: the one that completed the clip just cut

    def timed():
        for frame in itertools.chain([head], frames):
            last[0] = frame
            counts["frames"], counts["seconds"] = frame.index + 1, frame.seconds
            yield frame.seconds, frame.frame

    clips = sliding_clips(
        timed(),
        transform,
        num_frames=num_frames,
        stride=stride_of(head.rate),
        batch_size=1,
        live=True,
    )
    for batch in clips:
        centre, end = float(batch.times[0]), last[0].seconds
        counts["cut"] += 1
        start_frame = head.index + int(batch.starts[0])
        queue.put(_Pending(batch.clips[0], start_frame, 2 * centre - end, end, last[0].arrival))


def predict_stream(
    model: keras.Model,
    source,
    *,
    class_names,
    model_name: str | None = None,
    num_frames: int | None = None,
    size: int | None = None,
    stride: int | None = None,
    stride_seconds: float | None = None,
    fps: float | None = None,
    batch_size: int = 8,
    drop_clips: bool = True,
    format: str | None = None,
    options: dict[str, str] | None = None,
    timeout: float | None = 10.0,
    reconnects: int = 3,
    reconnect_delay: float = 1.0,
    on_clip: Callable[[ClipResult], None] | None = None,
    report: Callable[[str], None] | None = None,
) -> LiveRun:
    """Classifies a live source as it arrives, one clip at a time, until it ends.

    Clips are cut and transformed as `kvid.inference.predict_video` cuts a
    file's (the same frames, clips and probabilities for the same bytes); each
    is classified as soon as the model is free, and `on_clip` gets its result
    at once. SIGINT (`KeyboardInterrupt`) ends the run like the source's end:
    the clips classified so far are returned.

    Args:
        model: a classifier taking `(batch, frames, height, width, 3)` clips.
        source: a URL, a device, a FIFO, `-` (standard input) or a binary file
            object (see `kvid.io.sources.live_frames`).
        class_names: the name of each output.
        model_name: the registry key whose convention to use (`kvid.models.model_convention`).
        num_frames: frames per clip; defaults to the model's.
        size: the crop side; defaults to the model's.
        stride: frames between clip starts; defaults to half a clip.
        stride_seconds: seconds between clip starts instead (at `fps`, or the source's rate).
        fps: resample the source to this rate first; `None` keeps its frames.
        batch_size: the most clips one forward pass takes, and the most that
            wait for it: larger passes are faster per clip, and each costs
            its clips' latency.
        drop_clips: drop the oldest waiting clip when the model lags (bounded
            latency); False makes the source wait for the model instead.
        format: the source's container format (`"mpegts"`, ...); `None` detects it.
        options: FFmpeg options of the source.
        timeout: seconds without data after which the source has failed.
        reconnects: how many times a network source is reopened.
        reconnect_delay: seconds before reopening.
        on_clip: called with each `ClipResult`, in order, as soon as it is known.
        report: called with messages: the source's failures, and when reading starts.

    Returns:
        A `LiveRun`.

    Raises:
        VideoDecodeError: if no clip could be classified, naming the source and why.

    Example:
        >>> model = kvid.R3D18(alpha=1 / 16, input_shape=(4, 32, 32, 3), classes=2)
        >>> video = kvid.io.write_video("feed.ts", np.zeros((10, 32, 32, 3), np.uint8), fps=10)
        >>> with open(video, "rb") as feed:  # a pipe, a URL or a device alike
        ...     run = kvid.live.predict_stream(model, feed, class_names=["a", "b"], format="mpegts")
        >>> [result.start_frame for result in run.results], run.dropped
        ([0, 2, 4, 6], 0)
    """
    if batch_size < 1:
        raise ValueError(f"`batch_size` must be at least 1. Received: batch_size={batch_size}")
    convention = model_convention(model, model_name, num_frames=num_frames, size=size)
    num_frames = convention.num_frames
    clip_stride(num_frames, stride, stride_seconds, fps or 1.0)  # the arguments' errors, now
    on_clip = on_clip or (lambda result: None)
    report = report or (lambda message: None)
    forward = model_forward(model)
    # Traced before the source opens: for one clip, then (reduce_retracing) for any batch.
    for warm in {1, min(batch_size, 2)}:
        forward(np.zeros((warm, num_frames, *convention.crop_shape, 3), np.float32))

    def transform(frames):
        return preprocessing_lib.preprocess_frames(frames, convention).numpy()

    cutting: dict = {}  # the first connection's rate fixes the stride

    def stride_of(rate):
        if not cutting:
            cutting.update(rate=rate, stride=clip_stride(num_frames, stride, stride_seconds, rate))
        return cutting["stride"]

    queue = ClipQueue(batch_size, drop=drop_clips)
    stop, faults = threading.Event(), SourceFaults()
    counts = {"frames": 0, "seconds": 0.0, "cut": 0}
    frames = sources.live_frames(
        source,
        fps,
        format=format,
        options=options,
        timeout=timeout,
        reconnects=reconnects,
        reconnect_delay=reconnect_delay,
        stop=stop,
        faults=faults,
        report=report,
    )

    def decode():
        try:
            _cut_clips(frames, transform, num_frames, stride_of, queue, counts)
        except BaseException as error:  # handed to the model thread
            queue.close(error)
        else:
            queue.close()

    name = sources.source_name(source)
    thread = threading.Thread(target=decode, name="kvid-live-decoder", daemon=True)
    report(f"Reading {name} live: one result per clip of {num_frames} frames.")
    thread.start()
    results: list[ClipResult] = []
    interrupted, failure = False, None
    try:
        while (waiting := queue.take()) is not None:
            probs = forward(np.stack([clip.clip for clip in waiting]))
            done = time.monotonic()
            for clip, row in zip(waiting, probs, strict=True):
                latency = done - clip.arrival
                result = ClipResult(clip.start_frame, clip.start, clip.end, row, latency)
                results.append(result)
                on_clip(result)
    except KeyboardInterrupt:
        interrupted = True
    except VideoDecodeError as error:  # the source gave no frame
        failure = error
    finally:
        stop.set()
        queue.close()
        thread.join(timeout=2 * (timeout or 1.0))
    if not results:
        if interrupted:
            why = "interrupted before a clip was complete"
        elif failure is not None:
            why = str(failure)
        else:
            why = faults.errors[-1] if faults.errors else "it ended before a clip was complete"
        raise VideoDecodeError(f"Nothing was classified from {name!r}: {why}") from failure
    rate = cutting["rate"]
    timeline = Timeline(
        times=np.asarray([r.time for r in results], np.float64),
        probs=np.stack([r.probs for r in results]),
        class_names=tuple(class_names),
        starts=np.asarray([r.start_frame for r in results], np.int64),
        duration=counts["seconds"] + 1 / rate,
        fps=rate,
        num_frames=num_frames,
        stride=cutting["stride"],
        video=name,
    )
    return LiveRun(
        timeline=timeline,
        results=tuple(results),
        clips_cut=counts["cut"],
        dropped=queue.dropped,
        frames=counts["frames"],
        faults=faults,
        interrupted=interrupted,
    )


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def summary(run: LiveRun, k: int = 5) -> dict:
    """The run's counts, latency and top-`k` classes, as the last JSON line gives them."""
    median, p95 = run.latency_percentiles()
    return {
        "clips": len(run.results),
        "clips_cut": run.clips_cut,
        "dropped": run.dropped,
        "frames": run.frames,
        "duration": round(run.timeline.duration, 6),
        "corrupt_packets": run.faults.corrupt_packets,
        "reconnects": run.faults.reconnects,
        "errors": run.faults.errors,
        "interrupted": run.interrupted,
        "latency_median": round(median, 4),
        "latency_p95": round(p95, 4),
        "top": [{"class": name, "probability": p} for name, p in run.timeline.top(k)],
    }


def predict_source(
    source,
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
    drop_clips: bool = True,
    format: str | None = None,
    options: dict[str, str] | None = None,
    timeout: float | None = 10.0,
    reconnects: int = 3,
    output_path: str | None = None,
    plot_path: str | None = None,
    lines: TextIO = sys.stdout,
    messages: TextIO = sys.stderr,
) -> LiveRun:
    """Classifies a live source with the `.keras` model at `model_path`: `kvid-predict`'s live mode.

    Each clip's result is one JSON line on `lines`, flushed as soon as it is
    known (`ClipResult.to_json`), then the run's `summary` as a last line
    `{"summary": ...}`. When the source ends, or on SIGINT or SIGTERM, the
    timeline is saved to `output_path` (`.json` or `.csv`) and plotted to
    `plot_path`, each written whole (`kvid.io.atomic`). Failures of the
    source and the summary go to `messages`. Class names are found as
    `kvid.inference.predict_file` finds them.

    Raises:
        VideoDecodeError: if no clip could be classified, naming the source and why.
    """
    check_timeline_path(output_path)
    model = load_model(model_path)
    class_names = model_class_names(model, model_path, labels_path)

    def say(message):
        print(message, file=messages, flush=True)

    def emit(result):
        print(result.to_json(class_names), file=lines, flush=True)

    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_interrupt) if in_main else None
    try:
        run = predict_stream(
            model,
            source,
            class_names=class_names,
            model_name=model_name,
            num_frames=num_frames,
            size=size,
            stride=stride,
            stride_seconds=stride_seconds,
            fps=fps,
            batch_size=batch_size,
            drop_clips=drop_clips,
            format=format,
            options=options,
            timeout=timeout,
            reconnects=reconnects,
            on_clip=emit,
            report=say,
        )
        # Saving is not cut short by a second signal.
        if in_main:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        outcome = summary(run)
        if output_path:
            outcome["timeline"] = run.timeline.save(output_path)
        if plot_path:
            figure = plots.timeline_figure(
                run.timeline.times,
                run.timeline.probs,
                run.timeline.class_names,
                title=f"{run.timeline.video} (live): {model.name} ({model_path})",
                duration=run.timeline.duration,
            )
            outcome["plot"] = plots.save_figure(figure, plot_path)
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, previous)
    print(json.dumps({"summary": outcome}), file=lines, flush=True)
    say(_summary_text(run.timeline.video, outcome))
    return run


def _summary_text(name: str, outcome: dict) -> str:
    """The summary for people: counts, latency, where the timeline went."""
    text = (
        f"{name}: {outcome['clips']} clips classified, {outcome['dropped']} dropped "
        f"(the model was slower than the stream), {outcome['corrupt_packets']} corrupt packets "
        f"skipped, {outcome['reconnects']} reconnects; latency median "
        f"{outcome['latency_median']:.3f} s, 95th percentile {outcome['latency_p95']:.3f} s"
        + (" (interrupted)" if outcome["interrupted"] else "")
    )
    for key, label in (("timeline", "timeline"), ("plot", "timeline plot")):
        if key in outcome:
            text += f"\n{label}: {outcome[key]}"
    return text
