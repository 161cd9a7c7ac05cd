"""Files in and out: video decoding, streaming, live sources, writing, class names, safe files.

And the one progress bar of long work (`kvid.io.progress`).
"""

from kvid.io import atomic, class_names, decode, encode, progress, sources, stream
from kvid.io.class_names import (
    CLASS_NAMES_FILE,
    class_names_beside,
    read_class_names,
    write_class_names,
)
from kvid.io.decode import (
    VideoDecodeError,
    VideoInfo,
    decode_frames,
    frame_positions,
    probe,
    read_video,
)
from kvid.io.encode import write_video
from kvid.io.progress import ProgressBar, progress_bar
from kvid.io.stream import iter_frames, iter_timed_frames, stream_info

__all__ = [
    "CLASS_NAMES_FILE",
    "ProgressBar",
    "VideoDecodeError",
    "VideoInfo",
    "atomic",
    "class_names",
    "class_names_beside",
    "decode",
    "decode_frames",
    "encode",
    "frame_positions",
    "iter_frames",
    "iter_timed_frames",
    "probe",
    "progress",
    "progress_bar",
    "read_class_names",
    "read_video",
    "sources",
    "stream",
    "stream_info",
    "write_class_names",
    "write_video",
]
