import keras
import numpy as np
import pytest
import tensorflow as tf

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


def test_rejects_things_that_are_not_preprocessing_layers():
    with pytest.raises(ValueError, match="Dense"):
        augment.ClipAugmentation(L.Dense(3))
