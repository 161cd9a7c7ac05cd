"""Reading frames from video files, frame folders and images with PyAV.

A video is first *probed*: its packets are demuxed (not decoded) to learn the
presentation time of every frame, which is cheap and catches most bad files
before training starts. Frames are then decoded on demand: `decode_frames`
seeks to the keyframe before the first wanted frame and decodes only up to the
last one, so a clip of a long video costs about one GOP plus the clip.

Times are what index frames: with a variable frame rate, frame `i` is the
`i`-th frame in presentation order and `VideoInfo.times[i]` is when it is
shown; `frame_positions` resamples that timeline to a fixed rate. The rules
every reader of kvid shares live here once: how a file is opened and what a
bad one raises (`open_video`), when a frame is shown (`frame_seconds`), how
long a video lasts (`video_duration`) and which frames a resampled video
shows (`resample`, which the streamed reader of `kvid.io.stream` runs too).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Iterable, Iterator
from typing import TypeVar

import av
import numpy as np
from av.video.reformatter import VideoReformatter

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")

# Frame folders carry no timing: their frames are assumed to be this many per second.
FRAME_FOLDER_FPS = 30.0
# Times within this many seconds are the same instant.
_EPSILON = 1e-6

Item = TypeVar("Item")


class VideoDecodeError(ValueError):
    """A file could not be read as a video; the message names the file and the problem."""


@dataclasses.dataclass(frozen=True)
class VideoInfo:
    """What `probe` learned about a video without decoding it.

    Attributes:
        path: the video file, or the folder of frame images.
        times: `float64 [num_frames]` presentation time of each frame in
            seconds from the first frame, increasing.
        pts: `int64 [num_frames]` stream timestamps of the frames (used to
            seek); empty for frame folders.
        frame_files: the image files of a frame folder, in frame order; empty
            for video files.
        nominal_fps: the rate the container declares (used when the frames'
            own timing cannot tell, e.g. a single frame).
        timestamped: False when the container has no timestamps (raw
            streams): `pts` are then frame numbers and clips decode from the start.
    """

    path: str
    times: np.ndarray
    pts: np.ndarray
    frame_files: tuple[str, ...] = ()
    nominal_fps: float = FRAME_FOLDER_FPS
    timestamped: bool = True

    @property
    def num_frames(self) -> int:
        """Number of frames in the video."""
        return len(self.times)

    @property
    def fps(self) -> float:
        """Average frame rate (frames per second), as `average_fps` says."""
        return average_fps(self.num_frames, self._last_time, self.nominal_fps)

    @property
    def duration(self) -> float:
        """Seconds from the first frame to the end of the last one, as `video_duration` says."""
        return video_duration(self.num_frames, self._last_time, self.nominal_fps)

    @property
    def _last_time(self) -> float:
        return float(self.times[-1]) if self.num_frames else 0.0


def average_fps(num_frames: int, last_time: float, nominal: float) -> float:
    """The average rate of `num_frames` frames, the last shown `last_time` s after the first.

    `nominal` (the declared rate) when the frames cannot tell: one frame, or
    all at the same time.
    """
    if num_frames < 2 or last_time <= 0:
        return nominal
    return (num_frames - 1) / float(last_time)


def video_duration(num_frames: int, last_time: float, nominal: float) -> float:
    """Seconds from the first frame to the end of the last: the last lasts one average frame.

    The one length of a video: `VideoInfo.duration`, and `resample` at the
    end of a streamed video, whose frames are not listed beforehand.
    """
    return float(last_time) + 1.0 / average_fps(num_frames, last_time, nominal)


def video_error(path: str, problem: str) -> VideoDecodeError:
    """The error for a video that cannot be read: it names the file and the problem.

    The one wording of kvid's reading errors (probing, decoding, streaming).
    """
    return VideoDecodeError(f"Cannot read video {path!r}: {problem}")


@contextlib.contextmanager
def open_video(
    path,
    *,
    format: str | None = None,
    options: dict[str, str] | None = None,
    timeout: float | None = None,
    name: str | None = None,
) -> Iterator[tuple[av.container.InputContainer, object]]:
    """Opens a video (or image) file at its first video stream: `(container, stream)`.

    The one way kvid opens a video to read (`probe`, `decode_frames`, the
    streamed reader, `stream.stream_info`, the live sources of
    `kvid.io.sources`): an empty file, a source without a video stream, and
    any FFmpeg or OS error while it is open (opening, demuxing, decoding in
    the `with` block) raise a `VideoDecodeError` naming it.

    Args:
        path: a file, or a live source: a URL, a device or a binary file object.
        format: the container format (FFmpeg's name, e.g. `"mpegts"`); `None` detects it.
        options: FFmpeg options of the container and its protocol.
        timeout: seconds to wait for data (FFmpeg's own reads: files, URLs, devices).
        name: what the errors call the source (default: `path`).

    Raises:
        VideoDecodeError: as above.
    """
    path = path if hasattr(path, "read") else os.fspath(path)
    name = name or str(path)
    try:
        if isinstance(path, str) and os.path.isfile(path) and os.path.getsize(path) == 0:
            raise video_error(name, "the file is empty.")
        with av.open(path, format=format, options=options or {}, timeout=timeout) as container:
            if not container.streams.video:
                raise video_error(name, "it has no video stream.")
            yield container, container.streams.video[0]
    except (av.FFmpegError, OSError) as err:
        raise video_error(name, f"{type(err).__name__}: {err}") from err


def nominal_fps(stream) -> float:
    """The frame rate a video stream declares (that of frame folders if it declares none)."""
    return float(stream.average_rate or stream.guessed_rate or FRAME_FOLDER_FPS)


def is_frame_folder(path: str) -> bool:
    """True if `path` is a directory that holds image files (one per frame)."""
    return os.path.isdir(path) and any(
        name.lower().endswith(IMAGE_EXTENSIONS) for name in os.listdir(path)
    )


def probe(path: str) -> VideoInfo:
    """Lists the frames of a video file or a frame folder without decoding them.

    Args:
        path: a video file any FFmpeg demuxer reads (mp4, avi, webm, mkv, ...),
            or a directory of frame images sorted by file name.

    Returns:
        A `VideoInfo`.

    Raises:
        VideoDecodeError: if the file is missing, unreadable, not a video, has
            no video stream or no frames.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        return _probe_frame_folder(path)
    with open_video(path) as (container, stream):
        pts = [
            packet.pts if packet.pts is not None else packet.dts
            for packet in container.demux(stream)
            if packet.size > 0
        ]
        time_base = stream.time_base
        declared_fps = nominal_fps(stream)
    if not pts:
        raise video_error(path, "it has no video frames.")
    timestamped = all(p is not None for p in pts)
    if not timestamped:
        # No timestamps: number the frames, at the stream's nominal rate.
        pts = list(range(len(pts)))
        time_base = 1 / declared_fps
    pts = np.unique(np.asarray(pts, np.int64))
    times = frame_seconds(pts, pts[0], time_base)
    return VideoInfo(path, times, pts, nominal_fps=declared_fps, timestamped=timestamped)


def frame_seconds(pts, first, time_base):
    """Seconds from the first frame of frames with timestamps `pts` (an int or an int array).

    The one conversion of `probe` and the streamed reader, so both give a
    frame the same time to the last bit. A stream without timestamps numbers
    its frames (`pts` 0, 1, ...) with `time_base` one over its nominal rate.
    """
    return (pts - first) * float(time_base)


def _probe_frame_folder(path: str) -> VideoInfo:
    files = sorted(f for f in os.listdir(path) if f.lower().endswith(IMAGE_EXTENSIONS))
    if not files:
        raise video_error(path, "the folder holds no frame images " + str(IMAGE_EXTENSIONS) + ".")
    times = np.arange(len(files), dtype=np.float64) / FRAME_FOLDER_FPS
    return VideoInfo(
        path=path,
        times=times,
        pts=np.zeros([0], np.int64),
        frame_files=tuple(os.path.join(path, f) for f in files),
    )


def checked_fps(fps: float | None) -> float | None:
    """`fps` as a float (`None` stays `None`: keep the video's frames).

    Raises:
        ValueError: if `fps` is not positive.
    """
    if fps is None:
        return None
    if fps <= 0:
        raise ValueError(f"`fps` must be positive. Received: fps={fps}")
    return float(fps)


def resample(
    timed: Iterable[tuple[float, Item]],
    fps: float | None = None,
    *,
    start: float | None = None,
    end: float | None = None,
    nominal_fps: float = FRAME_FOLDER_FPS,
    path: str = "",
) -> Iterator[tuple[float, Item]]:
    """The frames of a video resampled to `fps`: kvid's one resampling rule.

    Sample `k` is at `start + k / fps` and shows the last frame presented at
    or before that time (within `1e-6` s), or the segment's first frame if
    it comes before that one; samples run to the end of the segment (the end
    of the video: its last frame lasts one average frame, `video_duration`).
    `frame_positions` runs it over a probed timeline (whole-file decodes,
    frame folders, datasets), `kvid.io.stream` over frames as they decode:
    one pass, in order, holding one frame, so a stream of any length works.

    Args:
        timed: `(seconds from the first frame, item)` for every frame of the
            video, in increasing time; an item is whatever the caller reads
            (a frame index, a decoded frame).
        fps: the rate to resample to; `None` keeps every frame of the segment
            (and a variable rate).
        start: first second of the segment (`None`: the beginning).
        end: end of the segment in seconds, exclusive (`None`: the end).
        nominal_fps: the rate the video declares, its duration's when its
            frames cannot tell (`average_fps`).
        path: the video, named by the error.

    Yields:
        `(seconds, item)`: with `fps`, each sample's time and the item shown
        (an item repeats for each sample it is shown at; one no sample shows
        is skipped); without, each frame of the segment at its own time. The
        last samples come when `timed` ends, when the duration is known.

    Raises:
        ValueError: if `fps` is not positive.
        VideoDecodeError: if the segment holds no frame (once `timed` is read).
    """
    fps = checked_fps(fps)
    start = 0.0 if start is None else float(start)
    end = None if end is None else float(end)
    # Samples before `end` are known before the video's duration is.
    limit = np.inf if end is None or fps is None else _sample_count(start, end, fps)
    empty = end is not None and end <= start
    count, last = 0, 0.0  # frames read, time of the last
    kept = 0  # frames of the segment read
    k = 0  # next sample
    previous = None  # the last frame of the segment read: what sample `k` shows so far
    for seconds, item in timed:
        count, last = count + 1, seconds
        if empty or seconds < start - _EPSILON:
            continue
        if fps is None:
            if end is None or seconds < end - _EPSILON or not kept:
                yield seconds, item
        else:
            # Sample k shows `previous` unless this frame is shown by then.
            while kept and k < limit and start + k / fps + _EPSILON < seconds:
                yield start + k / fps, previous
                k += 1
            previous = item
        kept += 1
    duration = video_duration(count, last, nominal_fps)
    end = duration if end is None else min(end, duration)
    if not kept or end <= start:
        raise video_error(
            path,
            f"the segment start={start}, end={end} holds no frame "
            f"(the video lasts {duration:.3f} s).",
        )
    if fps is not None:
        for rest in range(k, _sample_count(start, end, fps)):
            yield start + rest / fps, previous


def _sample_count(start: float, end: float, fps: float) -> int:
    return max(1, int(np.ceil((end - start) * fps - _EPSILON)))


def timed_positions(
    info: VideoInfo,
    fps: float | None = None,
    start: float | None = None,
    end: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """`frame_positions` and the time of each: `(float64 [n] seconds, int64 [n] indices)`.

    The time is the sample's (`start + k / fps`), or the frame's own without `fps`.
    """
    samples = resample(
        zip(info.times.tolist(), range(info.num_frames), strict=True),
        fps,
        start=start,
        end=end,
        nominal_fps=info.nominal_fps,
        path=info.path,
    )
    times, indices = [], []
    for seconds, index in samples:
        times.append(seconds)
        indices.append(index)
    return np.asarray(times, np.float64), np.asarray(indices, np.int64)


def frame_positions(
    info: VideoInfo,
    fps: float | None = None,
    start: float | None = None,
    end: float | None = None,
) -> np.ndarray:
    """Maps the frames a sampler sees to frames of the video (`resample`'s choice).

    Args:
        info: the probed video.
        fps: resample to this frame rate: frame `k` shows what the video shows
            at `start + k / fps` (the last frame presented at or before that
            time). `None` keeps every frame (and a variable rate).
        start: first second of the segment to use (`None`: the beginning).
        end: end of the segment in seconds, exclusive (`None`: the end).

    Returns:
        `int64 [n]` frame indices of `info`, at least one.

    Raises:
        VideoDecodeError: if the segment holds no frame.
        ValueError: if `fps` is not positive.
    """
    return timed_positions(info, fps, start, end)[1]


def decode_frames(info: VideoInfo, indices) -> np.ndarray:
    """Decodes frames `indices` of a probed video.

    Only the stretch from the keyframe before the first wanted frame to the
    last wanted frame is decoded; only wanted frames are converted to RGB.
    Gray, paletted and alpha sources come out as RGB (alpha is dropped).

    Args:
        info: from `probe`.
        indices: frame indices in `[0, info.num_frames)`, any order, repeats allowed.

    Returns:
        `uint8 [len(indices), height, width, 3]`.

    Raises:
        VideoDecodeError: if the file can no longer be read (`open_video`) or no
            wanted frame can be decoded.
    """
    indices = np.asarray(indices, np.int64).reshape([-1])
    if indices.size and (indices.min() < 0 or indices.max() >= info.num_frames):
        raise ValueError(
            f"Frame indices out of range for {info.path!r} with {info.num_frames} frames. "
            f"Received: indices={indices.tolist()}"
        )
    wanted = np.unique(indices)
    if info.frame_files:
        by_index = {int(i): _read_image(info.frame_files[i]) for i in wanted}
    else:
        by_index = _decode_video(info, wanted)
    return np.stack([by_index[int(i)] for i in indices])


def to_rgb(frame, reformatter) -> np.ndarray:
    """A decoded PyAV frame as `uint8 [height, width, 3]` RGB (gray, palette, alpha too)."""
    return reformatter.reformat(frame, format="rgb24").to_ndarray()


def _read_image(path: str) -> np.ndarray:
    with open_video(path) as (container, stream):
        for frame in container.decode(stream):
            return to_rgb(frame, VideoReformatter())
    raise video_error(path, "the image holds no decodable picture.")


def _frames(container, stream):
    """Decoded frames of `stream` from the current position.

    `container.decode` holds the GIL while decoding; the codec context's
    `decode` releases it, so parallel `tf.data` calls decode on all cores.
    The demuxer's final empty packet flushes the decoder.
    """
    for packet in container.demux(stream):
        yield from stream.codec_context.decode(packet)


def _decode_video(info: VideoInfo, wanted: np.ndarray) -> dict[int, np.ndarray]:
    """Decodes `wanted` (sorted unique) frames, matching decoded frames by timestamp.

    A wanted frame the decoder does not return with its exact timestamp (a
    damaged stretch) gets the last decoded frame shown before it, so a clip is
    still made of this video's own frames.
    """
    targets = info.pts[wanted]
    reformatter = VideoReformatter()
    converted = (None, None)  # the last frame converted to RGB, and its pixels
    out: dict[int, np.ndarray] = {}
    j = 0
    previous = None
    with open_video(info.path) as (container, stream):
        stream.thread_type = "SLICE"
        stream.codec_context.thread_count = 1
        if info.timestamped and targets[0] > info.pts[0]:
            container.seek(int(targets[0]), stream=stream, backward=True, any_frame=False)
        try:
            for number, frame in enumerate(_frames(container, stream)):
                pts = frame.pts if frame.pts is not None else frame.dts
                if not info.timestamped:
                    pts = number
                elif pts is None:
                    continue
                while j < len(targets) and targets[j] <= pts:
                    chosen = frame if targets[j] == pts or previous is None else previous
                    if converted[0] is not chosen:
                        converted = (chosen, to_rgb(chosen, reformatter))
                    out[int(wanted[j])] = converted[1]
                    j += 1
                if j == len(targets):
                    break
                previous = frame
        except av.FFmpegError:
            # A truncated or damaged tail: keep what was decoded, fill below.
            pass
        if j < len(targets):
            # The stream ended before the wanted times: repeat the last frame it had.
            if previous is None:
                raise video_error(info.path, "no frame could be decoded.")
            last = to_rgb(previous, reformatter)
            for k in range(j, len(targets)):
                out[int(wanted[k])] = last
    return out


def read_video(path: str, fps: float | None = None):
    """Decodes a whole video (or frame folder) into `uint8 [T, H, W, 3]`.

    Args:
        path: video file or frame folder.
        fps: optional frame rate to resample to.

    Returns:
        The frames as a numpy array.
    """
    info = probe(path)
    return decode_frames(info, frame_positions(info, fps=fps))
