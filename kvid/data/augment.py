"""Clip-consistent augmentation with Keras image preprocessing layers, on `[T, H, W, C]` clips.

Clips are float32 pixels in `[0, 255]` while augmented (the default
`value_range` of Keras' preprocessing layers), between the crop and the
normalisation of `kvid.preprocessing`. Randomness comes only from the `[2]`
stateless seed passed with each clip, so the same seed gives the same clip.
"""

from __future__ import annotations

import keras
import tensorflow as tf


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
        >>> augment = kvid.data.ClipAugmentation([keras.layers.RandomFlip("horizontal"),
        ...                                       keras.layers.RandomRotation(0.05)])
        >>> clip = np.zeros((8, 32, 32, 3), np.float32)
        >>> augment(clip, seed=tf.constant([1, 2])).shape
        TensorShape([8, 32, 32, 3])
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
