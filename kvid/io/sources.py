"""Live video sources: URLs, devices and pipes, read as they arrive, reopened when they fail.

A file is read by `kvid.io.stream`; a live source (a camera, an RTSP or HTTP
feed, a container stream piped from another program) has no known end, and
may stall, break off or send damaged packets. `live_frames` reads one with
the decoder, timestamps and resampling of a file
(`kvid.io.stream.live_timed_frames`: the same frames for the same bytes) and:

- fails a source that sends nothing for `timeout` seconds (FFmpeg's own
  timeout for URLs and devices; a `select` on the descriptor for standard
  input, FIFOs and file objects, which FFmpeg's would not interrupt);
- skips and counts corrupt packets (`kvid.io.stream.SourceFaults`);
- reopens a network source up to `reconnects` times after a failure (an
  error or a timeout; a clean end is the end), each connection's times
  continuing where the previous one's ended;
- ends with the frames it had when the source fails for good, and raises
  only if it never gave a frame.
"""

from __future__ import annotations

import contextlib
import io
import os
import select
import stat
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from typing import NamedTuple

import av
import numpy as np

from kvid.io.decode import VideoDecodeError, nominal_fps, open_video, video_error
from kvid.io.stream import SourceFaults, live_timed_frames

# Schemes whose sources can be reopened after a failure.
NETWORK_SCHEMES = ("http", "https", "rtsp", "rtsps", "rtmp", "rtmps", "udp", "rtp", "tcp", "srt")
STDIN = "-"
# How often a read waiting for data checks whether it should stop.
_POLL_SECONDS = 0.1


class LiveFrame(NamedTuple):
    """One frame of a live source, as `live_frames` gives it.

    Attributes:
        connection: which connection to the source it came on (0, then 1 after a reconnect...).
        index: its number among all the frames given (at `fps` when resampled).
        seconds: its time from the source's first frame, continuing across connections.
        rate: the frame rate of `seconds`: `fps`, or what the connection declares.
        frame: `uint8 [height, width, 3]` RGB.
        arrival: the `time.monotonic()` at which the decoder gave the frame shown.
    """

    connection: int
    index: int
    seconds: float
    rate: float
    frame: np.ndarray
    arrival: float


def is_live_source(source) -> bool:
    """Whether `source` is read live: `-` (stdin), a URL, a device, a FIFO or a file object.

    Files and frame folders are not: `kvid.inference.predict_video` reads them.
    """
    if hasattr(source, "read"):
        return True
    source = os.fspath(source)
    if source == STDIN or "://" in source:
        return True
    try:
        mode = os.stat(source).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISCHR(mode)


def is_network_source(source) -> bool:
    """Whether `source` is a URL of a network protocol (one that can be reopened)."""
    if hasattr(source, "read"):
        return False
    return urllib.parse.urlsplit(os.fspath(source)).scheme.lower() in NETWORK_SCHEMES


def source_name(source) -> str:
    """What messages call `source`: its path or URL, `-`, or a file object's name."""
    if hasattr(source, "read"):
        return str(getattr(source, "name", type(source).__name__))
    return os.fspath(source)


class _Reader(io.RawIOBase):
    """A file descriptor read for FFmpeg with a timeout, and stoppable while it waits."""

    def __init__(self, fd: int, timeout: float | None, stop: threading.Event):
        super().__init__()
        self._fd, self._timeout, self._stop = fd, timeout, stop

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        size = size if size and size > 0 else io.DEFAULT_BUFFER_SIZE
        deadline = None if self._timeout is None else time.monotonic() + self._timeout
        while not self._stop.is_set():
            wait = _POLL_SECONDS
            if deadline is not None:
                wait = min(wait, deadline - time.monotonic())
                if wait <= 0:
                    raise TimeoutError(f"no data for {self._timeout:g} s")
            if select.select([self._fd], [], [], wait)[0]:
                with contextlib.suppress(BlockingIOError):
                    return os.read(self._fd, size)
        raise InterruptedError("stopped")


