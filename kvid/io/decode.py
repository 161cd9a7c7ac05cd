"""Reading frames from video files, frame folders and images with PyAV.

A video is first *probed*: its packets are demuxed (not decoded) to learn the
presentation time of every frame, which is cheap and catches most bad files
before training starts. Frames are then decoded on demand: `decode_frames`
seeks to the keyframe before the first wanted frame and decodes only up to the
last one, so a clip of a long video costs about one GOP plus the clip.

Times are what index frames: with a variable frame rate, frame `i` is the
`i`-th frame in presentation order and `VideoInfo.times[i]` is when it is
shown; `frame_positions` resamples that timeline to a fixed rate.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Iterator

import av
import numpy as np
from av.video.reformatter import VideoReformatter

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")

# Frame folders carry no timing: their frames are assumed to be this many per second.
FRAME_FOLDER_FPS = 30.0


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
        """Average frame rate (frames per second)."""
        if self.num_frames < 2 or self.times[-1] <= 0:
            return self.nominal_fps
        return (self.num_frames - 1) / float(self.times[-1])

    @property
    def duration(self) -> float:
        """Seconds from the first frame to the end of the last one."""
        return float(self.times[-1]) + 1.0 / self.fps


def video_error(path: str, problem: str) -> VideoDecodeError:
    """The error for a video that cannot be read: it names the file and the problem.

    The one wording of kvid's reading errors (probing, decoding, streaming).
    """
    return VideoDecodeError(f"Cannot read video {path!r}: {problem}")


@contextlib.contextmanager
def open_video(path: str | os.PathLike) -> Iterator[tuple[av.container.InputContainer, object]]:
    """Opens a video (or image) file at its first video stream: `(container, stream)`.

    The one way kvid opens a file to read (`probe`, `decode_frames`, the
    streamed reader, `stream.stream_info`): an empty file, a file without
    a video stream, and any FFmpeg or OS error while the file is open
    (opening, demuxing, decoding in the `with` block) raise a
    `VideoDecodeError` naming the file.

    Raises:
        VideoDecodeError: as above.
    """
    path = os.fspath(path)
    try:
        if os.path.getsize(path) == 0:
            raise video_error(path, "the file is empty.")
        with av.open(path) as container:
            if not container.streams.video:
                raise video_error(path, "it has no video stream.")
            yield container, container.streams.video[0]
    except (av.FFmpegError, OSError) as err:
        raise video_error(path, f"{type(err).__name__}: {err}") from err


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
    times = (pts - pts[0]) * float(time_base)
    return VideoInfo(path, times, pts, nominal_fps=declared_fps, timestamped=timestamped)


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


def frame_positions(
    info: VideoInfo,
    fps: float | None = None,
    start: float | None = None,
    end: float | None = None,
) -> np.ndarray:
    """Maps the frames a sampler sees to frames of the video.

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
    """
    times = info.times
    start = 0.0 if start is None else float(start)
    end = info.duration if end is None else min(float(end), info.duration)
    first = int(np.searchsorted(times, start - 1e-6, side="left"))
    if first >= len(times) or end <= start:
        raise video_error(
            info.path,
            f"the segment start={start}, end={end} holds no frame "
            f"(the video lasts {info.duration:.3f} s).",
        )
    if fps is None:
        last = int(np.searchsorted(times, end - 1e-6, side="left"))
        return np.arange(first, max(last, first + 1), dtype=np.int64)
    if fps <= 0:
        raise ValueError(f"`fps` must be positive. Received: fps={fps}")
    count = max(1, int(np.ceil((end - start) * fps - 1e-6)))
    wanted = start + np.arange(count) / fps
    indices = np.searchsorted(times, wanted + 1e-6, side="right") - 1
    return np.clip(indices, first, len(times) - 1).astype(np.int64)


def decode_frames(info: VideoInfo, indices, size: tuple[int, int] | None = None) -> np.ndarray:
    """Decodes frames `indices` of a probed video.

    Only the stretch from the keyframe before the first wanted frame to the
    last wanted frame is decoded; only wanted frames are converted to RGB.
    Gray, paletted and alpha sources come out as RGB (alpha is dropped).

    Args:
        info: from `probe`.
        indices: frame indices in `[0, info.num_frames)`, any order, repeats allowed.
        size: optional `(height, width)` to resize the frames to while converting.

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
        by_index = {int(i): _read_image(info.frame_files[i], size) for i in wanted}
    else:
        by_index = _decode_video(info, wanted, size)
    return np.stack([by_index[int(i)] for i in indices])


def _to_rgb(frame, reformatter, size):
    height, width = size if size else (None, None)
    return reformatter.reformat(frame, format="rgb24", width=width, height=height).to_ndarray()


def _read_image(path: str, size) -> np.ndarray:
    with open_video(path) as (container, stream):
        for frame in container.decode(stream):
            return _to_rgb(frame, VideoReformatter(), size)
    raise video_error(path, "the image holds no decodable picture.")


def _frames(container, stream):
    """Decoded frames of `stream` from the current position.

    `container.decode` holds the GIL while decoding; the codec context's
    `decode` releases it, so parallel `tf.data` calls decode on all cores.
    The demuxer's final empty packet flushes the decoder.
    """
    for packet in container.demux(stream):
        yield from stream.codec_context.decode(packet)


def _decode_video(info: VideoInfo, wanted: np.ndarray, size) -> dict[int, np.ndarray]:
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
                        converted = (chosen, _to_rgb(chosen, reformatter, size))
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
            last = _to_rgb(previous, reformatter, size)
            for k in range(j, len(targets)):
                out[int(wanted[k])] = last
    return out


def read_video(path: str, fps: float | None = None, size: tuple[int, int] | None = None):
    """Decodes a whole video (or frame folder) into `uint8 [T, H, W, 3]`.

    Args:
        path: video file or frame folder.
        fps: optional frame rate to resample to.
        size: optional `(height, width)` to resize to.

    Returns:
        The frames as a numpy array.
    """
    info = probe(path)
    return decode_frames(info, frame_positions(info, fps=fps), size=size)
