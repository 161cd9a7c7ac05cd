"""The one clip transform: convention, resize, crops, normalisation and temporal sampling."""

import ast
import re
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

import kvid
from kvid import preprocessing as P

R3D = kvid.models.get_preprocessing("r3d_18")  # resize (128, 171), crop 112


def _gradient_clip(height=60, width=80, frames=2):
    rows = np.arange(height, dtype=np.float32)[:, None] * np.ones([1, width], np.float32)
    cols = np.ones([height, 1], np.float32) * np.arange(width, dtype=np.float32)[None]
    image = np.stack([rows, cols, np.zeros_like(rows)], -1)
    return np.stack([image + t for t in range(frames)])


def test_the_module_imports_nothing_of_kvid():
    tree = ast.parse(Path(P.__file__).read_text())
    imported = [
        node.module if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in node.names
    ]
    assert not [name for name in imported if name and name.split(".")[0] == "kvid"]


def test_one_normalisation_under_one_name_each():
    assert kvid.preprocess_input is kvid.models.preprocess_input
    assert kvid.Preprocessing is P.Preprocessing


def test_preprocess_input_takes_keys_specs_conventions_and_models_in_tf_and_numpy():
    clip = np.random.default_rng(1).uniform(0, 255, (2, 4, 4, 3)).astype("float32")
    expected = (clip / 255.0 - np.array(R3D.mean)) / np.array(R3D.std)
    model = kvid.R3D18(alpha=1 / 16)
    for convention in ("r3d_18", kvid.models.get_spec("r3d_18"), R3D, model):
        np.testing.assert_allclose(
            kvid.preprocess_input(clip, convention), expected, rtol=1e-5, atol=1e-5
        )
    np.testing.assert_allclose(P.normalize(tf.constant(clip), R3D), expected, rtol=1e-5, atol=1e-5)


def test_the_transforms_take_conventions_not_keys():
    with pytest.raises(ValueError, match="kvid.models.get_preprocessing"):
        P.normalize(np.zeros((1, 2, 2, 3)), "r3d_18")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"interpolation": "cubic"}, "interpolation='cubic'"),
        ({"rounding": "ceil"}, "rounding='ceil'"),
        ({"crop_size": 0}, "crop_size=0"),
    ],
)
def test_preprocessing_rejects_bad_fields(kwargs, match):
    with pytest.raises(ValueError, match=match):
        P.Preprocessing(**{"num_frames": 8, "crop_size": 8, "resize": 9, **kwargs})


def test_unknown_model_names_are_named():
    with pytest.raises(ValueError, match="name='r9d'"):
        kvid.models.get_preprocessing("r9d")


@pytest.mark.parametrize(
    "height, width, resize, rounding, expected",
    [
        (100, 150, 128, "floor", (128, 192)),  # torchvision Resize(int): int(128 * 150 / 100)
        (150, 100, 128, "floor", (192, 128)),
        (240, 320, 256, "floor", (256, 341)),  # 341.33 truncated
        (240, 320, 112, "floor", (112, 149)),  # 149.33
        (240, 320, 113, "round", (113, 151)),  # 150.67 rounded, not truncated
        (240, 320, (128, 171), "floor", (128, 171)),
    ],
)
def test_resized_size(height, width, resize, rounding, expected):
    size = P.resized_size(tf.constant(height), tf.constant(width), resize, rounding)
    assert tuple(size.numpy()) == expected


def test_resize_keeps_leading_dimensions_and_never_goes_below_the_crop():
    frames = np.zeros((2, 3, 30, 40, 3), np.uint8)
    assert P.resize(frames, R3D).shape == (2, 3, 128, 171, 3)
    tiny = P.Preprocessing(num_frames=4, crop_size=(20, 50), resize=16)
    assert P.resize(frames[0], tiny).shape == (3, 20, 50, 3)


def test_center_crop_rounds_offsets_like_torchvision():
    frames = _gradient_clip(13, 20, frames=1)
    out = P.center_crop(frames, 10).numpy()
    # Python's round((13 - 10) / 2) = 2 and round((20 - 10) / 2) = 5.
    assert out[0, 0, 0, 0] == 2 and out[0, 0, 0, 1] == 5


