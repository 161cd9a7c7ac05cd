"""Clip-consistent augmentation, crops and per-model normalisation, on `[T, H, W, C]` clips.

Clips are float32 pixels in `[0, 255]` while augmented (the default
`value_range` of Keras' preprocessing layers); `normalize` maps them to a
model's convention last. Randomness comes only from the `[2]` stateless seed
passed with each clip, so the same seed gives the same clip.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from kvid.models.registry import get_preprocessing


class _ClipSeed(keras.random.SeedGenerator):
    """Stands in for a layer's `SeedGenerator`: every draw derives from one clip's seed.

    `SeedGenerator.__init__` is skipped on purpose: it would create a state
    variable, and the point is to have none (each call to `next` folds a
    trace-time counter into the clip's seed tensor).
    """

    def __init__(self, seed):  # noqa: D107
        self._clip_seed = tf.cast(seed, tf.int64)
        self._draws = 0

    def next(self, ordered=True):
        """Returns a new seed derived from the clip's seed."""
        self._draws += 1
        return tf.random.experimental.stateless_fold_in(self._clip_seed, self._draws)


def _expand(layer) -> list:
    # RandomColorJitter draws inside `transform_images` (once per frame); its
    # parts draw in `get_random_transformation` like every other layer.
    if isinstance(layer, keras.layers.RandomColorJitter):
        parts = (layer.random_brightness, layer.random_contrast)
        parts += (layer.random_saturation, layer.random_hue)
        return [part for part in parts if part is not None]
    return [layer]


class ClipAugmentation:
    """Applies Keras image preprocessing layers with one random draw per clip.

    Each layer draws its transformation once (`get_random_transformation` on
    the clip's first frame, seeded by the clip's seed) and applies it to every
    frame (`transform_images`), so a flip, rotation, zoom, crop, AugMix or
    RandAugment chain is the same throughout the clip. Works for any
    `BaseImagePreprocessingLayer`; AugMix picks its chain operations with
    Python's `random` at trace time (a Keras limitation), its magnitudes and
    mixing weights per clip.

    Args:
        layers: a layer or a list of layers, applied in order.

    Example:
        >>> augment = ClipAugmentation([keras.layers.RandomFlip("horizontal"),
        ...                             keras.layers.RandomRotation(0.05)])
        >>> clip = augment(clip, seed=tf.constant([1, 2]))
    """

    def __init__(self, layers):
        layers = list(layers) if isinstance(layers, (list, tuple)) else [layers]
        for layer in layers:
            if not hasattr(layer, "get_random_transformation"):
                raise ValueError(
                    "`ClipAugmentation` takes Keras image preprocessing layers "
                    f"(with `get_random_transformation`). Received: {layer!r}"
                )
        self.layers = [part for layer in layers for part in _expand(layer)]

    def __call__(self, clip, seed):
        """Augments `clip` (`[T, H, W, C]`, float in `[0, 255]`) with seed `seed` (`[2]`)."""
        clip = tf.cast(clip, tf.float32)
        seed = tf.cast(seed, tf.int64)
        for index, layer in enumerate(self.layers):
            layer_seed = _ClipSeed(tf.random.experimental.stateless_fold_in(seed, index))
            clip = _apply_once(layer, clip, layer_seed)
        return clip


def _apply_once(layer, clip, seed):
    layer.backend.set_backend("tensorflow")  # tf.data runs TF whatever the Keras backend.
    # Some layers (AugMix, RandAugment) fetch their generator directly instead of
    # using the `seed` argument: hand them the clip's seeds too.
    layer._get_seed_generator = lambda *args: seed
    try:
        if not layer.built:
            layer.build(clip.shape)
        transformation = layer.get_random_transformation(clip[:1], training=True, seed=seed)
        # A transformation drawn for a batch of one broadcasts over the frames.
        return tf.cast(layer.transform_images(clip, transformation, training=True), tf.float32)
    finally:
        del layer._get_seed_generator
        layer.backend.reset()


def _resize(clip, size):
    return tf.image.resize(tf.cast(clip, tf.float32), size, method="bilinear")


def _window(height, width, size, short_side):
    """Source window (h, w) that becomes `size` once the short side is scaled to `short_side`."""
    short = tf.cast(tf.minimum(height, width), tf.float32)
    scale = tf.cast(short_side, tf.float32) / short
    win_h = tf.minimum(tf.cast(tf.math.ceil(size[0] / scale), tf.int32), height)
    win_w = tf.minimum(tf.cast(tf.math.ceil(size[1] / scale), tf.int32), width)
    return win_h, win_w


def random_short_side_crop(clip, seed, size, short_side_range):
    """Training crop: random short-side scale, then a random `size` crop; one draw per clip.

    Equivalent to resizing the short side to a random length in
    `short_side_range` and cropping `size` at a random place, but crops first
    so only the kept pixels are resized.

    Args:
        clip: `[T, H, W, C]`.
        seed: `[2]` stateless seed.
        size: `(height, width)` of the output.
        short_side_range: inclusive `(low, high)` short side in pixels.

    Returns:
        float32 `[T, size[0], size[1], C]`.
    """
    shape = tf.shape(clip)
    height, width = shape[1], shape[2]
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 3)
    low, high = short_side_range
    short_side = tf.random.stateless_uniform([], seeds[0], float(low), float(high) + 1e-3)
    win_h, win_w = _window(height, width, size, short_side)
    top = tf.random.stateless_uniform([], seeds[1], 0, height - win_h + 1, dtype=tf.int32)
    left = tf.random.stateless_uniform([], seeds[2], 0, width - win_w + 1, dtype=tf.int32)
    crop = clip[:, top : top + win_h, left : left + win_w]
    return _resize(crop, size)


