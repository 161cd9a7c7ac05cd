"""I3D, S3D and S3D-G: sizes, parameter counts, surgery, endpoints, training and saving."""

import keras
import numpy as np
import pytest

import kvid
from kvid.models import inception
from kvid.models.flops import count_flops
from kvid.models.i3d import DIALECT as I3D_DIALECT
from kvid.models.s3d import S3D_DIALECT, s3dg_dialect
from tests.models import assert_every_kernel_trained, trainable_parameters

FACTORIES = {"i3d": kvid.I3D, "s3d": kvid.S3D, "s3dg": kvid.S3DG}
DIALECTS = {"i3d": I3D_DIALECT, "s3d": S3D_DIALECT, "s3dg": s3dg_dialect(False)}
TINY = 1 / 16


@pytest.mark.parametrize(
    "key, kwargs, expected",
    [
        ("i3d", {}, 12_697_264),  # the reference's state dict, BN running stats excluded
        ("s3d", {}, 8_320_048),  # torchvision's num_params
        ("s3dg", {"classes": 512}, 9_649_872),  # the HowTo100M tower with its 512-d head
    ],
)
def test_parameter_counts_match_the_references(key, kwargs, expected):
    assert trainable_parameters(key, **kwargs) == expected


def test_the_s3dg_space_to_depth_stem_has_the_released_weights_conv1_shape():
    model = kvid.S3DG(include_top=False, space_to_depth=True)
    assert tuple(model.get_layer("conv1_conv1").kernel.shape) == (2, 4, 4, 24, 64)


@pytest.mark.parametrize(
    "surgery, expected",
    [
        (None, set(inception.SURGERY_LAYERS)),
        ("i2d", set()),
        ("bottom_heavy_2", {"Conv3d_1a_7x7", "Conv3d_2c_3x3"}),
        ("top_heavy_3", {"Mixed_4f", "Mixed_5b", "Mixed_5c"}),
        ("top_heavy_0", set()),
        (["Mixed_4b"], {"Mixed_4b"}),
    ],
)
def test_surgery_names_the_layers_that_stay_3d(surgery, expected):
    assert inception.temporal_layers(surgery) == expected


@pytest.mark.parametrize("surgery", ["top_heavy_12", "middle_heavy_2", "I2D", ["Mixed_9z"]])
def test_bad_surgery_is_rejected(surgery):
    with pytest.raises(ValueError, match="surgery"):
        kvid.I3D(alpha=TINY, surgery=surgery)


def _temporal_kernels(model, prefix):
    """Temporal kernel sizes of the convs and pools under the reference module `prefix`."""
    sizes = []
    for layer in model.layers:
        if layer.name.startswith(prefix + "_"):
            if isinstance(layer, keras.layers.Conv3D):
                sizes.append(layer.kernel_size[0])
            elif isinstance(layer, keras.layers.MaxPooling3D):
                sizes.append(layer.pool_size[0])
    return sizes


@pytest.mark.parametrize("key", sorted(FACTORIES))
@pytest.mark.parametrize("surgery", ["i2d", "top_heavy_4", "bottom_heavy_3"])
def test_deflated_layers_have_temporal_kernels_of_one(key, surgery):
    model = FACTORIES[key](include_top=False, alpha=TINY, surgery=surgery)
    kept = inception.temporal_layers(surgery)
    for layer_name in inception.SURGERY_LAYERS:
        kernels = _temporal_kernels(model, DIALECTS[key].names[layer_name])
        assert kernels, layer_name
        if layer_name in kept:
            assert max(kernels) > 1, layer_name
        else:
            assert set(kernels) == {1}, (layer_name, kernels)


def test_i2d_keeps_only_the_two_temporally_striding_pools_3d():
    model = kvid.I3D(include_top=False, alpha=TINY, surgery="i2d")
    temporal = {
        layer.name
        for layer in model.layers
        if isinstance(layer, (keras.layers.Conv3D, keras.layers.MaxPooling3D))
        and (getattr(layer, "kernel_size", None) or layer.pool_size)[0] > 1
    }
    assert temporal == {"MaxPool3d_4a_3x3", "MaxPool3d_5a_2x2"}


@pytest.mark.parametrize("key", sorted(FACTORIES))
def test_flops_fall_as_layers_are_deflated(key):
    clip = (16, 64, 64, 3)

    def flops(surgery):
        return count_flops(FACTORIES[key](include_top=False, alpha=TINY, surgery=surgery), clip)

    full, i2d = flops(None), flops("i2d")
    top, bottom = flops("top_heavy_5"), flops("bottom_heavy_5")
    assert full > bottom > top > i2d
    assert flops("top_heavy_8") > top


