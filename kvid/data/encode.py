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