def test_three_crops_slide_along_the_long_side():
    wide = P.three_crops(_gradient_clip(10, 40, frames=1), 10).numpy()
    np.testing.assert_array_equal(wide[:, 0, 0, 0, 1], [0, 15, 30])
    np.testing.assert_array_equal(wide[:, 0, 0, 0, 0], [0, 0, 0])
    tall = P.three_crops(_gradient_clip(40, 10, frames=1), 10).numpy()
    np.testing.assert_array_equal(tall[:, 0, 0, 0, 0], [0, 15, 30])


def test_random_crop_is_one_window_per_clip_and_depends_only_on_the_seed():
    clip = _gradient_clip()
    corners = set()
    for k in range(20):
        out = P.random_crop(clip, (16, 16), tf.constant([k, 1])).numpy()
        assert out.shape == (2, 16, 16, 3)
        np.testing.assert_array_equal(out[1] - out[0], 1.0)  # the same window in both frames
        np.testing.assert_array_equal(out, P.random_crop(clip, (16, 16), tf.constant([k, 1])))
        corners.add((out[0, 0, 0, 0], out[0, 0, 0, 1]))
    assert len(corners) > 10


def test_training_crop_without_jitter_is_the_evaluation_crop_somewhere():
    frames = np.random.default_rng(0).integers(0, 256, (2, 90, 120, 3), np.uint8)
    resized = P.resize(frames, R3D).numpy()
    out = P.random_resized_crop(frames, R3D, tf.constant([3, 4])).numpy()
    assert out.shape == (2, 112, 112, 3)
    found = [
        (top, left)
        for top in range(128 - 112 + 1)
        for left in range(171 - 112 + 1)
        if np.array_equal(resized[:, top : top + 112, left : left + 112], out)
    ]
    assert len(found) == 1
    evaluation = P.preprocess_frames(frames, R3D).numpy()
    np.testing.assert_array_equal(P.normalize(P.center_crop(resized, 112), R3D).numpy(), evaluation)


def test_scale_jitter_resizes_before_the_crop():
    frames = _gradient_clip(60, 80, frames=1)
    convention = P.Preprocessing(num_frames=1, crop_size=20, resize=30)
    steps = set()
    for k in range(10):
        out = P.random_resized_crop(frames, convention, tf.constant([k, 0]), (1.0, 2.0)).numpy()
        steps.add(round(float(out[0, 0, 1, 1] - out[0, 0, 0, 1]), 2))  # source px per output px
    assert min(steps) >= 1.0 and max(steps) <= 2.01 and len(steps) > 3


def test_preprocess_frames_takes_a_clip_or_a_batch():
    frames = np.random.default_rng(0).integers(0, 256, (2, 3, 50, 70, 3), np.uint8)
    batch = P.preprocess_frames(frames, R3D).numpy()
    assert batch.shape == (2, 3, 112, 112, 3)
    np.testing.assert_array_equal(P.preprocess_frames(frames[1], R3D).numpy(), batch[1])
    # The one call for a model key, a named weight set or a built model.
    np.testing.assert_array_equal(kvid.preprocess_frames(frames, "r3d_18").numpy(), batch)
    model = kvid.R3D18(alpha=1 / 16, weights=None)
    np.testing.assert_array_equal(kvid.preprocess_frames(frames, model).numpy(), batch)


def test_one_evaluation_clip_is_the_centred_clip():
    for count in (1, 5, 16, 17, 20, 100):
        centred = P.sample_indices(count, 16, 2).numpy()
        np.testing.assert_array_equal(P.multi_clip_indices(count, 16, 2)[0], centred)
        assert P.clip_starts(count, 16, 2)[0] == max(count - 31, 0) // 2


def test_clip_starts_are_centres_of_equal_parts():
    np.testing.assert_array_equal(P.clip_starts(40, 8, 1, 4), [4, 12, 20, 28])  # slack 32
    np.testing.assert_array_equal(P.clip_starts(3, 8, 1, 3), [0, 0, 0])


@pytest.mark.parametrize("shape", [(4, 10, 3), (2, 4, 10, 12, 1)])
def test_frames_of_the_wrong_shape_are_named(shape):
    with pytest.raises(ValueError, match=rf"Received: shape={re.escape(str(shape))}"):
        P.preprocess_frames(np.zeros(shape, np.uint8), R3D)
