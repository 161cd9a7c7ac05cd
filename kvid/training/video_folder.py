"""Class-per-folder video datasets for training and evaluation.

One centre clip per video (decoded with `kvid.data.decode`), short side
resized, centre crop: the exported model's steps, though not its exact
rounding (this rounds the long side, the crop offset and the pixels back to
uint8; the export floors the long side and stays in float). `train` uses it for
both splits: the built-in dataset needs no augmentation (a horizontal flip
would turn `move_left` into `move_right`); `kvid.data.video_dataset_from_directory`
is the pipeline with sampling and augmentation for real videos.
"""

from __future__ import annotations

import os

import tensorflow as tf

from kvid.data import decode, sources


def list_videos(directory: str | os.PathLike) -> tuple[list[str], list[int], list[str]]:
    """Finds `directory/<class_name>/<video>` files and frame folders, as `kvid.data` does.

    Returns:
        `(paths, labels, class_names)`, classes in alphabetical order.

    Raises:
        ValueError: if `directory` is not a directory or has no videos in class folders.
    """
    directory = os.fspath(directory)
    examples, class_names = sources.index_directory(directory)
    if not examples:
        raise ValueError(
            f"No videos ({', '.join(sources.VIDEO_EXTENSIONS)}) in class folders of {directory!r}"
        )
    return [e.path for e in examples], [e.label for e in examples], class_names


def resize_short_side(frames, size: int):
    """Resizes uint8 `(..., height, width, 3)` frames so the short side is `size` (uint8 out)."""
    full_shape = tf.shape(frames)
    shape = tf.cast(full_shape[-3:-1], tf.float32)
    scale = size / tf.reduce_min(shape)
    target = tf.maximum(tf.cast(tf.round(shape * scale), tf.int32), size)
    flat = tf.reshape(frames, tf.concat([[-1], full_shape[-3:]], 0))
    resized = tf.image.resize(flat, target, antialias=True)
    resized = tf.reshape(resized, tf.concat([full_shape[:-3], target, full_shape[-1:]], 0))
    return tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8)


def centre_crop(frames, size: int):
    """The central `size x size` square of `(..., height, width, 3)` frames at least that large."""
    shape = tf.shape(frames)
    top = (shape[-3] - size) // 2
    left = (shape[-2] - size) // 2
    return frames[..., top : top + size, left : left + size, :]


def centre_clip(video, num_frames: int):
    """The `num_frames` central frames (the last frame repeated if the video is shorter)."""
    length = tf.shape(video)[0]
    start = tf.maximum(length - num_frames, 0) // 2
    return tf.gather(video, tf.minimum(start + tf.range(num_frames), length - 1))


def clip_dataset(
    directory: str | os.PathLike,
    *,
    num_frames: int,
    size: int,
    batch_size: int,
    shuffle: bool = False,
    seed: int = 0,
    reverse: bool = False,
    drop_remainder: bool = False,
) -> tuple[tf.data.Dataset, list[str], int]:
    """One clip per video as `(uint8 clips, int labels)` batches.

    Args:
        directory: the class-per-folder root.
        num_frames: frames per clip (the centre ones).
        size: the short side is resized to `size`, then the centre square is cropped.
        batch_size: clips per batch.
        shuffle: reshuffle the videos every epoch (seeded).
        seed: the shuffle seed.
        reverse: play every clip backwards (labels unchanged).
        drop_remainder: drop a last batch smaller than `batch_size`.

    Returns:
        `(dataset, class_names, number of videos)`.
    """
    paths, labels, class_names = list_videos(directory)

    def load(path, label):
        video = tf.numpy_function(lambda p: decode.read_video(p.decode()), [path], tf.uint8)
        video = tf.ensure_shape(video, [None, None, None, 3])
        clip = centre_clip(video, num_frames)
        if reverse:
            clip = clip[::-1]
        clip = centre_crop(resize_short_side(clip, size), size)
        return tf.ensure_shape(clip, [num_frames, size, size, 3]), label

    dataset = tf.data.Dataset.from_tensor_slices((paths, labels))
    if shuffle:
        dataset = dataset.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.map(load, num_parallel_calls=tf.data.AUTOTUNE)
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    return dataset.prefetch(tf.data.AUTOTUNE), class_names, len(paths)
