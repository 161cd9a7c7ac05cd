"""Videos as TFRecords of `tf.train.SequenceExample` with JPEG frames (TF Model Garden layout).

Each record is one video (or segment):

- context `clip/label/index` (int64: one value, or a list of a multi-label
  video's classes), `clip/label/text` (bytes, one per label),
  `clip/media_id` (bytes: the source path, `@start-end` for a segment);
- feature list `image/encoded`: one JPEG per frame.

Reading uses TF ops only (parse, gather the sampled frames, `decode_jpeg`), so
the TFRecord path needs no Python in the input pipeline. `class_names.txt`
next to the shards lists the class names in label order.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os

import tensorflow as tf
from absl import logging

from kvid import preprocessing
from kvid.data import pipeline
from kvid.data.sources import ON_ERROR, VideoExample, index_directory
from kvid.io import atomic
from kvid.io.class_names import class_names_beside, write_class_names
from kvid.io.decode import VideoDecodeError, decode_frames, frame_positions, probe
from kvid.io.progress import progress_bar

IMAGE_KEY = "image/encoded"
LABEL_KEY = "clip/label/index"
LABEL_TEXT_KEY = "clip/label/text"
MEDIA_ID_KEY = "clip/media_id"
SHARD_SUFFIX = ".tfrecord"
# Frames decoded per call when encoding a video: each call seeks back to a keyframe, so
# a long stretch keeps that cost small (at most a GOP per stretch).
DECODE_STRETCH = 300


def _bytes(values):
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=values))


def _stored(frames, short_side):
    """`frames` resized (by `kvid.preprocessing.resize_to`) to a short side of `short_side`.

    The size is rounded to even numbers, which keep every JPEG chroma block whole.
    """
    if short_side is None:
        return frames
    height, width = frames.shape[1:3]
    scale = short_side / min(height, width)
    size = (max(2, round(height * scale / 2) * 2), max(2, round(width * scale / 2) * 2))
    resized = preprocessing.resize_to(frames, size)
    return tf.cast(tf.round(tf.clip_by_value(resized, 0.0, 255.0)), tf.uint8)


def encode_video(
    example: VideoExample,
    class_names=None,
    short_side: int | None = None,
    fps: float | None = None,
    quality: int = 90,
    media_id: str | None = None,
) -> bytes:
    """Decodes a video and serializes it as a `SequenceExample` with JPEG frames.

    Args:
        example: the video (or segment) and its label.
        class_names: names for `clip/label/text`.
        short_side: resize frames so their short side has this length.
        fps: resample to this frame rate.
        quality: JPEG quality.
        media_id: `clip/media_id`; defaults to `example.video_id` (a pipeline
            reading a local copy of a remote file records the remote path).

    Returns:
        The serialized record.

    Raises:
        VideoDecodeError: if the video cannot be read.
    """
    info = probe(example.path)
    positions = frame_positions(info, fps=fps, start=example.start, end=example.end)
    jpegs = []
    # A stretch at a time: a long video's decoded frames never all wait for their JPEGs.
    for first in range(0, len(positions), DECODE_STRETCH):
        frames = decode_frames(info, positions[first : first + DECODE_STRETCH])
        frames = _stored(frames, short_side)
        jpegs += [tf.io.encode_jpeg(frame, quality=quality).numpy() for frame in frames]
    labels = list(example.label_set) if example.labels else [example.label]
    texts = [class_names[i] if class_names and i >= 0 else "" for i in labels]
    context = tf.train.Features(
        feature={
            LABEL_KEY: tf.train.Feature(int64_list=tf.train.Int64List(value=labels)),
            LABEL_TEXT_KEY: _bytes([text.encode() for text in texts]),
            MEDIA_ID_KEY: _bytes([(media_id or example.video_id).encode()]),
        }
    )
    frame_list = tf.train.FeatureList(feature=[_bytes([jpeg]) for jpeg in jpegs])
    record = tf.train.SequenceExample(
        context=context, feature_lists=tf.train.FeatureLists(feature_list={IMAGE_KEY: frame_list})
    )
    return record.SerializeToString()


def shard_count(num_shards: int, num_examples: int) -> int:
    """Shards a conversion writes: `num_shards`, but no more than there are examples (at least 1).

    The one rule of `write_tfrecords` and of `kvid.beam`'s writer, so both name the same files.
    """
    return max(1, min(num_shards, num_examples))


def shard_paths(output_dir: str, prefix: str, num_shards: int) -> list[str]:
    """The shard files `<prefix>-0000i-of-0000n.tfrecord` of a conversion, in order."""
    return [
        os.path.join(output_dir, f"{prefix}-{i:05d}-of-{num_shards:05d}{SHARD_SUFFIX}")
        for i in range(num_shards)
    ]


@dataclasses.dataclass(frozen=True)
class ConversionSummary:
    """What `write_tfrecords` did: shard files written, videos written, skipped `(path, error)`."""

    shards: list[str]
    written: int
    skipped: list[tuple[str, str]]


def write_tfrecords(
    examples,
    output_dir: str,
    class_names=None,
    num_shards: int = 8,
    short_side: int | None = None,
    fps: float | None = None,
    on_error: str = "skip",
    prefix: str = "videos",
    verbose: bool = True,
) -> ConversionSummary:
    """Writes examples to `num_shards` TFRecord shards (round-robin), with a progress bar.

    Args:
        examples: `VideoExample`s.
        output_dir: created if missing; gets `<prefix>-0000i-of-0000n.tfrecord`
            shards and `class_names.txt`, each written under a temporary name
            and renamed when all are complete.
        class_names: class names in label order.
        num_shards: number of shard files.
        short_side: resize frames so their short side has this length.
        fps: resample to this frame rate.
        on_error: `"skip"` (warn per file, listed in the summary) or `"raise"`.
        prefix: shard file name prefix.
        verbose: show a progress bar (`kvid.io.progress`) on stderr.

    Returns:
        A `ConversionSummary`.
    """
    if on_error not in ON_ERROR:
        raise ValueError(f"`on_error` must be one of {ON_ERROR}. Received: on_error={on_error!r}")
    tf.io.gfile.makedirs(output_dir)
    num_shards = shard_count(num_shards, len(examples))
    shards = shard_paths(output_dir, prefix, num_shards)
    bar = progress_bar(
        len(examples),
        "video",
        enabled=verbose,
        title=f"Writing {len(examples)} videos to {num_shards} TFRecord shards in {output_dir}",
    )
    written, skipped = 0, []
    # Shards are written under temporary names, synced, then renamed one after the other (a
    # few microseconds), so a conversion cut short leaves no shard that a reader would take
    # for a whole one, and at most that instant leaves part of a new set.
    with contextlib.ExitStack() as files:
        temporaries = [
            files.enter_context(atomic.atomic_path(path, durable=False)) for path in shards
        ]
        writers = [tf.io.TFRecordWriter(path) for path in temporaries]
        try:
            for step, example in enumerate(examples):
                try:
                    record = encode_video(example, class_names, short_side, fps)
                except VideoDecodeError as err:
                    if on_error == "raise":
                        raise
                    logging.warning("Skipping a video: %s", err)
                    skipped.append((example.path, str(err)))
                else:
                    writers[written % num_shards].write(record)
                    written += 1
                bar.update(step + 1, skipped=len(skipped))
        finally:
            for writer in writers:
                writer.close()
        for path in temporaries:
            atomic.fsync(path)
    bar.finish(skipped=len(skipped))
    if class_names:
        write_class_names(output_dir, class_names)
    if skipped:
        logging.warning(
            "Skipped %d of %d videos that could not be read.", len(skipped), len(examples)
        )
    return ConversionSummary(shards, written, skipped)


def convert_directory(
    directory: str,
    output_dir: str,
    num_shards: int = 8,
    short_side: int | None = None,
    fps: float | None = None,
    on_error: str = "skip",
    verbose: bool = True,
) -> ConversionSummary:
    """Converts a directory with one subdirectory of videos per class into TFRecord shards.

    See `write_tfrecords` for the arguments; labels are inferred from the
    class subdirectories as in `video_dataset_from_directory`.
    """
    examples, class_names = index_directory(directory, "inferred")
    if not examples:
        raise ValueError(f"No videos found in directory {directory!r}.")
    return write_tfrecords(
        examples,
        output_dir,
        class_names,
        num_shards=num_shards,
        short_side=short_side,
        fps=fps,
        on_error=on_error,
        verbose=verbose,
    )


def parse_record_labels(serialized):
    """Parses one record into `(jpeg_frames [N] string, labels int64 [k], media_id string)`."""
    context, sequence = tf.io.parse_single_sequence_example(
        serialized,
        context_features={
            LABEL_KEY: tf.io.VarLenFeature(tf.int64),
            MEDIA_ID_KEY: tf.io.FixedLenFeature([], tf.string, default_value=""),
        },
        sequence_features={IMAGE_KEY: tf.io.FixedLenSequenceFeature([], tf.string)},
    )
    return sequence[IMAGE_KEY], tf.sparse.to_dense(context[LABEL_KEY]), context[MEDIA_ID_KEY]


def parse_record(serialized):
    """Parses one record into `(jpeg_frames [N] string, label int64, media_id string)`.

    `label` is the record's one label (`-1` without one); a record with several fails an
    in-graph check (read those with `label_mode="multi_hot"`).
    """
    jpegs, labels, media_id = parse_record_labels(serialized)
    single = tf.debugging.assert_less_equal(
        tf.size(labels),
        1,
        message=f'A record has several {LABEL_KEY} labels: read it with label_mode="multi_hot"',
    )
    with tf.control_dependencies([single]):
        label = tf.concat([labels, [-1]], 0)[0]
    return jpegs, label, media_id


def record_targets(serialized, label_mode, num_classes):
    """`(jpeg_frames, label, media_id)` of a record, the label encoded for `label_mode`."""
    if label_mode == "multi_hot":
        jpegs, labels, media_id = parse_record_labels(serialized)
        hot = tf.reduce_sum(tf.one_hot(labels, num_classes), axis=0)
        return jpegs, tf.minimum(hot, 1.0), media_id
    jpegs, label, media_id = parse_record(serialized)
    return jpegs, pipeline.encode_labels(label, label_mode or "int", num_classes), media_id


def _clip_config(clip, clip_options) -> pipeline.ClipConfig:
    config = pipeline.clip_config(clip, clip_options)
    if config.fps is not None:
        raise ValueError(
            "TFRecords keep the frame rate they were written at (`write_tfrecords(fps=...)`). "
            f"Received: fps={config.fps}"
        )
    return config


def shard_class_names(file_pattern: str) -> list[str] | None:
    """The `class_names.txt` next to the first shard matching `file_pattern`, or `None`."""
    files = sorted(tf.io.gfile.glob(file_pattern))
    if not files:
        raise ValueError(f"No TFRecord files match file_pattern={file_pattern!r}.")
    names = class_names_beside(files[0])
    return None if names is None else list(names)


def video_dataset_from_tfrecords(
    file_pattern: str,
    label_mode: str | None = "int",
    batch_size: int | None = 32,
    shuffle: bool = True,
    seed: int | None = None,
    *,
    training: bool = True,
    clips_per_video: int = 1,
    shuffle_buffer: int = 1024,
    clip: pipeline.ClipConfig | None = None,
    **clip_options,
):
    """Clips from TFRecord shards written by `write_tfrecords` (or the Model Garden layout).

    Same elements as `video_dataset_from_directory`; only TF ops run per
    element, so it scales with cores. Frame-rate resampling happens when
    converting (`write_tfrecords(fps=...)`).

    Args:
        file_pattern: glob of the shards.
        label_mode: `"int"`, `"categorical"`, `"binary"`, `"multi_hot"`
            (float32 k-hot of a record's label list) or `None`.
        batch_size: clips per batch, `None` for unbatched.
        shuffle: shuffle shards and records (every epoch).
        seed: seeds shuffling and every random draw.
        training: random clips and augmentation; else centred clip and crop.
        clips_per_video: training clips drawn per record per epoch.
        shuffle_buffer: records in the shuffle buffer.
        clip: the `kvid.data.ClipConfig`, as in `video_dataset_from_directory`;
            `fps` is chosen when writing.
        **clip_options: or its fields as keywords.

    Returns:
        A prefetched `tf.data.Dataset` with attribute `class_names`.
    """
    class_names = shard_class_names(file_pattern)
    pipeline.check_label_mode(label_mode, class_names)
    config = _clip_config(clip, clip_options)
    seed = pipeline.default_seed(seed)
    files = tf.data.Dataset.list_files(file_pattern, shuffle=shuffle and training, seed=seed)
    ds = files.interleave(
        tf.data.TFRecordDataset,
        cycle_length=tf.data.AUTOTUNE,
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    if training and clips_per_video > 1:
        ds = ds.flat_map(
            lambda record: tf.data.Dataset.from_tensors(record).repeat(clips_per_video)
        )
    if shuffle and training:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    ds = tf.data.Dataset.zip(ds, pipeline.seeds(seed))
    num_classes = None if class_names is None else len(class_names)
    augmentation = config.augmentation() if training else None

    def load(serialized, element_seed):
        jpegs, label, _ = record_targets(serialized, label_mode, num_classes)
        sample_seed, clip_seed = tf.unstack(tf.random.experimental.stateless_split(element_seed, 2))
        indices = preprocessing.sample_indices(
            tf.shape(jpegs)[0],
            config.num_frames,
            config.frame_step,
            config.sampling,
            sample_seed if training else None,
        )
        frames = preprocessing.decode_jpeg(tf.gather(jpegs, indices))
        if training:
            clip = pipeline.finish_training_clip(frames, clip_seed, config, augmentation)
        else:
            clip = pipeline.finish_eval_views(frames[None], config, num_crops=1)[0]
        if label_mode is None:
            return clip
        return clip, label

    ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE)
    if batch_size is not None:
        ds = ds.batch(batch_size)
    ds = ds.prefetch(tf.data.AUTOTUNE)
    ds.class_names = class_names
    return ds


def tfrecord_evaluation_dataset(
    file_pattern: str,
    num_clips: int = 10,
    num_crops: int = 1,
    *,
    multi_label: bool = False,
    clip: pipeline.ClipConfig | None = None,
    **clip_options,
):
    """Video-level evaluation from TFRecords: elements `(views, label, video_id)`.

    Same element structure and clip options as `kvid.data.video_evaluation_dataset`
    (`multi_label`: `label` is the float32 k-hot of the record's label list).
    """
    class_names = shard_class_names(file_pattern)
    label_mode = "multi_hot" if multi_label else "int"
    pipeline.check_label_mode(label_mode if multi_label else None, class_names)
    num_classes = None if class_names is None else len(class_names)
    config = dataclasses.replace(_clip_config(clip, clip_options), augment=False)
    num_frames = config.num_frames
    files = tf.data.Dataset.list_files(file_pattern, shuffle=False)
    ds = tf.data.TFRecordDataset(files)

    def load(serialized):
        jpegs, label, media_id = record_targets(serialized, label_mode, num_classes)
        indices = preprocessing.multi_clip_indices(
            tf.shape(jpegs)[0], config.num_frames, config.frame_step, config.sampling, num_clips
        )
        frames = preprocessing.decode_jpeg(tf.gather(jpegs, tf.reshape(indices, [-1])))
        frames = tf.reshape(frames, tf.concat([[num_clips, num_frames], tf.shape(frames)[1:]], 0))
        return (
            pipeline.finish_eval_views(frames, config, num_crops),
            label,
            media_id,
        )

    ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
    ds.class_names = class_names
    return ds
