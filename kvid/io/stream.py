"""Reading a whole video once, in order, a frame at a time (for videos of any length).

`decode.decode_frames` is for clips: it seeks, decodes a stretch and returns
it as one array. A prediction timeline needs every frame of a long video, and
holding them is what does not fit (an hour of 1080p is ~700 GB of RGB). Here
frames are decoded in presentation order and handed out one by one, so
memory holds the decoder's few reference frames and whatever the caller keeps.

The frames are those of `decode.frame_positions(probe(path), fps)` followed by
`decode.decode_frames`: the same selection (both run `decode.resample`, over
the probed timeline there, over the frames as they decode here), the same
times (`decode.frame_seconds`) and the same pixels, without the probe's extra
pass over the file or the list of every frame.

A live source (opened, timed out and reconnected by `kvid.io.sources`) is
read by `live_timed_frames` with the same decoder and resampling, so the same
bytes give the same frames; there a corrupt packet is skipped and counted
(`SourceFaults`) instead of decoded, and a read error is raised after the
frames the decoder still holds.
"""

from __future__ import annotations

import dataclasses
import os
import queue
import threading
import time
from collections.abc import Iterable, Iterator

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from kvid.io.decode import (
    checked_fps,
    decode_frames,
    frame_seconds,
    nominal_fps,
    open_video,
    probe,
    resample,
    timed_positions,
    to_rgb,
    video_error,
)


@dataclasses.dataclass(frozen=True)
class StreamInfo:
    """What a video's headers say, read without demuxing or decoding it.

    Attributes:
        path: the video file or frame folder.
        duration: its length in seconds as the container declares it (`0.0`
            if it does not); for a progress bar, not for frame positions.
        nominal_fps: the frame rate the container declares.
        num_frames: the frame count the container declares (`0` if it does not).
        height: frame height in pixels.
        width: frame width in pixels.
    """

    path: str
    duration: float
    nominal_fps: float
    num_frames: int
    height: int
    width: int


