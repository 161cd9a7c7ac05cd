"""Video input pipelines: decoding, clip sampling, clip-consistent augmentation, datasets."""

from kvid.data import augment, decode, pipeline, sampling, sources, tfrecord
from kvid.data.augment import ClipAugmentation
from kvid.data.decode import (
    VideoDecodeError,
    VideoInfo,
    decode_frames,
    frame_positions,
    probe,
    read_video,
)
from kvid.data.encode import write_video
from kvid.data.pipeline import (
    ClipConfig,
    video_dataset_from_annotations,
    video_dataset_from_directory,
    video_evaluation_dataset,
)
from kvid.data.sources import VideoExample, index_directory, read_annotations
from kvid.data.tfrecord import (
    convert_directory,
    tfrecord_evaluation_dataset,
    video_dataset_from_tfrecords,
    write_tfrecords,
)
from kvid.preprocessing import (
    center_crop,
    normalize,
    random_crop,
    random_resized_crop,
    resize,
    three_crops,
)

__all__ = [
    "ClipAugmentation",
    "ClipConfig",
    "VideoDecodeError",
    "VideoExample",
    "VideoInfo",
    "augment",
    "center_crop",
    "convert_directory",
    "decode",
    "decode_frames",
    "frame_positions",
    "index_directory",
    "normalize",
    "pipeline",
    "probe",
    "random_crop",
    "random_resized_crop",
    "read_annotations",
    "read_video",
    "resize",
    "sampling",
    "sources",
    "tfrecord",
    "tfrecord_evaluation_dataset",
    "three_crops",
    "video_dataset_from_annotations",
    "video_dataset_from_directory",
    "video_dataset_from_tfrecords",
    "video_evaluation_dataset",
    "write_tfrecords",
    "write_video",
]
