"""P3D ResNet-50 and DG-P3D ("Optimization Planning for 3D ConvNets", section 4): its choices.

The registry-wide tests (tests/models/test_registry.py) also cover both keys: class
probabilities, headless shapes, any clip size, a `.keras` round trip in safe mode and
one `fit` step.
"""

import keras
import numpy as np
import pytest

import kvid
from kvid.models import p3d
from kvid.training import train_lib
from tests.models import call, trainable_parameters

TINY = {"alpha": 1 / 16, "blocks_per_stage": (1, 1, 1, 1)}


def clips(batch=2, frames=8, size=64, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(-1, 1, (batch, frames, size, size, 3)).astype("float32")


@pytest.fixture(scope="module")
def tiny_dg():
    return kvid.DGP3D(**TINY, include_top=False)


@pytest.mark.parametrize("frames", [8, 16, 32])
def test_output_shapes_for_8_16_and_32_frame_clips(tiny_dg, frames):
    # 64x64 frames: the stem and its pool divide space by 4, layer2 and layer3 by 2 each.
    names = ["layer3", "temporal_layer4", "spatial_layer4", "fused_features"]
    extractor = kvid.models.feature_extractor(tiny_dg, names)
    outputs = call(extractor, clips(frames=frames))
    assert outputs["layer3"].shape == (2, frames, 4, 4, 64)  # time is never strided in the trunk
    assert outputs["temporal_layer4"].shape == (2, frames, 2, 2, 128)  # long time, low resolution
    assert outputs["spatial_layer4"].shape == (2, frames // 4, 4, 4, 128)  # layer3's resolution
    assert outputs["fused_features"].shape == (2, frames // 4, 2, 2, 256)


def test_top_classifies_8_16_and_32_frame_clips():
    model = kvid.DGP3D(**TINY, classes=5)
    for frames in [8, 16, 32]:
        probabilities = call(model, clips(frames=frames, size=32))
        assert probabilities.shape == (2, 5)
        np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


# A change detector: the counts are kvid's own (no reference implementation is public), as
# recorded in the README's model table (400 classes, BatchNorm statistics not counted).
# test_readme_table.py checks the table against every built model.
@pytest.mark.parametrize(("key", "count"), [("p3d_50", 28_107_600), ("dg_p3d_50", 50_341_858)])
def test_parameter_counts(key, count):
    assert trainable_parameters(key) == count


def p3d_kinds(model, stages):
    """Each block's kind read from the graph (what T takes as input), in stage order."""
    layer_names = {layer.name for layer in model.layers}
    kinds = ""
    for stage in stages:
        block = 0
        while f"{stage}_{block}_conv3" in layer_names:
            name = f"{stage}_{block}"
            source = model.get_layer(f"{name}_conv3").input._keras_history.operation.name
            if source == f"{name}_relu1":
                kinds += "B"  # T sees what S sees: parallel
            elif f"{name}_st_add" in layer_names:
                kinds += "C"  # T follows S, and S skips over T
            else:
                assert source == f"{name}_relu2", name
                kinds += "A"
            block += 1
    return kinds


def test_blocks_interleave_a_b_c_over_the_whole_network():
    trunk = ["layer1", "layer2", "layer3"]
    model = kvid.P3D(alpha=1 / 16, include_top=False)
    assert p3d_kinds(model, [*trunk, "layer4"]) == "ABC" + "ABCA" + "BCABCA" + "BCA"
    # Both DG-P3D heads continue the trunk's count with layer4's kinds.
    dual = kvid.DGP3D(alpha=1 / 16, include_top=False)
    assert p3d_kinds(dual, trunk) == "ABC" + "ABCA" + "BCABCA"
    assert p3d_kinds(dual, ["temporal_layer4"]) == p3d_kinds(dual, ["spatial_layer4"]) == "BCA"


def test_global_context_only_in_dg_p3d_layers_2_to_4():
    plain = kvid.P3D(**TINY, include_top=False)
    assert not [layer.name for layer in plain.layers if "_gc_" in layer.name]
    model = kvid.DGP3D(**TINY, include_top=False)
    stages = {layer.name.split("_gc_")[0] for layer in model.layers if "_gc_" in layer.name}
    assert stages == {"layer2_0", "layer3_0", "temporal_layer4_0", "spatial_layer4_0"}
    # The transform's last map starts at zero: each block starts as its P3D block.
    assert not np.any(model.get_layer("layer2_0_gc_fc2").kernel.numpy())


def test_predictions_are_a_weighted_sum_of_the_two_heads_logits():
    model = kvid.DGP3D(**TINY, classes=6, classifier_activation=None)
    fusion = model.get_layer("fusion")
    np.testing.assert_array_equal(fusion.kernel.numpy(), [[0.5], [0.5]])  # equal at first
    fusion.kernel.assign([[0.25], [2.0]])
    heads = keras.Model(
        model.inputs, [model.get_layer(f"{head}_fc").output for head in p3d.HEADS] + model.outputs
    )
    temporal, spatial, fused = call(heads, clips())
    np.testing.assert_allclose(fused, 0.25 * temporal + 2.0 * spatial, rtol=1e-5, atol=1e-6)


def test_one_fit_step_trains_both_heads_and_the_fusion_weights():
    model = kvid.DGP3D(**TINY, classes=3)
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    names = [
        "temporal_fc",
        "spatial_fc",
        "temporal_layer4_0_conv2",
        "spatial_layer4_0_conv2",
        "fusion",
    ]
    before = {name: model.get_layer(name).kernel.numpy().copy() for name in names}
    history = model.fit(clips(), np.array([0, 2]), epochs=1, batch_size=2, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    for name in names:
        assert not np.array_equal(before[name], model.get_layer(name).kernel.numpy()), name


@pytest.mark.parametrize("pooling", ["avg", "max"])
def test_pooled_features_are_both_heads_pooled_and_concatenated(tiny_dg, pooling):
    pooled = kvid.DGP3D(**TINY, include_top=False, pooling=pooling)
    pooled.set_weights(tiny_dg.get_weights())
    maps = kvid.models.feature_extractor(tiny_dg, ["temporal_layer4", "spatial_layer4"])
    x = clips()
    outputs = call(maps, x)
    reduce = np.mean if pooling == "avg" else np.max
    expected = np.concatenate(
        [reduce(outputs[name], axis=(1, 2, 3)) for name in ["temporal_layer4", "spatial_layer4"]],
        axis=-1,
    )
    np.testing.assert_allclose(call(pooled, x), expected, rtol=1e-5, atol=1e-6)


def test_keras_file_keeps_the_fusion_weights(tmp_path):
    model = kvid.DGP3D(**TINY, classes=3)
    model.get_layer("fusion").kernel.assign([[0.75], [0.25]])
    model.save(tmp_path / "dg_p3d.keras")
    restored = keras.saving.load_model(tmp_path / "dg_p3d.keras", safe_mode=True)
    np.testing.assert_array_equal(restored.get_layer("fusion").kernel.numpy(), [[0.75], [0.25]])
    x = clips(size=32)
    np.testing.assert_array_equal(call(model, x), call(restored, x))


def test_blocks_per_stage_is_validated_with_its_value():
    with pytest.raises(ValueError, match=r"blocks_per_stage=\(3, 4, 6\)"):
        kvid.DGP3D(alpha=1 / 16, blocks_per_stage=(3, 4, 6))


def test_trains_on_the_built_in_dataset_through_the_train_apps_library_call(
    tiny_data_dir, tmp_path
):
    # apps/train.py calls exactly this; the full-depth app run (--model=dg_p3d_50
    # --alpha=0.0625) takes minutes, so the test uses the registry's tiny variant.
    result = train_lib.train(
        "dg_p3d_50",
        model_kwargs=kvid.models.get_spec("dg_p3d_50").test_kwargs,
        data_dir=tiny_data_dir,
        work_dir=str(tmp_path / "run"),
        epochs=1,
        batch_size=4,
        num_frames=4,
        size=32,
        verbose=0,
    )
    assert np.isfinite(result.history["loss"][0])
    assert 0 <= result.val_accuracy <= 1
    # The heads' fusion weights start equal (0.5 each) and the epoch moved them.
    assert not np.array_equal(result.model.get_layer("fusion").kernel.numpy(), [[0.5], [0.5]])
