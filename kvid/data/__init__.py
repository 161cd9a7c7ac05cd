"""Video input pipelines: decoding, clip sampling, clip-consistent augmentation, datasets."""

from kvid.data import augment, pipeline, sources, synthetic, tfrecord
from kvid.data.augment import ClipAugmentation
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

__all__ = [
    "ClipAugmentation",
    "ClipConfig",
    "VideoExample",
    "augment",
    "convert_directory",
    "index_directory",
    "pipeline",
    "read_annotations",
    "sources",
    "synthetic",
    "tfrecord",
    "tfrecord_evaluation_dataset",
    "video_dataset_from_annotations",
    "video_dataset_from_directory",
    "video_dataset_from_tfrecords",
    "video_evaluation_dataset",
    "write_tfrecords",
]