def center_crop(clip, size, short_side):
    """Evaluation crop: short side scaled to `short_side`, then the central `size` crop.

    Returns:
        float32 `[T, size[0], size[1], C]`.
    """
    return _crops(clip, size, short_side, positions=(0.5,))[0]


def three_crops(clip, size, short_side):
    """Three `size` crops along the long side (start, centre, end), for 3-crop testing.

    Returns:
        float32 `[3, T, size[0], size[1], C]`.
    """
    return _crops(clip, size, short_side, positions=(0.0, 0.5, 1.0))


def _crops(clip, size, short_side, positions):
    shape = tf.shape(clip)
    height, width = shape[1], shape[2]
    win_h, win_w = _window(height, width, size, short_side)
    crops = []
    for position in positions:
        # Slide along the long side; the short side is centred.
        along_h = position if height > width else 0.5
        along_w = position if width >= height else 0.5
        top = tf.cast(tf.round(along_h * tf.cast(height - win_h, tf.float32)), tf.int32)
        left = tf.cast(tf.round(along_w * tf.cast(width - win_w, tf.float32)), tf.int32)
        crops.append(_resize(clip[:, top : top + win_h, left : left + win_w], size))
    return tf.stack(crops)


def normalize(clips, model):
    """Maps `[0, 255]` pixels to `model`'s input convention (its registry `Preprocessing`).

    The same formula as `kvid.models.preprocess_input`, in TF ops so it runs
    inside `tf.data` whichever Keras backend is active.

    Args:
        clips: `[..., C]` pixels in `[0, 255]`.
        model: a registry key (e.g. `"r2plus1d_18"`), a `ModelSpec` or a `Preprocessing`.

    Returns:
        float32 tensor of the same shape.
    """
    convention = get_preprocessing(model)
    low, high = convention.pixel_range
    x = tf.cast(clips, tf.float32) * ((high - low) / 255.0) + low
    mean = np.asarray(convention.mean, np.float32)
    std = np.asarray(convention.std, np.float32)
    return (x - mean) / std