@pytest.mark.parametrize(
    "key, smallest", [("i3d", (1, 1, 1, 3)), ("s3d", (5, 17, 17, 3)), ("s3dg", (1, 1, 1, 3))]
)
def test_the_classifier_works_below_the_references_smallest_clip(key, smallest):
    model = FACTORIES[key](alpha=TINY, classes=5)
    for shape in [smallest, (8, 32, 32, 3)]:
        assert model(np.zeros((1, *shape), "float32")).shape == (1, 5)


@pytest.mark.parametrize(
    "key, smallest", [("i3d", (1, 1, 1, 3)), ("s3d", (5, 17, 17, 3)), ("s3dg", (1, 1, 1, 3))]
)
def test_without_the_classifier_small_clips_work(key, smallest):
    model = FACTORIES[key](include_top=False, pooling="avg", alpha=TINY)
    features = model(np.zeros((1, *smallest), "float32"))
    assert features.shape == (1, model.output.shape[-1])


@pytest.mark.parametrize("key", sorted(FACTORIES))
def test_endpoints_are_layers_usable_for_feature_extraction(key):
    spec = kvid.models.get_spec(key)
    assert spec.endpoints == inception.ENDPOINTS
    model = spec.build(include_top=False, alpha=TINY)
    extractor = kvid.models.feature_extractor(model, ["Mixed_4f", "Mixed_5c"])
    features = extractor(np.zeros((1, 16, 64, 64, 3), "float32"))
    # The concat of the four branch outputs: b0, b1b, b2b, b3b.
    branch_widths = [inception.BLOCK_WIDTHS["Mixed_4f"][i] for i in (0, 2, 4, 5)]
    mixed_4f = sum(max(1, round(width * TINY)) for width in branch_widths)
    assert features["Mixed_4f"].shape == (1, 4, 4, 4, mixed_4f)
    assert features["Mixed_5c"].shape[:4] == (1, 2, 2, 2)


def test_quarter_width_s3dg_trains_on_small_clips():
    keras.utils.set_random_seed(0)
    model = kvid.S3DG(alpha=0.25, input_shape=(16, 64, 64, 3), classes=8)
    model.compile(
        optimizer=keras.optimizers.SGD(0.01),
        loss="sparse_categorical_crossentropy",
        run_eagerly=True,  # tracing the train step costs more than one eager step
    )
    x = np.random.default_rng(0).uniform(0, 1, size=(2, 16, 64, 64, 3)).astype("float32")
    before = {w.path: w.numpy().copy() for w in model.weights}
    loss = model.train_on_batch(x, np.array([1, 5]))
    assert np.isfinite(loss)
    assert_every_kernel_trained(model, before)


def test_s3dg_round_trips_through_a_keras_file_in_safe_mode(tmp_path):
    model = kvid.S3DG(alpha=TINY, classes=4, space_to_depth=True)
    x = np.random.default_rng(0).uniform(0, 1, size=(1, 4, 32, 32, 3)).astype("float32")
    path = tmp_path / "s3dg.keras"
    model.save(path)
    restored = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(restored(x), model(x), rtol=1e-5, atol=1e-6)


def test_the_space_to_depth_stem_cannot_be_deflated():
    with pytest.raises(ValueError, match="space-to-depth"):
        kvid.S3DG(alpha=TINY, space_to_depth=True, surgery="i2d")


@pytest.mark.parametrize(
    "key, pixel_range, resize",
    [("i3d", (-1.0, 1.0), 256), ("s3d", (0.0, 1.0), (256, 256)), ("s3dg", (0.0, 1.0), 256)],
)
def test_preprocessing_follows_the_reference(key, pixel_range, resize):
    convention = kvid.models.get_preprocessing(key)
    assert (convention.pixel_range, convention.resize, convention.crop_size) == (
        pixel_range,
        resize,
        224,
    )
    white = kvid.preprocess_input(np.full((1, 1, 1, 1, 3), 255, "uint8"), key)
    expected = (pixel_range[1] - np.array(convention.mean)) / np.array(convention.std)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(white)[0, 0, 0, 0], expected, rtol=1e-6)


def test_i3d_runs_at_25_fps_and_s3d_uses_torchvision_statistics():
    assert kvid.models.get_preprocessing("i3d").fps == 25.0
    assert kvid.models.get_preprocessing("s3d").mean == (0.43216, 0.394666, 0.37645)
