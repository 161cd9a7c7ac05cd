"""Files in and out: video decoding and streaming, video writing, crash-safe writes."""

from kvid.io import atomic, decode, encode, stream
from kvid.io.decode import (
    VideoDecodeError,
    VideoInfo,
    decode_frames,
    frame_positions,
    probe,
    read_video,
)
from kvid.io.encode import write_video
from kvid.io.stream import iter_frames, iter_timed_frames, stream_info

__all__ = [
    "VideoDecodeError",
    "VideoInfo",
    "atomic",
    "decode",
    "decode_frames",
    "encode",
    "frame_positions",
    "iter_frames",
    "iter_timed_frames",
    "probe",
    "read_video",
    "stream",
    "stream_info",
    "write_video",
]
