"""`tf.data` pipelines of clips from folders of videos, annotation files and TFRecords.

Element structure (the contract the trainer and the exporter build on):

- training / validation datasets: `(clips, labels)` batches, `clips` float32
  `[batch, num_frames, height, width, 3]`, `labels` as in
  `keras.utils.image_dataset_from_directory` (`"int"`: int32 `[batch]`,
  `"categorical"`: float32 `[batch, num_classes]`, `"binary"`: float32
  `[batch, 1]`; `"multi_hot"`: float32 k-hot `[batch, num_classes]`, several
  classes per video; `label_mode=None`: clips only). Pixels are in `[0, 255]`
  with `model=None`, else in the registered convention of `model`.
- evaluation datasets (`video_evaluation_dataset`): one element per video,
  `(views, label, video_id)`: `views` float32 `[num_clips * num_crops, T, H, W, 3]`
  (clip-major: view `k * num_crops + c` is crop `c` of clip `k`), `label`
  int32 scalar (float32 k-hot `[num_classes]` with `multi_label`),
  `video_id` string scalar (the path, `@start-end` for a segment).

Randomness is stateless: each element's seed comes from
`tf.data.Dataset.random(seed, rerandomize_each_iteration=True)`, so the same
`seed` gives the same data, every epoch draws new clips, and the draw does not
depend on thread timing.
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from kvid import models
from kvid import preprocessing as preprocessing_lib
from kvid.data import augment as augment_lib
from kvid.data.sources import (
    CLIP_LABELS,
    ProbedExample,
    index_directory,
    multi_hot,
    probe_examples,
    read_annotations,
    segment_targets,
)
from kvid.io.decode import VideoDecodeError, decode_frames

LABEL_MODES = ("int", "categorical", "binary", "multi_hot", None)
SUBSETS = ("training", "validation", "both", None)
AUTOTUNE = tf.data.AUTOTUNE


@dataclasses.dataclass(frozen=True)
class ClipConfig:
    """How clips are sampled, resized, cropped, augmented and normalised.

    The spatial transform is a `kvid.preprocessing.Preprocessing`: that of
    `model` when one is named (so evaluation views are exactly what the
    model's exported serving graph computes), else a short-side resize to
    `8/7 * min(image_size)` (128 for 112, 256 for 224) and no normalisation.

    Attributes:
        num_frames: frames per clip.
        frame_step: step between frames, or an inclusive `(low, high)` range
            drawn per clip in training (speed augmentation).
        sampling: `"consecutive"` or `"uniform"` (TSN segments).
        image_size: `(height, width)` of the crops; `None`: the crop of
            `model`'s convention, or `(112, 112)` without a model. With a
            model, another size scales the convention's resize with the crop
            (`kvid.preprocessing.rescaled`), as `kvid.models.model_convention`
            does for a model with that input size: its export, evaluation and
            prediction make the same clips.
        fps: resample videos to this frame rate before sampling (`None`: keep).
        scale_range: training scale jitter: the resized frame is scaled by a
            factor drawn in this inclusive range before the random crop
            (default `(1, 1.25)`: short side 128-160 for a 112 crop).
            `(1, 1)` with a centre crop is the evaluation transform.
        augment: extra augmentation in training: `True` (horizontal flip),
            `False`/`None`, a Keras image preprocessing layer, a list of them
            (each draws once per clip), or a callable `(clip, seed) -> clip`.
        model: registry key, `ModelSpec`, `Preprocessing` or a built model
            (its recorded convention) whose resize, crop and normalisation to
            apply; `None` keeps pixels as float32 in `[0, 255]` (then use `kvid.preprocess_input`).
        preprocessing: the resulting `Preprocessing` (derived, not an argument).
    """

    num_frames: int = 16
    frame_step: int | tuple[int, int] = 1
    sampling: str = "consecutive"
    image_size: tuple[int, int] | None = None
    fps: float | None = None
    scale_range: tuple[float, float] = (1.0, 1.25)
    augment: object = True
    model: object = None
    preprocessing: preprocessing_lib.Preprocessing = dataclasses.field(init=False)

    def __post_init__(self):
        if self.num_frames < 1:
            raise ValueError(f"`num_frames` must be >= 1. Received: num_frames={self.num_frames}")
        preprocessing_lib.draw_frame_step(self.frame_step)  # validates
        if self.sampling not in preprocessing_lib.SAMPLINGS:
            raise ValueError(
                f"`sampling` must be one of {preprocessing_lib.SAMPLINGS}. "
                f"Received: sampling={self.sampling!r}"
            )
        low, high = self.scale_range
        if not 0 < low <= high:
            raise ValueError(
                "`scale_range` must be (low, high) with 0 < low <= high. "
                f"Received: scale_range={self.scale_range}"
            )
        size = None
        if self.image_size is not None:
            size = tuple(int(s) for s in self.image_size)
            if len(size) != 2 or min(size) < 1:
                raise ValueError(
                    f"`image_size` must be (height, width). Received: image_size={self.image_size}"
                )
        if self.model is None:
            size = size or (112, 112)
            convention = preprocessing_lib.Preprocessing(
                num_frames=self.num_frames,
                crop_size=size,
                resize=round(min(size) * 8 / 7),
                pixel_range=(0.0, 255.0),
            )
        elif isinstance(self.model, keras.Model):
            convention = models.model_convention(self.model, size=size)
        else:
            convention = models.get_preprocessing(self.model)
            if size is not None:
                # The rule the model's export, evaluation and prediction follow too.
                convention = preprocessing_lib.rescaled(convention, size)
        object.__setattr__(self, "image_size", convention.crop_shape)
        object.__setattr__(self, "preprocessing", convention)

    def augmentation(self):
        """The training augmentation as a `(clip, seed) -> clip` callable, or `None`."""
        if self.augment is True:
            return augment_lib.ClipAugmentation(keras.layers.RandomFlip("horizontal"))
        if self.augment is None or self.augment is False:
            return None
        if hasattr(self.augment, "get_random_transformation") or isinstance(
            self.augment, (list, tuple)
        ):
            return augment_lib.ClipAugmentation(self.augment)
        if callable(self.augment):
            return self.augment
        raise ValueError(
            "`augment` must be a bool, a Keras image preprocessing layer, a list of them or a "
            f"callable (clip, seed) -> clip. Received: augment={self.augment!r}"
        )


def clip_config(clip: ClipConfig | None, clip_options: dict) -> ClipConfig:
    """The `ClipConfig` of a dataset entry point: `clip`, or one made of the keywords.

    Raises:
        ValueError: for both, or for a keyword that is no `ClipConfig` field.
    """
    if clip is not None:
        if clip_options:
            raise ValueError(
                "Pass the clip options in `clip` or as keywords, not both. "
                f"Received: clip={clip!r} and {sorted(clip_options)}"
            )
        return clip
    fields = {f.name for f in dataclasses.fields(ClipConfig) if f.init}
    unknown = sorted(set(clip_options) - fields)
    if unknown:
        raise ValueError(f"Unknown clip options {unknown}; a `ClipConfig` takes {sorted(fields)}.")
    return ClipConfig(**clip_options)


def seeds(seed):
    """A dataset of `[2]` int64 seeds, different every iteration, reproducible from `seed`."""
    return tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)


def finish_training_clip(frames, seed, config: ClipConfig, augmentation=None):
    """Resizes, crops, augments and normalises one decoded training clip `uint8 [T, H, W, 3]`.

    `augmentation` is `config.augmentation()`, made once outside the traced
    function (Keras layers create their seed variables when constructed).
    """
    crop_seed, augment_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    clip = preprocessing_lib.random_resized_crop(
        frames, config.preprocessing, crop_seed, config.scale_range
    )
    if augmentation is not None:
        clip = augmentation(clip, augment_seed)
    return _normalize(clip, config)


def finish_eval_views(frames, config: ClipConfig, num_crops: int):
    """Resizes, crops and normalises `[K, T, H, W, 3]` frames into `[K * num_crops, T, h, w, 3]`.

    With one crop, each view is `kvid.preprocessing.preprocess_frames` of its
    clip: what the model's exported `serving_default` computes.
    """
    if num_crops not in (1, 3):
        raise ValueError(f"`num_crops` must be 1 or 3. Received: num_crops={num_crops}")
    convention = config.preprocessing
    resized = preprocessing_lib.resize(frames, convention)
    if num_crops == 1:
        views = preprocessing_lib.center_crop(resized, convention.crop_shape)
    else:
        # [3, K, T, h, w, 3] -> clip-major [K * 3, T, h, w, 3].
        crops = preprocessing_lib.three_crops(resized, convention.crop_shape)
        shape = tf.shape(crops)
        crops = tf.transpose(crops, [1, 0, 2, 3, 4, 5])
        views = tf.reshape(crops, tf.concat([[-1], shape[2:]], 0))
    height, width = convention.crop_shape
    views = tf.ensure_shape(views, [None, None, height, width, 3])
    return _normalize(views, config)


def _normalize(clip, config):
    return preprocessing_lib.normalize(clip, config.preprocessing)


def encode_labels(labels, label_mode, num_classes):
    """Formats int labels like `keras.utils.image_dataset_from_directory` (k-hot pass through)."""
    if label_mode == "multi_hot":
        return tf.cast(labels, tf.float32)
    if label_mode == "categorical":
        return tf.one_hot(labels, num_classes)
    if label_mode == "binary":
        return tf.cast(labels, tf.float32)[..., None]
    return tf.cast(labels, tf.int32)


class _Decoder:
    """Decodes clips of probed examples in `tf.numpy_function` (PyAV releases the GIL)."""

    def __init__(self, probed: list[ProbedExample], on_error: str):
        self.probed = probed
        self.on_error = on_error
        self.failed: set[int] = set()

    def __call__(self, index, indices):
        entry = self.probed[int(index)]
        flat = np.asarray(indices).reshape([-1])
        try:
            frames = decode_frames(entry.info, entry.positions[flat])
        except VideoDecodeError:
            if self.on_error == "raise":
                raise
            if int(index) not in self.failed:
                self.failed.add(int(index))
                logging.warning(
                    "Skipping %s: it could not be decoded (%d videos skipped while decoding).",
                    entry.example.video_id,
                    len(self.failed),
                )
            return np.zeros((*np.shape(indices), 1, 1, 3), np.uint8), False
        return frames.reshape((*np.shape(indices), *frames.shape[1:])), True

    def map_fn(self, index, indices):
        """The TF side: `uint8 [*indices.shape, H, W, 3]` frames and an `ok` flag."""
        frames, ok = tf.numpy_function(self, [index, indices], [tf.uint8, tf.bool], stateful=False)
        frames.set_shape(indices.shape.concatenate([None, None, 3]))
        ok.set_shape([])
        return frames, ok

    def segment_targets_fn(self, index, indices, num_classes: int):
        """float32 `[num_classes]` k-hot of the segments under the frames `indices` sample."""

        def targets(index, indices):
            entry = self.probed[int(index)]
            times = entry.info.times[entry.positions[np.asarray(indices).reshape([-1])]]
            return segment_targets(entry.example, times, num_classes)

        target = tf.numpy_function(targets, [index, indices], tf.float32, stateful=False)
        target.set_shape([num_classes])
        return target


def example_targets(probed: list[ProbedExample], label_mode, num_classes) -> np.ndarray:
    """Each example's label: int32 `[n]`, or float32 k-hot `[n, num_classes]` for `"multi_hot"`.

    Raises:
        ValueError: for a multi-label example under a single-label `label_mode`.
    """
    if label_mode == "multi_hot":
        return multi_hot([p.example.label_set for p in probed], num_classes)
    for p in probed:
        if len(p.example.labels) > 1:
            raise ValueError(
                f"{p.example.video_id!r} has {len(p.example.labels)} labels; "
                f'label_mode={label_mode!r} takes one per video: use label_mode="multi_hot".'
            )
    return np.asarray([p.example.label for p in probed], np.int32)


def clip_dataset(
    probed: list[ProbedExample],
    config: ClipConfig,
    *,
    training: bool,
    batch_size: int | None = 32,
    shuffle: bool = True,
    seed: int | None = None,
    clips_per_video: int = 1,
    label_mode: str | None = "int",
    num_classes: int | None = None,
    on_error: str = "raise",
    clip_labels: str = "video",
):
    """Batched `(clips, labels)` dataset of probed examples decoded with PyAV.

    Args:
        probed: from `kvid.data.sources.probe_examples`.
        config: clip settings.
        training: random clips, crops and augmentation; else centred clip and crop.
        batch_size: `None` for unbatched elements.
        shuffle: shuffle the videos every epoch.
        seed: seeds shuffling and every random draw.
        clips_per_video: clips drawn from each video per epoch.
        label_mode: see module docstring.
        num_classes: needed for `"categorical"` and `"multi_hot"`.
        on_error: what to do with a video that fails to decode.
        clip_labels: with `"multi_hot"`, a clip's classes are its video's
            (`"video"`), or those of the video's segments (`VideoExample.segments`,
            Charades' actions) under one of the clip's frames (`"segments"`).

    Returns:
        A prefetched `tf.data.Dataset`.
    """
    if not probed:
        raise ValueError("No readable videos to make a dataset of.")
    if clip_labels not in CLIP_LABELS or (clip_labels != "video" and label_mode != "multi_hot"):
        raise ValueError(
            f'`clip_labels` must be one of {CLIP_LABELS}; "segments" needs label_mode="multi_hot". '
            f"Received: clip_labels={clip_labels!r}, label_mode={label_mode!r}"
        )
    seed = default_seed(seed)
    decoder = _Decoder(probed, on_error)
    augmentation = config.augmentation() if training else None
    index = np.repeat(np.arange(len(probed), dtype=np.int64), clips_per_video)
    counts = np.repeat([len(p.positions) for p in probed], clips_per_video).astype(np.int32)
    targets = np.zeros(len(probed), np.int32)
    if label_mode is not None:
        targets = example_targets(probed, label_mode, num_classes)
    labels = np.repeat(targets, clips_per_video, axis=0)
    ds = tf.data.Dataset.from_tensor_slices((index, counts, labels))
    if shuffle:
        ds = ds.shuffle(len(index), seed=seed, reshuffle_each_iteration=True)
    ds = tf.data.Dataset.zip(ds, seeds(seed))

    def load(video, element_seed):
        i, count, label = video
        sample_seed, clip_seed = tf.unstack(tf.random.experimental.stateless_split(element_seed, 2))
        indices = preprocessing_lib.sample_indices(
            count,
            config.num_frames,
            config.frame_step,
            config.sampling,
            sample_seed if training else None,
        )
        frames, ok = decoder.map_fn(i, indices)
        if clip_labels == "segments":
            label = decoder.segment_targets_fn(i, indices, num_classes)
        return frames, label, clip_seed, ok

    def finish(frames, label, clip_seed, ok):
        del ok
        if training:
            clip = finish_training_clip(frames, clip_seed, config, augmentation)
        else:
            clip = finish_eval_views(frames[None], config, num_crops=1)[0]
        if label_mode is None:
            return clip
        return clip, encode_labels(label, label_mode, num_classes)

    ds = ds.map(load, num_parallel_calls=AUTOTUNE)
    if on_error == "skip":
        ds = ds.filter(lambda frames, label, clip_seed, ok: ok)
    ds = ds.map(finish, num_parallel_calls=AUTOTUNE)
    if batch_size is not None:
        ds = ds.batch(batch_size)
    return ds.prefetch(AUTOTUNE)


def default_seed(seed):
    """`seed`, or a random one (like Keras' dataset utilities), fixed for the dataset's life."""
    return int(np.random.randint(1_000_000)) if seed is None else int(seed)


def _split(examples, validation_split, subset, seed, shuffle):
    """Keras' `get_training_or_validation_split` after its seeded file shuffle."""
    if validation_split is None:
        if subset is not None:
            raise ValueError(
                f"`subset` needs `validation_split`. Received: subset={subset!r}, "
                "validation_split=None"
            )
        return examples, []
    if not 0 < validation_split < 1:
        raise ValueError(
            f"`validation_split` must be between 0 and 1. Received: validation_split="
            f"{validation_split}"
        )
    if subset not in SUBSETS[:3]:
        raise ValueError(
            f'`subset` must be "training", "validation" or "both" with `validation_split`. '
            f"Received: subset={subset!r}"
        )
    if shuffle and seed is None:
        raise ValueError(
            "If using `validation_split` and shuffling the data, you must provide a `seed` "
            "so that the training and validation subsets do not overlap."
        )
    examples = list(examples)
    if shuffle:
        order = np.random.RandomState(seed).permutation(len(examples))
        examples = [examples[i] for i in order]
    num_val = int(validation_split * len(examples))
    return examples[: len(examples) - num_val], examples[len(examples) - num_val :]


def check_label_mode(label_mode, class_names):
    """Raises if `label_mode` is unknown or needs class names that are missing."""
    if label_mode not in LABEL_MODES:
        raise ValueError(
            f"`label_mode` must be one of {LABEL_MODES}. Received: label_mode={label_mode!r}"
        )
    if label_mode == "binary" and (class_names is None or len(class_names) != 2):
        raise ValueError(
            f'`label_mode="binary"` needs exactly 2 classes. Received: class_names={class_names}'
        )
    if label_mode in ("categorical", "multi_hot") and class_names is None:
        raise ValueError(f"`label_mode={label_mode!r}` needs `class_names`.")


def _labelled_dataset(
    examples,
    class_names,
    config: ClipConfig,
    *,
    training,
    label_mode,
    batch_size,
    shuffle,
    seed,
    clips_per_video,
    on_error,
    clip_labels="video",
):
    """Probes `examples`, then clips with labels, `class_names` and `file_paths` attached."""
    probed = probe_examples(examples, fps=config.fps, on_error=on_error)
    ds = clip_dataset(
        probed,
        config,
        training=training,
        batch_size=batch_size,
        shuffle=shuffle and training,
        seed=seed,
        clips_per_video=clips_per_video if training else 1,
        label_mode=label_mode,
        num_classes=None if class_names is None else len(class_names),
        on_error=on_error,
        clip_labels=clip_labels,
    )
    ds.class_names = class_names
    ds.file_paths = [p.example.video_id for p in probed]
    return ds


def _datasets_from_examples(
    examples,
    class_names,
    *,
    label_mode,
    batch_size,
    shuffle,
    seed,
    validation_split,
    subset,
    clips_per_video,
    on_error,
    config: ClipConfig,
):
    check_label_mode(label_mode, class_names)
    if seed is None and validation_split is not None and not shuffle:
        seed = 0
    train, val = _split(examples, validation_split, subset, seed, shuffle)

    def build(subset_examples, training):
        return _labelled_dataset(
            subset_examples,
            class_names,
            config,
            training=training,
            label_mode=label_mode,
            batch_size=batch_size,
            shuffle=shuffle,
            seed=seed,
            clips_per_video=clips_per_video,
            on_error=on_error,
        )

    if subset == "both":
        return build(train, True), build(val, False)
    if subset == "validation":
        return build(val, False)
    return build(train, True)


def video_dataset_from_directory(
    directory: str,
    labels="inferred",
    label_mode: str | None = "int",
    class_names=None,
    batch_size: int | None = 32,
    shuffle: bool = True,
    seed: int | None = None,
    validation_split: float | None = None,
    subset: str | None = None,
    *,
    clips_per_video: int = 1,
    on_error: str = "raise",
    clip: ClipConfig | None = None,
    **clip_options,
):
    """Clips from a directory of videos, like `keras.utils.image_dataset_from_directory`.

    With `labels="inferred"`, `directory` holds one subdirectory per class
    (sorted names give the labels), each holding video files (any format
    FFmpeg reads) or frame folders (a folder of JPEG/PNG frames is one video).
    Every video is probed first: an unreadable file raises (naming it) or,
    with `on_error="skip"`, is dropped with a warning. The training subset
    draws random clips (random start, crop, scale jitter, `augment`); the
    validation subset takes the centred clip and centre crop.

    Args:
        directory: the dataset root.
        labels: `"inferred"`, `None` (no labels), or a list of class indices
            in sorted path order.
        label_mode: `"int"`, `"categorical"`, `"binary"` or `None` (clips only).
        class_names: the class subdirectories to use, in label order.
        batch_size: clips per batch; `None` for unbatched clips.
        shuffle: shuffle the videos (every epoch).
        seed: seeds the split, shuffling and every random draw.
        validation_split: fraction of videos held out.
        subset: `"training"`, `"validation"` or `"both"` (a pair of datasets).
        clips_per_video: training clips drawn per video per epoch.
        on_error: `"raise"` or `"skip"` for unreadable videos.
        clip: how clips are sampled, resized, cropped, augmented and
            normalised: a `ClipConfig`, whose fields are documented there once.
        **clip_options: or those fields as keywords (`num_frames=`,
            `frame_step=`, `sampling=`, `image_size=`, `fps=`, `scale_range=`,
            `augment=`, `model=`).

    Returns:
        A `tf.data.Dataset` of `(clips, labels)` batches with attributes
        `class_names` and `file_paths`, or a `(training, validation)` pair.

    Example:
        A class-per-folder dataset (here the built-in synthetic one's 8 classes):

        >>> roots = kvid.data.synthetic.write_dataset(
        ...     "videos", train_per_class=2, validation_per_class=1, num_frames=16, verbose=False)
        >>> train, val = kvid.data.video_dataset_from_directory(
        ...     roots["train"], batch_size=4, validation_split=0.25, subset="both", seed=1,
        ...     num_frames=8, frame_step=2, model="r2plus1d_18")
        >>> clips, labels = next(iter(val))
        >>> clips.shape, len(train.file_paths), len(val.file_paths)
        (TensorShape([4, 8, 112, 112, 3]), 12, 4)
    """
    examples, class_names = index_directory(directory, labels, class_names)
    if not examples:
        raise ValueError(f"No videos found in directory {directory!r}.")
    config = clip_config(clip, clip_options)
    return _datasets_from_examples(
        examples,
        class_names,
        label_mode=label_mode if labels is not None else None,
        batch_size=batch_size,
        shuffle=shuffle,
        seed=seed,
        validation_split=validation_split,
        subset=subset,
        clips_per_video=clips_per_video,
        on_error=on_error,
        config=config,
    )


def video_dataset_from_annotations(
    annotation_file: str,
    root: str | None = None,
    label_mode: str | None = "int",
    class_names=None,
    batch_size: int | None = 32,
    shuffle: bool = True,
    seed: int | None = None,
    *,
    training: bool = True,
    label_offset: int = 0,
    clips_per_video: int = 1,
    on_error: str = "raise",
    clip_labels: str = "video",
    empty_labels: str = "raise",
    clip: ClipConfig | None = None,
    **clip_options,
):
    """Clips from the videos (or segments) an annotation file lists.

    See `kvid.data.sources.read_annotations` for the accepted CSV and split
    list forms (Kinetics, UCF101, HMDB51, Charades); rows with `start`/`end`
    seconds make that segment of the video one example. `label_mode="multi_hot"`
    reads several labels per video (float32 k-hot targets); a clip's classes
    are then its video's (`clip_labels="video"`) or, for Charades' actions,
    those under its frames (`clip_labels="segments"`). Other arguments are
    those of `video_dataset_from_directory`; `training=False` gives centred
    clips and crops without augmentation (a validation split list).

    Returns:
        A `tf.data.Dataset` of `(clips, labels)` with `class_names` and `file_paths`.
    """
    examples, class_names = read_annotations(
        annotation_file,
        root,
        class_names,
        label_offset,
        multi_label=label_mode == "multi_hot",
        empty_labels=empty_labels,
    )
    config = clip_config(clip, clip_options)
    check_label_mode(label_mode, class_names)
    return _labelled_dataset(
        examples,
        class_names,
        config,
        training=training,
        label_mode=label_mode,
        batch_size=batch_size,
        shuffle=shuffle,
        seed=seed,
        clips_per_video=clips_per_video,
        on_error=on_error,
        clip_labels=clip_labels,
    )


def video_evaluation_dataset(
    source: str,
    num_clips: int = 10,
    num_crops: int = 1,
    *,
    class_names=None,
    root: str | None = None,
    label_offset: int = 0,
    on_error: str = "raise",
    multi_label: bool = False,
    empty_labels: str = "raise",
    clip: ClipConfig | None = None,
    **clip_options,
):
    """Video-level evaluation: every view of every video, one video per element.

    Each element is `(views, label, video_id)`: `views` float32
    `[num_clips * num_crops, num_frames, height, width, 3]` (`num_clips`
    evenly spaced clips, each as `num_crops` = 1 centre or 3 crops along the
    long side; clip-major order), `label` int32 (with `multi_label`, the
    video's float32 k-hot `[num_classes]`), `video_id` the path string.
    Average the softmax of the model over `views` to score the video.

    Args:
        source: a directory with one subdirectory per class, or an annotation file.
        num_clips: clips per video (10 in the papers).
        num_crops: 1 (centre) or 3 spatial crops.
        class_names: as in `video_dataset_from_directory` / `read_annotations`.
        root: for annotation files, the directory their paths are under.
        label_offset: for annotation files with 1-based integer labels.
        on_error: `"raise"` or `"skip"`.
        multi_label: several labels per video (`read_annotations`' `multi_label`).
        empty_labels: `read_annotations`' choice for a video without labels.
        clip: the `ClipConfig`; evaluation never augments, and `frame_step`
            is one step.
        **clip_options: or its fields as keywords.

    Returns:
        An unbatched `tf.data.Dataset` with attributes `class_names` and
        `file_paths` (the videos it scores, in order).
    """
    if tf.io.gfile.isdir(source):
        examples, class_names = index_directory(source, "inferred", class_names)
    else:
        examples, class_names = read_annotations(
            source,
            root,
            class_names,
            label_offset,
            multi_label=multi_label,
            empty_labels=empty_labels,
        )
    return evaluation_dataset_from_examples(
        examples,
        class_names,
        num_clips,
        num_crops,
        on_error=on_error,
        multi_label=multi_label,
        clip=clip,
        source=source,
        **clip_options,
    )


def evaluation_dataset_from_examples(
    examples,
    class_names,
    num_clips: int = 10,
    num_crops: int = 1,
    *,
    on_error: str = "raise",
    multi_label: bool = False,
    clip: ClipConfig | None = None,
    source: str = "the examples",
    **clip_options,
):
    """`video_evaluation_dataset` of listed `VideoExample`s (one video for `kvid.beam`).

    Args:
        examples: the `VideoExample`s, labelled.
        class_names: their class names, in label order.
        num_clips: clips per video.
        num_crops: 1 (centre) or 3 spatial crops.
        on_error: `"raise"` or `"skip"`.
        multi_label: the labels are k-hot (`VideoExample.labels`).
        clip: the `ClipConfig`.
        source: where the examples come from, for the error when none is readable.
        **clip_options: or its fields as keywords.
    """
    label_mode = "multi_hot" if multi_label else "int"
    check_label_mode(label_mode if multi_label else None, class_names)
    config = dataclasses.replace(clip_config(clip, clip_options), augment=False)
    probed = probe_examples(examples, fps=config.fps, on_error=on_error)
    if not probed:
        raise ValueError(f"No readable videos in {source!r}.")
    decoder = _Decoder(probed, on_error)
    video_ids = [p.example.video_id for p in probed]
    ds = tf.data.Dataset.from_tensor_slices(
        (
            np.arange(len(probed), dtype=np.int64),
            np.asarray([len(p.positions) for p in probed], np.int32),
            example_targets(probed, label_mode, len(class_names or ())),
            video_ids,
        )
    )

    def clips(i, count, label, video_id):
        indices = preprocessing_lib.multi_clip_indices(
            count, config.num_frames, config.frame_step, config.sampling, num_clips
        )
        return tf.data.Dataset.from_tensor_slices(indices).map(
            lambda clip: (i, clip, label, video_id)
        )

    def load(i, clip, label, video_id):
        # One clip at a time: full-size frames of one clip, not of all of a long
        # video's clips (100 clips of 1080p would be 10 GB), are ever in memory.
        frames, ok = decoder.map_fn(i, clip[None])
        return finish_eval_views(frames, config, num_crops), label, video_id, ok

    def join(views, label, video_id, ok):
        shape = tf.shape(views)  # [num_clips, num_crops, T, h, w, 3]
        views = tf.reshape(views, tf.concat([[-1], shape[2:]], 0))
        height, width = config.preprocessing.crop_shape
        views = tf.ensure_shape(views, [num_clips * num_crops, config.num_frames, height, width, 3])
        return views, label[0], video_id[0], tf.reduce_all(ok)

    # Clips keep their order, so each batch of `num_clips` is one video's, clip-major.
    ds = ds.flat_map(clips).map(load, num_parallel_calls=AUTOTUNE).batch(num_clips).map(join)
    if on_error == "skip":
        ds = ds.filter(lambda views, label, video_id, ok: ok)
    else:
        # One element a video (flat_map hides the count): Keras then knows the epoch's length.
        ds = ds.apply(tf.data.experimental.assert_cardinality(len(probed)))
    ds = ds.map(lambda views, label, video_id, ok: (views, label, video_id)).prefetch(AUTOTUNE)
    # Keras deletes the last epoch's validation iterator when it validates again, and with
    # tf.data's autotuning on the deletion waited for the tuner: about 33 s an epoch on a
    # busy 2-core machine (measured on the main job). A pass in order over the videos needs
    # no tuning: AUTOTUNE then runs the decoding on every core.
    options = tf.data.Options()
    options.autotune.enabled = False
    ds = ds.with_options(options)
    ds.class_names = class_names
    ds.file_paths = video_ids
    return ds
