"""The clip convention and the one clip transform of kvid.

Everything that turns decoded frames into a model's input lives here, so
training, evaluation, prediction and the exported serving graph produce the
same clip from the same frames, bit for bit:

- `Preprocessing`: how a model expects its clips (size, resize, crop,
  normalisation, and how resizing interpolates and rounds);
- temporal sampling: which frame indices make a clip (`sample_indices`), and
  the one definition of where evaluation clips start (`clip_starts`);
- spatial steps: `resize` (short side or fixed size), `center_crop`,
  `three_crops`, `random_crop`, and `normalize` (`kvid.preprocess_input`);
- `preprocess_frames`: uint8 frames to the model's float clip, the serving
  graph's transform (resize, centre crop, normalise).

This module imports nothing of kvid, and its functions take a `Preprocessing`
(a model's is `kvid.models.get_preprocessing(key)`). The spatial and temporal
functions are plain TensorFlow ops (they run inside `tf.data` and a TF Serving
graph whatever the Keras backend); a `seed` is a `[2]` integer tensor as for
`tf.random.stateless_*`, and `seed=None` means evaluation: the deterministic
central choice.
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import tensorflow as tf

INTERPOLATIONS = ("bilinear", "bicubic", "area", "nearest", "lanczos3", "lanczos5", "gaussian")
ROUNDINGS = ("floor", "round")
SAMPLINGS = ("consecutive", "uniform")


@dataclasses.dataclass(frozen=True)
class Preprocessing:
    """How a model expects its clips.

    Frames are resized to `resize` (with `interpolation` and `antialias`, in
    float: pixels are not rounded back to uint8), cropped to `crop_size`
    (centre crop offsets rounded half to even, like torchvision's
    `center_crop`), then scaled from `[0, 255]` to `pixel_range` and
    normalised with `(x - mean) / std`.

    Attributes:
        num_frames: default clip length.
        crop_size: side of the square crop the model is trained on, or
            `(height, width)`.
        resize: frames are resized to this before cropping: an int is the short
            side, a pair is `(height, width)`.
        pixel_range: the range `[0, 255]` is mapped to.
        mean: per-channel mean subtracted after scaling.
        std: per-channel standard deviation divided by after scaling.
        fps: frame rate clips are sampled at, if the reference fixes one.
        interpolation: `tf.image.resize` method, e.g. `"bilinear"`.
        antialias: low-pass filter when downsampling (as torchvision's
            `antialias=True` and PIL do).
        rounding: how an int `resize` rounds the long side: `"floor"`
            (torchvision's `Resize(int)`: `int(resize * long / short)`) or
            `"round"`.
    """

    num_frames: int
    crop_size: int | tuple[int, int]
    resize: int | tuple[int, int]
    pixel_range: tuple[float, float] = (0.0, 1.0)
    mean: tuple[float, ...] = (0.0, 0.0, 0.0)
    std: tuple[float, ...] = (1.0, 1.0, 1.0)
    fps: float | None = None
    interpolation: str = "bilinear"
    antialias: bool = True
    rounding: str = "floor"

    def __post_init__(self):
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(
                f"`interpolation` must be one of {INTERPOLATIONS}. "
                f"Received: interpolation={self.interpolation!r}"
            )
        if self.rounding not in ROUNDINGS:
            raise ValueError(
                f"`rounding` must be one of {ROUNDINGS}. Received: rounding={self.rounding!r}"
            )
        if min(_pair(self.crop_size)) < 1 or min(_pair(self.resize)) < 1:
            raise ValueError(
                "`crop_size` and `resize` must be positive. "
                f"Received: crop_size={self.crop_size}, resize={self.resize}"
            )

    @property
    def crop_shape(self) -> tuple[int, int]:
        """`(height, width)` of the crop."""
        return _pair(self.crop_size)

    def get_config(self) -> dict:
        """The fields as JSON-friendly values (for `.keras` files)."""
        return {
            key: list(value) if isinstance(value, tuple) else value
            for key, value in dataclasses.asdict(self).items()
        }

    @classmethod
    def from_config(cls, config: dict) -> Preprocessing:
        """The inverse of `get_config`."""
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in config.items()})


def rescaled(preprocessing: Preprocessing, crop_size) -> Preprocessing:
    """`preprocessing` with another crop, its resize scaled by the same factor.

    E.g. r3d_18's 128x171 resize and 112 crop become 64x86 and 56 for `crop_size=56`;
    its own crop gives `preprocessing` back.
    """
    old_h, old_w = preprocessing.crop_shape
    new_h, new_w = _pair(crop_size)
    if (new_h, new_w) == (old_h, old_w):
        return preprocessing
    factor = min(new_h / old_h, new_w / old_w)
    if isinstance(preprocessing.resize, (int, np.integer)):
        resize = max(round(preprocessing.resize * factor), min(new_h, new_w))
    else:
        height, width = _pair(preprocessing.resize)
        resize = (max(round(height * factor), new_h), max(round(width * factor), new_w))
    crop = new_h if new_h == new_w else (new_h, new_w)
    return dataclasses.replace(preprocessing, crop_size=crop, resize=resize)


def _pair(size) -> tuple[int, int]:
    if isinstance(size, (int, np.integer)):
        return int(size), int(size)
    height, width = size
    return int(height), int(width)


def _checked(preprocessing) -> Preprocessing:
    if not isinstance(preprocessing, Preprocessing):
        raise ValueError(
            "Expected a `kvid.Preprocessing` (a model's is `kvid.models.get_preprocessing(key)`). "
            f"Received: preprocessing={preprocessing!r}"
        )
    return preprocessing


# ---------------------------------------------------------------- normalisation


def normalize(clips, preprocessing):
    """Maps `[0, 255]` pixels to the input convention of a model.

    The one normalisation of kvid (`kvid.preprocess_input` resolves a model's
    convention, then calls it): TF ops on TF tensors (inside `tf.data` or a serving
    graph, whatever the Keras backend), `keras.ops` otherwise. Resizing and
    cropping are `resize` and the crops' job; this only rescales and
    normalises, channels last.

    Args:
        clips: `(..., channels)` pixels in `[0, 255]`, any numeric dtype.
        preprocessing: the model's `Preprocessing`.

    Returns:
        A float32 tensor of the same shape.

    Example:
        >>> convention = kvid.Preprocessing(num_frames=2, crop_size=4, resize=4)
        >>> kvid.preprocessing.normalize(np.full((2, 4, 4, 3), 255, np.uint8), convention)[0, 0, 0]
        <tf.Tensor: shape=(3,), dtype=float32, numpy=array([1., 1., 1.], dtype=float32)>
    """
    convention = _checked(preprocessing)
    low, high = convention.pixel_range
    x = tf.cast(clips, tf.float32) if tf.is_tensor(clips) else keras.ops.cast(clips, "float32")
    x = x * ((high - low) / 255.0) + low
    mean = np.asarray(convention.mean, np.float32)
    std = np.asarray(convention.std, np.float32)
    return (x - mean) / std


# ---------------------------------------------------------------- spatial steps


def resized_size(height, width, resize, rounding: str = "floor", scale=1.0) -> tf.Tensor:
    """The `int32 [height, width]` frames are resized to.

    Args:
        height: frame height (int or scalar tensor).
        width: frame width.
        resize: an int short side (the long side keeps the aspect ratio,
            rounded by `rounding`), or a `(height, width)` pair.
        rounding: `"floor"` (torchvision's `Resize(int)`) or `"round"`.
        scale: multiplies the target size (training scale jitter); `1.0` is
            the evaluation and serving size.
    """
    if rounding not in ROUNDINGS:
        raise ValueError(f"`rounding` must be one of {ROUNDINGS}. Received: rounding={rounding!r}")
    scale = tf.cast(scale, tf.float64)
    if not isinstance(resize, (int, np.integer)):
        target = tf.round(tf.constant(_pair(resize), tf.float64) * scale)
        return tf.cast(target, tf.int32)
    height, width = tf.cast(height, tf.int32), tf.cast(width, tf.int32)
    new_short = tf.round(float(resize) * scale)
    short = tf.cast(tf.minimum(height, width), tf.float64)
    long = new_short * tf.cast(tf.maximum(height, width), tf.float64) / short
    long = tf.floor(long) if rounding == "floor" else tf.round(long)
    new_short, long = tf.cast(new_short, tf.int32), tf.cast(long, tf.int32)
    return tf.where(height <= width, tf.stack([new_short, long]), tf.stack([long, new_short]))


def resize(frames, preprocessing, scale=1.0) -> tf.Tensor:
    """Resizes `(..., height, width, channels)` frames as `preprocessing` says.

    Never smaller than the crop, so a crop always fits.

    Args:
        frames: pixels, any numeric dtype, any number of leading dimensions.
        preprocessing: a `Preprocessing`.
        scale: multiplies the target size (training scale jitter).

    Returns:
        float32 `(..., new_height, new_width, channels)`, not rounded.
    """
    convention = _checked(preprocessing)
    frames = tf.convert_to_tensor(frames)
    shape = tf.shape(frames)
    size = resized_size(shape[-3], shape[-2], convention.resize, convention.rounding, scale)
    size = tf.maximum(size, convention.crop_shape)
    return resize_to(
        frames, size, interpolation=convention.interpolation, antialias=convention.antialias
    )


def resize_to(frames, size, *, interpolation: str = "bilinear", antialias: bool = True):
    """Resizes `(..., height, width, channels)` frames to `size`: the one resize of kvid.

    Training, evaluation, serving, TFRecord preparation and plots all resize
    here (in float, bilinear and antialiased unless told otherwise).

    Args:
        frames: pixels, any numeric dtype, any number of leading dimensions.
        size: `(height, width)`, ints or an `int32 [2]` tensor.
        interpolation: one of `INTERPOLATIONS`.
        antialias: filter when shrinking.

    Returns:
        float32 `(..., height, width, channels)`, not rounded.

    Example:
        >>> kvid.preprocessing.resize_to(np.zeros((2, 40, 60, 3), np.uint8), (20, 30)).shape
        TensorShape([2, 20, 30, 3])
    """
    frames = tf.convert_to_tensor(frames)
    shape = tf.shape(frames)
    images = tf.reshape(tf.cast(frames, tf.float32), tf.concat([[-1], shape[-3:]], axis=0))
    images = tf.image.resize(images, size, method=interpolation, antialias=antialias)
    size = tf.shape(images)[1:3]
    return tf.reshape(images, tf.concat([shape[:-3], size, shape[-1:]], axis=0))


def crop(frames, crop_size, top, left) -> tf.Tensor:
    """The `crop_size` window at `(top, left)` of `(..., height, width, channels)` frames.

    The one crop of kvid: `center_crop`, `three_crops` and `random_crop` only
    choose where.
    """
    crop_h, crop_w = _pair(crop_size)
    frames = tf.convert_to_tensor(frames)
    window = frames[..., top : top + crop_h, left : left + crop_w, :]
    if frames.shape.rank is None:
        return window
    # Checked, so a frame smaller than the crop fails here rather than in the model.
    return tf.ensure_shape(window, [*frames.shape[:-3], crop_h, crop_w, frames.shape[-1]])


def _offset(extra, position):
    # Rounded half to even, as torchvision's `center_crop` (Python's round) does.
    return tf.cast(tf.round(position * tf.cast(extra, tf.float64)), tf.int32)


def center_crop(frames, crop_size) -> tf.Tensor:
    """The central `crop_size` window (offsets rounded like torchvision's `center_crop`)."""
    crop_h, crop_w = _pair(crop_size)
    shape = tf.shape(frames)
    top = _offset(shape[-3] - crop_h, 0.5)
    left = _offset(shape[-2] - crop_w, 0.5)
    return crop(frames, crop_size, top, left)


def three_crops(frames, crop_size) -> tf.Tensor:
    """Three `crop_size` windows along the long side (start, centre, end), for 3-crop testing.

    The short side is centred, as in `center_crop`.

    Returns:
        `(3, ..., crop_height, crop_width, channels)`.
    """
    crop_h, crop_w = _pair(crop_size)
    shape = tf.shape(frames)
    height, width = shape[-3], shape[-2]
    crops = []
    for position in (0.0, 0.5, 1.0):
        along_h = tf.where(height > width, position, 0.5)
        along_w = tf.where(height > width, 0.5, position)
        top = _offset(height - crop_h, tf.cast(along_h, tf.float64))
        left = _offset(width - crop_w, tf.cast(along_w, tf.float64))
        crops.append(crop(frames, crop_size, top, left))
    return tf.stack(crops)


def random_crop(frames, crop_size, seed) -> tf.Tensor:
    """A `crop_size` window at a random place, the same for every frame (one draw)."""
    crop_h, crop_w = _pair(crop_size)
    shape = tf.shape(frames)
    top_seed, left_seed = _split(seed, 2)
    top = tf.random.stateless_uniform([], top_seed, 0, shape[-3] - crop_h + 1, dtype=tf.int32)
    left = tf.random.stateless_uniform([], left_seed, 0, shape[-2] - crop_w + 1, dtype=tf.int32)
    return crop(frames, crop_size, top, left)


def random_resized_crop(frames, preprocessing, seed, scale_range=(1.0, 1.0)) -> tf.Tensor:
    """Training crop: the evaluation resize times a random scale, then a random crop.

    One draw per clip. With `scale_range=(1, 1)` the only difference from
    evaluation is where the crop is; a centre crop there is `preprocess_frames`
    without the normalisation.

    Args:
        frames: `(..., height, width, channels)`.
        preprocessing: the model's `Preprocessing`.
        seed: `[2]` stateless seed.
        scale_range: inclusive `(low, high)` factor of the resized size.

    Returns:
        float32 `(..., crop_height, crop_width, channels)` pixels in `[0, 255]`.
    """
    convention = _checked(preprocessing)
    low, high = scale_range
    if not 0 < low <= high:
        raise ValueError(
            f"`scale_range` must be (low, high) with 0 < low <= high. "
            f"Received: scale_range={scale_range}"
        )
    scale_seed, crop_seed = _split(seed, 2)
    scale = (
        low
        if low == high
        else tf.random.stateless_uniform([], scale_seed, low, high, dtype=tf.float64)
    )
    return random_crop(resize(frames, convention, scale), convention.crop_shape, crop_seed)


def preprocess_frames(frames, preprocessing) -> tf.Tensor:
    """uint8 frames to the model's float clip: resize, centre crop, normalise.

    Exactly what the exported `serving_default` signature computes, and what
    evaluation and prediction feed the model.

    Args:
        frames: `[T, H, W, 3]` or `[batch, T, H, W, 3]` pixels in `[0, 255]`.
        preprocessing: the model's `Preprocessing`.

    Returns:
        float32 `[..., T, crop_height, crop_width, 3]`.

    Example:
        >>> convention = kvid.models.get_preprocessing("r3d_18")
        >>> frames = np.zeros((16, 240, 320, 3), np.uint8)
        >>> kvid.preprocessing.preprocess_frames(frames, convention).shape
        TensorShape([16, 112, 112, 3])
    """
    convention = _checked(preprocessing)
    frames = tf.convert_to_tensor(frames)
    if frames.shape.rank not in (None, 4, 5) or frames.shape[-1] not in (None, 3):
        raise ValueError(
            "Expected frames `[frames, height, width, 3]` or `[batch, frames, height, width, 3]`. "
            f"Received: shape={tuple(frames.shape)}"
        )
    return normalize(center_crop(resize(frames, convention), convention.crop_shape), convention)


def decode_jpeg(jpegs) -> tf.Tensor:
    """JPEG files, string `[n]`, to uint8 `[n, height, width, 3]` (frames of one size).

    The one JPEG decode of kvid: TFRecord datasets and the exported
    `jpeg_frames` signature both call it, so a model is served the pixels it
    was trained on. The accurate integer DCT (libjpeg's standard one, as PIL
    decodes), named explicitly: TensorFlow's default is system-specific (the
    fast DCT in TensorFlow 2.21's x86 wheels, up to 6 levels off). Gray JPEGs
    come out RGB.

    Example:
        >>> jpeg = tf.io.encode_jpeg(np.zeros((48, 64, 3), np.uint8))
        >>> kvid.preprocessing.decode_jpeg(tf.stack([jpeg, jpeg])).shape
        TensorShape([2, 48, 64, 3])
    """
    return tf.map_fn(
        lambda jpeg: tf.io.decode_jpeg(jpeg, channels=3, dct_method="INTEGER_ACCURATE"),
        jpegs,
        fn_output_signature=tf.TensorSpec([None, None, 3], tf.uint8),
    )


# ---------------------------------------------------------------- temporal sampling
#
# Every function takes the number of frames available (a Python int or a scalar
# tensor) and returns `int32` frame indices, so the same code samples PyAV videos
# (before decoding) and TFRecords (before JPEG decoding), eagerly or in `tf.data`.
# Short videos never fail: indices past the end wrap around, i.e. the video is
# *looped* (as TF Model Garden's `sample_sequence` does), so motion stays natural
# instead of freezing on the last frame; a single-frame video repeats that frame.
# `_slack` and `_looped` are that rule, once: every sampler here calls them, and
# `kvid.inference.sliding_clips` cuts a video shorter than a clip with
# `consecutive_indices`.


def _as_count(num_available):
    return tf.maximum(tf.cast(num_available, tf.int32), 1)


def _slack(count, num_frames: int, step):
    """How many frames later than the first a clip may start: 0 if the video is shorter."""
    return tf.maximum(count - ((num_frames - 1) * step + 1), 0)


def _looped(starts, count, num_frames: int, step):
    """`int32 [..., num_frames]` indices of clips from `starts` (`[...]`), looping past the end."""
    return (tf.expand_dims(starts, -1) + tf.range(num_frames) * step) % count


def _split(seed, n: int):
    return tf.unstack(tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), n))


def draw_frame_step(frame_step, seed=None):
    """Returns the step between sampled frames.

    Args:
        frame_step: an int, or an inclusive range `(low, high)` for speed
            augmentation: training draws a step per clip ("sample more,
            subsample"), evaluation uses the rounded middle.
        seed: stateless seed, or `None` for evaluation.

    Returns:
        A scalar `int32` tensor.
    """
    if isinstance(frame_step, (int, np.integer)):
        if frame_step < 1:
            raise ValueError(f"`frame_step` must be >= 1. Received: frame_step={frame_step}")
        return tf.constant(int(frame_step), tf.int32)
    low, high = frame_step
    if not 1 <= low <= high:
        raise ValueError(
            f"`frame_step` must be a positive int or a range (low, high) with 1 <= low <= high. "
            f"Received: frame_step={frame_step}"
        )
    if seed is None:
        return tf.constant((low + high) // 2, tf.int32)
    return tf.random.stateless_uniform([], seed, low, high + 1, dtype=tf.int32)


def clip_starts(num_available, num_frames: int, frame_step=1, num_clips: int = 1):
    """Where evaluation clips start: the one definition kvid uses everywhere.

    The possible starts `0..slack` (`slack` = frames left over by one clip)
    are cut into `num_clips` equal parts and each clip starts at the centre
    of its part, rounded down, as in SlowFast's multi-view test. One clip is
    the centred clip (`slack // 2`).

    Args:
        num_available: frames in the video.
        num_frames: clip length.
        frame_step: int step between frames (a range uses its middle).
        num_clips: clips per video.

    Returns:
        `int32 [num_clips]` first frames.
    """
    if num_clips < 1:
        raise ValueError(f"`num_clips` must be >= 1. Received: num_clips={num_clips}")
    slack = _slack(_as_count(num_available), num_frames, draw_frame_step(frame_step))
    # Integer arithmetic: floor((k + 1/2) * slack / num_clips), exact for any length.
    return ((2 * tf.range(num_clips) + 1) * slack) // (2 * num_clips)


def consecutive_indices(num_available, num_frames: int, frame_step=1, seed=None):
    """A clip of `num_frames` frames `frame_step` apart.

    Training (`seed` given) starts at a random frame (temporal jitter);
    evaluation takes the centred clip (`clip_starts` with one clip).

    Args:
        num_available: frames in the video.
        num_frames: clip length.
        frame_step: int, or `(low, high)` range for speed augmentation.
        seed: stateless seed, or `None` for the centred clip.

    Returns:
        `int32 [num_frames]` indices in `[0, num_available)`.
    """
    count = _as_count(num_available)
    if seed is None:
        step = draw_frame_step(frame_step)
        start = clip_starts(count, num_frames, frame_step, 1)[0]
    else:
        step_seed, start_seed = _split(seed, 2)
        step = draw_frame_step(frame_step, step_seed)
        slack = _slack(count, num_frames, step)
        start = tf.random.stateless_uniform([], start_seed, 0, slack + 1, dtype=tf.int32)
    return _looped(start, count, num_frames, step)


def uniform_indices(num_available, num_frames: int, seed=None):
    """TSN-style segment sampling: one frame from each of `num_frames` equal segments.

    Training picks a random frame in each segment (temporal jitter);
    evaluation takes each segment's middle frame.

    Args:
        num_available: frames in the video.
        num_frames: clip length (number of segments).
        seed: stateless seed, or `None` for the segments' middles.

    Returns:
        `int32 [num_frames]` indices in `[0, num_available)`, non-decreasing.
    """
    count = tf.cast(_as_count(num_available), tf.float32)
    edges = tf.range(num_frames + 1, dtype=tf.float32) * count / num_frames
    low, high = edges[:-1], edges[1:]
    if seed is None:
        offsets = tf.fill([num_frames], 0.5)
    else:
        offsets = tf.random.stateless_uniform([num_frames], seed)
    positions = tf.floor(low + offsets * (high - low))
    return tf.minimum(tf.cast(positions, tf.int32), tf.cast(count, tf.int32) - 1)


def evenly_spaced_clips(num_available, num_frames: int, frame_step=1, num_clips: int = 10):
    """`num_clips` consecutive clips starting at `clip_starts`, for video-level evaluation.

    Returns:
        `int32 [num_clips, num_frames]`.
    """
    count = _as_count(num_available)
    step = draw_frame_step(frame_step)
    starts = clip_starts(count, num_frames, frame_step, num_clips)
    return _looped(starts, count, num_frames, step)


def sample_indices(
    num_available, num_frames: int, frame_step=1, sampling: str = "consecutive", seed=None
):
    """The frame indices of one clip: `consecutive_indices` or `uniform_indices`.

    Args:
        num_available: frames in the video.
        num_frames: clip length.
        frame_step: for `"consecutive"`: int or `(low, high)` range.
        sampling: `"consecutive"` or `"uniform"`.
        seed: stateless seed (training), or `None` (evaluation).

    Returns:
        `int32 [num_frames]` indices.
    """
    if sampling == "consecutive":
        return consecutive_indices(num_available, num_frames, frame_step, seed)
    if sampling == "uniform":
        return uniform_indices(num_available, num_frames, seed)
    raise ValueError(f"`sampling` must be one of {SAMPLINGS}. Received: sampling={sampling!r}")


def multi_clip_indices(
    num_available, num_frames: int, frame_step=1, sampling: str = "consecutive", num_clips=1
):
    """Evaluation indices of `num_clips` clips: evenly spaced clips, or uniform sampling.

    `"uniform"` sampling covers the whole video already, so its clips are
    shifted by a fraction of a segment each instead. One clip is the
    evaluation clip of `sample_indices`.

    Returns:
        `int32 [num_clips, num_frames]`.
    """
    if sampling == "consecutive":
        return evenly_spaced_clips(num_available, num_frames, frame_step, num_clips)
    if sampling != "uniform":
        raise ValueError(f"`sampling` must be one of {SAMPLINGS}. Received: sampling={sampling!r}")
    count = tf.cast(_as_count(num_available), tf.float32)
    segment = count / num_frames
    shifts = (tf.range(num_clips, dtype=tf.float32) + 0.5) / num_clips
    positions = tf.range(num_frames, dtype=tf.float32)[None, :] + shifts[:, None]
    indices = tf.cast(tf.floor(positions * segment), tf.int32)
    return tf.minimum(indices, tf.cast(count, tf.int32) - 1)
