"""Video ResNets: "A closer look at spatiotemporal convolutions" tables 1-2, and torchvision."""

import keras
import numpy as np
import pytest

import kvid
from tests.models import trainable_parameters


@pytest.mark.parametrize(
    ("key", "count"),
    [("r3d_18", 33_371_472), ("mc3_18", 11_695_440), ("r2plus1d_18", 31_505_325)],
)
def test_torchvision_variants_have_torchvision_parameter_counts(key, count):
    assert trainable_parameters(key) == count


# "A closer look at spatiotemporal convolutions" table 2, in millions, ResNet-18 on 8-frame clips.
TABLE_2 = {
    "r2d_18": 11.4, "fr2d_18": 11.4, "r3d_18": 33.4, "mc2_18": 11.4, "mc3_18": 11.7,
    "mc4_18": 12.7, "mc5_18": 16.9, "rmc2_18": 33.3, "rmc3_18": 33.0, "rmc4_18": 32.0,
    "rmc5_18": 27.9,
}  # fmt: skip


@pytest.mark.parametrize(("key", "millions"), TABLE_2.items())
def test_parameter_counts_match_the_paper(key, millions):
    assert abs(trainable_parameters(key) / 1e6 - millions) <= 0.1


def temporal_kernels(model):
    return {
        layer.name: layer.kernel_size[0]
        for layer in model.layers
        if isinstance(layer, keras.layers.Conv3D) and "downsample" not in layer.name
    }


@pytest.mark.parametrize(
    ("key", "three_d_groups"),
    [("mc3_18", {"stem", "layer1"}), ("rmc3_18", {"layer2", "layer3", "layer4"})],
)
def test_mixed_convolutions_are_3d_exactly_in_their_groups(key, three_d_groups):
    model = kvid.get_model(key, alpha=1 / 16)
    for name, temporal in temporal_kernels(model).items():
        group = name.split("_")[0]
        assert temporal == (3 if group in three_d_groups else 1), name


def test_r2d_folds_the_whole_clip_into_its_first_convolution():
    model = kvid.R2D18(input_shape=(8, 32, 32, 3), alpha=1 / 16, include_top=False)
    assert model.get_layer("stem_0").kernel_size == (8, 7, 7)
    assert model.get_layer("stem").output.shape[1] == 1
    assert set(temporal_kernels(model).values()) == {1, 8}


def test_2plus1d_middle_width_follows_torchvision():
    # (in * out * 27) // (in * 9 + 3 * out) for layer2's first block: in 64, out 128.
    model = kvid.R2Plus1D18()
    assert model.get_layer("layer2_0_conv1_0_0").filters == (64 * 128 * 27) // (64 * 9 + 3 * 128)
    assert model.get_layer("layer2_0_conv2_0_0").filters == (64 * 128 * 27) // (64 * 9 + 3 * 128)


@pytest.mark.parametrize(
    ("key", "frames_out"), [("r3d_18", 1), ("mc3_18", 8), ("fr2d_18", 8), ("r2plus1d_18", 1)]
)
def test_temporal_striding_only_in_temporal_convolutions(key, frames_out):
    # The same paper: an 8x112x112 clip ends 1x7x7 for R3D/R(2+1)D, 8x7x7 when time never strides.
    model = kvid.get_model(key, alpha=1 / 16, include_top=False, input_shape=(8, 112, 112, 3))
    assert model.output_shape[1:4] == (frames_out, 7, 7)


def test_feature_extractor_returns_named_stages():
    model = kvid.R3D18(alpha=1 / 16, include_top=False)
    extractor = kvid.models.feature_extractor(model, ["layer1", "layer4"])
    outputs = extractor.predict(np.zeros((1, 8, 32, 32, 3), "float32"), verbose=0)
    # No max-pool in video ResNets: the stem halves space, stages 2-4 halve time and space.
    assert outputs["layer1"].shape == (1, 8, 16, 16, 4)
    assert outputs["layer4"].shape == (1, 1, 2, 2, 32)


def test_feature_extractor_names_unknown_endpoints():
    model = kvid.R3D18(alpha=1 / 16, include_top=False)
    with pytest.raises(ValueError, match="layer9"):
        kvid.models.feature_extractor(model, ["layer9"])
