"""Writing frames to a video file with PyAV (test fixtures, benchmarks, exports)."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np


def write_video(
    path: str,
    frames,
    fps: float = 30.0,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    keyframe_interval: int | None = None,
    times=None,
    options: dict[str, str] | None = None,
) -> str:
    """Encodes `frames` into a video file; the container follows the extension.

    Args:
        path: output file (`.mp4`, `.avi`, `.webm`, `.mkv`, ...).
        frames: `uint8 [T, H, W, C]` with C = 3 (RGB), 4 (RGBA) or 1 (gray).
        fps: nominal frame rate.
        codec: FFmpeg encoder, e.g. `"libx264"`, `"mpeg4"`, `"libvpx-vp9"`, `"ffv1"`.
        pix_fmt: pixel format of the stream (`"yuv420p"`, `"gray"`, `"rgba"`, ...).
        keyframe_interval: frames between keyframes (GOP size), `None` for the codec default.
        times: optional presentation time of each frame in seconds (variable
            frame rate); default `i / fps`.
        options: encoder options, e.g. `{"crf": "18"}` for libx264 or
            `{"qmax": "2"}` for near-lossless MPEG-4.

    Returns:
        `path`.
    """
    frames = np.asarray(frames, np.uint8)
    if frames.ndim != 4 or frames.shape[-1] not in (1, 3, 4):
        raise ValueError(f"`frames` must be [T, H, W, 1|3|4] uint8. Received: {frames.shape}")
    source_format = {1: "gray", 3: "rgb24", 4: "rgba"}[frames.shape[-1]]
    rate = Fraction(fps).limit_denominator(1001)
    with av.open(path, "w") as container:
        stream = container.add_stream(codec, rate=rate, options=options or {})
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = pix_fmt
        if keyframe_interval is not None:
            stream.codec_context.gop_size = keyframe_interval
        if times is not None:
            # Millisecond timestamps are enough for any real frame rate.
            stream.codec_context.time_base = Fraction(1, 1000)
        for i, image in enumerate(frames):
            image = image[..., 0] if source_format == "gray" else image
            frame = av.VideoFrame.from_ndarray(image, format=source_format)
            if times is not None:
                frame.pts = round(float(times[i]) * 1000)
                frame.time_base = Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_long_video(
    path: str,
    seconds: float,
    height: int = 1080,
    width: int = 1920,
    fps: int = 30,
    segment_seconds: float = 10.0,
) -> str:
    """Writes a long synthetic H.264 video quickly (benchmarks and memory tests).

    `segment_seconds` of a square crossing a gradient (cheap to encode at the
    `ultrafast` preset) are encoded once, with a keyframe at the start of the
    segment; the segment's packets are then copied with shifted timestamps
    until the video lasts `seconds`. Writing an hour of 1080p costs the
    encoding of one segment plus the copying, and decoding it costs what any
    H.264 stream of that resolution does.

    Args:
        path: the output `.mp4` (or `.mkv`) file.
        seconds: its duration.
        height: frame height.
        width: frame width.
        fps: frames per second (an int, so segments join exactly).
        segment_seconds: length of the encoded part that repeats.

    Returns:
        `path`.
    """
    segment = max(1, min(round(segment_seconds * fps), round(seconds * fps)))
    total = max(1, round(seconds * fps))
    rows = np.linspace(0, 160, height, dtype=np.float32)[:, None]
    columns = np.linspace(0, 80, width, dtype=np.float32)[None, :]
    channels = [rows + columns, 120 - rows / 2 + columns, 200 - columns + 0 * rows]
    background = np.stack(channels, -1).astype(np.uint8)
    side = max(height // 6, 2)
    time_base = Fraction(1, fps)
    packets = []
    with av.open(path, "w") as container:
        stream = container.add_stream("libx264", rate=fps, options={"preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.gop_size = segment
        for i in range(segment):
            image = background.copy()
            top = int((height - side) * (0.5 + 0.4 * np.sin(2 * np.pi * i / segment)))
            left = int((width - side) * i / max(segment - 1, 1))
            image[top : top + side, left : left + side] = (255, 255, 255)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = i, time_base
            for packet in stream.encode(frame):
                packets.append(packet)
        packets.extend(stream.encode())
        # Encoder packets count frames (time base 1 / fps); the muxer rescales copies.
        first = packets[0].pts
        for repeat in range(-(-total // segment)):
            offset = repeat * segment - first
            for packet in packets:
                # The last segment may be partial: drop frames past the wanted length.
                if packet.pts is None or packet.pts + offset >= total:
                    continue
                copy = av.Packet(bytes(packet))
                copy.pts, copy.dts = packet.pts + offset, packet.dts + offset
                copy.time_base = packet.time_base
                copy.is_keyframe = packet.is_keyframe
                copy.stream = stream
                container.mux(copy)
    return path


def timed_chunks(path: str) -> list[tuple[float, bytes]]:
    """A stream file's bytes cut where its video packets start, each with its decoding time.

    What a live source sends, and when: tests and benchmarks write chunk `i`
    at `seconds_i` after the first (on a pipe, a FIFO or a socket) to play a
    file as a camera or a feed would. The chunks join to the file's bytes.

    Args:
        path: a stream format whose packets lie in order in the file (`.ts`, `.mkv`).

    Returns:
        `[(seconds from the first packet, bytes), ...]`.
    """
    with av.open(path) as container:
        stream = container.streams.video[0]
        marks = [
            (packet.pos, float(packet.dts * stream.time_base))
            for packet in container.demux(stream)
            if packet.size > 0 and packet.dts is not None and packet.pos >= 0
        ]
    with open(path, "rb") as f:
        data = f.read()
    first = marks[0][1]
    bounds = [0] + [pos for pos, _ in marks[1:]] + [len(data)]
    return [
        (seconds - first, data[begin:end])
        for (_, seconds), begin, end in zip(marks, bounds[:-1], bounds[1:], strict=True)
    ]
