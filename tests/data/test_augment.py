import keras
import numpy as np
import pytest
import tensorflow as tf

import kvid
from kvid.data import augment

L = keras.layers
LAYERS = {
    "flip": lambda: L.RandomFlip(),
    "rotation": lambda: L.RandomRotation(0.2),
    "perspective": lambda: L.RandomPerspective(factor=1.0, scale=0.5),
    "zoom": lambda: L.RandomZoom(0.3),
    "crop": lambda: L.RandomCrop(20, 20),
    "augmix": lambda: L.AugMix(),
    "randaugment": lambda: L.RandAugment(),
    "brightness": lambda: L.RandomBrightness(0.3),
    "contrast": lambda: L.RandomContrast(0.5),
    "saturation": lambda: L.RandomSaturation(0.5),
    "hue": lambda: L.RandomHue(0.5),
    "color_jitter": lambda: L.RandomColorJitter(
        brightness_factor=0.3, contrast_factor=0.3, saturation_factor=0.3, hue_factor=0.3
    ),
}


def _image():
    rng = np.random.default_rng(0)
    return rng.uniform(0, 255, (24, 32, 3)).astype("float32")


@pytest.mark.parametrize("name", list(LAYERS))
def test_one_transformation_per_clip_different_across_clips(name):
    clip = tf.constant(np.stack([_image()] * 4))
    augmentation = augment.ClipAugmentation(LAYERS[name]())
    ds = tf.data.Dataset.range(4).map(lambda i: augmentation(clip, tf.stack([i, 7])))
    clips = [c.numpy() for c in ds]
    for out in clips:
        # Identical frames in, identical frames out: every frame got the same draw.
        for t in range(1, 4):
            np.testing.assert_allclose(out[t], out[0], atol=1e-4)
    distinct = {np.round(out[0], 2).tobytes() for out in clips}
    assert len(distinct) >= 2
    again = [c.numpy() for c in ds]
    for first, second in zip(clips, again, strict=True):
        np.testing.assert_array_equal(first, second)


def test_a_moving_clip_is_flipped_as_a_whole():
    frames = np.zeros((6, 8, 8, 3), np.float32)
    for t in range(6):
        frames[t, :, t] = 255.0  # a bar moving right
    augmentation = augment.ClipAugmentation(L.RandomFlip("horizontal"))
    flipped = 0
    for k in range(12):
        out = augmentation(frames, tf.constant([k, 0])).numpy()
        columns = [int(np.argmax(out[t, 0, :, 0])) for t in range(6)]
        assert columns in (list(range(6)), [7 - t for t in range(6)])
        flipped += columns[0] == 7
    assert 0 < flipped < 12


def _gradient_clip(height=60, width=80, frames=2):
    rows = np.arange(height, dtype=np.float32)[:, None] * np.ones([1, width], np.float32)
    cols = np.ones([height, 1], np.float32) * np.arange(width, dtype=np.float32)[None]
    image = np.stack([rows, cols, np.zeros_like(rows)], -1)
    return np.stack([image + t for t in range(frames)])


def test_random_short_side_crop_is_one_window_per_clip():
    clip = _gradient_clip()
    corners = set()
    for k in range(20):
        out = augment.random_short_side_crop(clip, tf.constant([k, 1]), (16, 16), (20, 30)).numpy()
        assert out.shape == (2, 16, 16, 3)
        # Frame 1 is frame 0 + 1 everywhere: the same window was cut from both.
        np.testing.assert_allclose(out[1] - out[0], 1.0, atol=1e-3)
        corners.add((round(float(out[0, 0, 0, 0])), round(float(out[0, 0, 0, 1]))))
    assert len(corners) > 10


def test_center_crop_and_three_crops_windows():
    clip = _gradient_clip(60, 80, frames=1)
    # Short side 60 -> 30: scale 1/2, so a 10x10 output covers a 20x20 source window.
    centre = augment.center_crop(clip, (10, 10), 30).numpy()
    np.testing.assert_allclose(centre[0, :, :, 0].mean(), 20 + 9.5, atol=0.6)
    np.testing.assert_allclose(centre[0, :, :, 1].mean(), 30 + 9.5, atol=0.6)
    crops = augment.three_crops(clip, (10, 10), 30).numpy()
    assert crops.shape == (3, 1, 10, 10, 3)
    # Along the long side (width): left, centre, right windows starting at 0, 30, 60.
    np.testing.assert_allclose(crops[:, 0, :, :, 1].mean(axis=(1, 2)), [9.5, 39.5, 69.5], atol=0.6)
    np.testing.assert_allclose(crops[:, 0, :, :, 0].mean(axis=(1, 2)), [29.5] * 3, atol=0.6)


@pytest.mark.parametrize("model", ["r3d_18", "r2plus1d_18"])
def test_normalize_matches_the_registry_convention(model):
    clip = np.random.default_rng(1).uniform(0, 255, (2, 4, 4, 3)).astype("float32")
    pp = kvid.models.get_preprocessing(model)
    low, high = pp.pixel_range
    expected = (clip / 255.0 * (high - low) + low - np.array(pp.mean)) / np.array(pp.std)
    np.testing.assert_allclose(augment.normalize(clip, model), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(
        augment.normalize(clip, model), kvid.preprocess_input(clip, model), atol=1e-5
    )


def test_rejects_things_that_are_not_preprocessing_layers():
    with pytest.raises(ValueError, match="Dense"):
        augment.ClipAugmentation(L.Dense(3))