@contextlib.contextmanager
def _opened(source, name, format, options, timeout, stop):
    """`open_video` of a live source: its descriptor through `_Reader`, or FFmpeg's own I/O."""
    fd = close = None
    if hasattr(source, "read"):
        if hasattr(source, "fileno"):
            with contextlib.suppress(OSError, ValueError):
                fd = source.fileno()
    elif source == STDIN:
        fd = sys.stdin.buffer.fileno()
    else:
        mode = os.stat(source).st_mode if os.path.exists(source) else 0
        if stat.S_ISFIFO(mode):
            # Not blocking in `open` until a writer comes: the read waits, with its timeout.
            fd = close = os.open(source, os.O_RDONLY | os.O_NONBLOCK)
        elif stat.S_ISCHR(mode) and format is None:
            format = "v4l2"  # a camera: FFmpeg does not detect devices
    target = source if fd is None else _Reader(fd, timeout, stop)
    try:
        with open_video(
            target,
            format=format,
            options=options,
            timeout=timeout if fd is None and not hasattr(source, "read") else None,
            name=name,
        ) as opened:
            yield opened
    finally:
        if close is not None:
            os.close(close)


def _failure(error: VideoDecodeError, name: str, timeout: float | None) -> str:
    """The message of a failed read; FFmpeg's timeout says it was one."""
    if isinstance(error.__cause__, av.ExitError):
        return str(video_error(name, f"TimeoutError: no data for {timeout:g} s"))
    return str(error)


def live_frames(
    source,
    fps: float | None = None,
    *,
    format: str | None = None,
    options: dict[str, str] | None = None,
    timeout: float | None = 10.0,
    reconnects: int = 3,
    reconnect_delay: float = 1.0,
    stop: threading.Event | None = None,
    faults: SourceFaults | None = None,
    report: Callable[[str], None] | None = None,
) -> Iterator[LiveFrame]:
    """Reads a live source as it arrives, one frame at a time, through its faults.

    Args:
        source: a URL (`rtsp://`, `http(s)://`, `udp://`, `srt://`, ... as
            FFmpeg has them), a device (`/dev/video0`), a FIFO, `-` for
            standard input, or a binary file object.
        fps: resample to this rate (`kvid.io.decode.resample`); `None` keeps the frames.
        format: the container format (`"mpegts"`, `"matroska"`, `"v4l2"`...);
            `None` lets FFmpeg detect it (`v4l2` for a device).
        options: FFmpeg options of the source, e.g. `{"rtsp_transport": "tcp"}`.
        timeout: seconds without data after which the source has failed;
            `None` waits for ever.
        reconnects: how many times a network source is reopened after failures.
        reconnect_delay: seconds to wait before reopening.
        stop: when set, reading ends (within `0.1` s for descriptors, else
            at the next frame or timeout).
        faults: counts corrupt packets, reconnects and failures (a new one if `None`).
        report: called with the message of each failure as it happens.

    Yields:
        `LiveFrame`s, in order.

    Raises:
        VideoDecodeError: if the source fails before giving any frame,
            naming it and the error.
        ValueError: if `fps`, `timeout`, `reconnects` or `reconnect_delay` is out of range.
    """
    if (timeout is not None and timeout <= 0) or reconnects < 0 or reconnect_delay < 0:
        raise ValueError(
            "`timeout` must be positive or None, `reconnects` and `reconnect_delay` at least 0. "
            f"Received: timeout={timeout}, reconnects={reconnects}, "
            f"reconnect_delay={reconnect_delay}"
        )
    if fps is not None and fps <= 0:
        raise ValueError(f"`fps` must be positive. Received: fps={fps}")
    stop = stop or threading.Event()
    faults = SourceFaults() if faults is None else faults
    report = report or (lambda message: None)
    name, network = source_name(source), is_network_source(source)
    connection = index = 0
    offset = 0.0  # where this connection's times start
    while not stop.is_set():
        last, rate = None, None
        try:
            with _opened(source, name, format, options, timeout, stop) as (container, stream):
                rate = fps or nominal_fps(stream)
                for seconds, frame, arrival in live_timed_frames(
                    name, container, stream, fps, faults
                ):
                    if stop.is_set():
                        return
                    yield LiveFrame(connection, index, offset + seconds, rate, frame, arrival)
                    index, last = index + 1, seconds
            return
        except VideoDecodeError as error:
            if stop.is_set():
                return
            message = _failure(error, name, timeout)
            faults.errors.append(message)
            if not network or faults.reconnects >= reconnects:
                if not index:
                    raise VideoDecodeError(message) from error
                report(f"{message}; ending with the {index} frames received.")
                return
            faults.reconnects += 1
            report(f"{message}; reconnecting ({faults.reconnects} of {reconnects}).")
            if stop.wait(reconnect_delay):
                return
        if last is not None:
            offset += last + 1 / rate
            connection += 1