def stream_info(path: str | os.PathLike) -> StreamInfo:
    """Reads the duration, rate, frame count and size a video's headers declare.

    Raises:
        VideoDecodeError: if the file is missing, empty, unreadable or has no video stream.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        info = probe(path)
        height, width = decode_frames(info, [0]).shape[1:3]
        return StreamInfo(path, info.duration, info.nominal_fps, info.num_frames, height, width)
    with open_video(path) as (container, stream):
        fps = nominal_fps(stream)
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / av.time_base
        else:
            duration = 0.0
        return StreamInfo(
            path,
            duration,
            fps,
            int(stream.frames or round(duration * fps)),
            stream.codec_context.height,
            stream.codec_context.width,
        )


@dataclasses.dataclass
class SourceFaults:
    """What reading a live source skipped or survived, counted as it reads.

    Attributes:
        corrupt_packets: packets the demuxer flagged corrupt or the decoder
            rejected, skipped.
        reconnects: times the source was reopened after a failure.
        errors: the message of each failure, naming the source.
    """

    corrupt_packets: int = 0
    reconnects: int = 0
    errors: list[str] = dataclasses.field(default_factory=list)


def _packet_frames(container, stream, faults: SourceFaults | None) -> Iterator[object]:
    """The frames `stream` decodes, in presentation order.

    Without `faults` (a file), every packet is decoded. With them (a live
    source), a packet the demuxer flags corrupt or the decoder rejects is
    skipped and counted, and when reading fails (an error or a timeout) the
    frames the decoder still holds come out before the error is raised.
    """
    codec = stream.codec_context
    try:
        for packet in container.demux(stream):
            if faults is None:
                yield from codec.decode(packet)
                continue
            if packet.is_corrupt:
                faults.corrupt_packets += 1
                continue
            try:
                frames = codec.decode(packet)
            except av.FFmpegError:  # the decoder's only: reading errors come from demux
                faults.corrupt_packets += 1
                continue
            yield from frames
    except (av.FFmpegError, OSError):
        if faults is not None:
            yield from codec.decode(None)
        raise


def _decoded(
    path: str, container, stream, declared_fps: float, faults: SourceFaults | None = None
) -> Iterator[tuple[float, object]]:
    """Every decoded frame of an open video as `(seconds from the first, av.VideoFrame)`.

    Frames come in presentation order; a frame without a timestamp or not
    after the previous one (a duplicate) is dropped, as `probe` keeps one
    frame per distinct timestamp. A damaged tail of a file ends the stream
    quietly, as in `decode_frames`; a live source's read errors are raised
    (with `faults`, see `_packet_frames`).
    """
    time_base = stream.time_base
    first = last = None
    number = -1
    try:
        for frame in _packet_frames(container, stream, faults):
            number += 1
            pts = frame.pts if frame.pts is not None else frame.dts
            if pts is None or time_base is None:
                # A raw stream without timestamps: number the frames at the nominal rate.
                seconds = frame_seconds(number, 0, 1 / declared_fps)
            else:
                if first is None:
                    first = pts
                seconds = frame_seconds(pts, first, time_base)
            if last is not None and seconds <= last:
                continue
            last = seconds
            yield seconds, frame
    except av.FFmpegError:
        if last is None or faults is not None:
            raise
    if last is None:
        raise video_error(path, "no frame could be decoded.")


def _converted(samples: Iterable[tuple[float, object]], convert) -> Iterator[tuple[float, object]]:
    """`samples` with each item converted once, however many samples in a row show it.

    Items are frame indices (equal when repeated) or decoded frames (the same object).
    """
    item = converted = None
    for seconds, sample in samples:
        if sample != item:
            item, converted = sample, convert(sample)
        yield seconds, converted


def iter_frames(path: str | os.PathLike, fps: float | None = None) -> Iterator[np.ndarray]:
    """Decodes a video once, in order, yielding its frames one at a time.

    Frame `k` is what `decode.read_video(path, fps)[k]` holds, but no more
    than one decoded frame (and the decoder's references) is in memory at a
    time. With `fps`, frame `k` is the last frame shown at or before `k / fps`
    seconds (`decode.resample`); frames no sampled time needs are never
    converted to RGB.

    Args:
        path: a video file or a folder of frame images.
        fps: resample to this frame rate; `None` keeps every frame.

    Yields:
        `uint8 [height, width, 3]` frames.

    Raises:
        VideoDecodeError: if the file cannot be opened or no frame decodes.
        ValueError: if `fps` is not positive.
    """
    for _, frame in iter_timed_frames(path, fps):
        yield frame


def iter_timed_frames(
    path: str | os.PathLike, fps: float | None = None
) -> Iterator[tuple[float, np.ndarray]]:
    """`iter_frames`, with each frame's time in seconds from the first frame.

    Without `fps` the time is the frame's own presentation time; with it, the
    sampled time `k / fps`.
    """
    fps = checked_fps(fps)  # before the file is opened
    path = os.fspath(path)
    if os.path.isdir(path):
        # A folder lists its frames: its timeline is the probed one.
        info = probe(path)
        times, positions = timed_positions(info, fps)
        samples = zip(times.tolist(), positions.tolist(), strict=True)
        yield from _converted(samples, lambda index: decode_frames(info, [index])[0])
        return
    reformatter = VideoReformatter()
    with open_video(path) as (container, stream):
        # One decoder for the whole file: let FFmpeg use frame threads on every core.
        stream.thread_type = "AUTO"
        declared_fps = nominal_fps(stream)
        samples = resample(
            _decoded(path, container, stream, declared_fps),
            fps,
            nominal_fps=declared_fps,
            path=path,
        )
        yield from _converted(samples, lambda frame: to_rgb(frame, reformatter))


def live_timed_frames(
    name: str, container, stream, fps: float | None, faults: SourceFaults
) -> Iterator[tuple[float, np.ndarray, float]]:
    """`iter_timed_frames` of an open live source, with when each frame came out of the decoder.

    The same frames and times as `iter_timed_frames` gives for a file of the
    same bytes (one decoder, one resampling rule), and `(seconds, frame,
    arrival)` with `arrival` the `time.monotonic()` at which the decoded
    frame shown came out. The decoder uses slice threads only: frame
    threads would hold each frame back by a frame per thread.

    Raises:
        VideoDecodeError, OSError: as `_decoded` with `faults`.
    """
    stream.thread_type = "SLICE"
    declared_fps = nominal_fps(stream)
    decoded = (
        (seconds, (frame, time.monotonic()))
        for seconds, frame in _decoded(name, container, stream, declared_fps, faults)
    )
    reformatter = VideoReformatter()
    samples = resample(decoded, fps, nominal_fps=declared_fps, path=name)
    converted = _converted(samples, lambda shown: (to_rgb(shown[0], reformatter), shown[1]))
    for seconds, (frame, arrival) in converted:
        yield seconds, frame, arrival


class _Done:
    """Marks the end of a `prefetch` queue (with the producer's exception, if any)."""

    def __init__(self, error: BaseException | None = None):
        self.error = error


def prefetch(items: Iterable, depth: int = 2) -> Iterator:
    """Iterates `items` in a background thread, at most `depth` items ahead.

    The producer (decoding, resizing: work that releases the GIL) then runs
    while the consumer (the model) works on the previous items, and the queue
    bounds what waits in memory. An exception in the producer is raised in
    the consumer; leaving the loop early stops the producer.

    Args:
        items: any iterable; it is iterated in the thread.
        depth: how many items may wait.

    Yields:
        The items of `items`, in order.
    """
    if depth < 1:
        raise ValueError(f"`depth` must be at least 1. Received: depth={depth}")
    ready: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce():
        try:
            for item in items:
                if not put(item):
                    return
        except BaseException as err:  # handed to the consumer
            put(_Done(err))
            return
        put(_Done())

    thread = threading.Thread(target=produce, name="kvid-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = ready.get()
            if isinstance(item, _Done):
                if item.error is not None:
                    raise item.error
                return
            yield item
    finally:
        stop.set()
        thread.join()
