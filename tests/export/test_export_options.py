"""How `export_saved_model` finds preprocessing, probabilities, class names and versions."""

import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

import kvid
import kvid.export
from tests.export.test_saved_model import TOLERANCE, assert_top_k, reference_inputs, synthetic_clip
from tests.export.tf_only_client import unregistered_ops

TINY = kvid.models.get_spec("r3d_18").test_kwargs


def serve(path, frames):
    return tf.saved_model.load(path).signatures["serving_default"](frames=tf.constant(frames))


def test_softmax_model_is_not_softmaxed_twice_and_gets_kinetics_names(tmp_path):
    model = kvid.get_model("r3d_18", **TINY)  # 400 classes, softmax head
    frames = synthetic_clip(np.random.default_rng(1), 2, 64, 80)[None]
    expected = model.predict(
        reference_inputs(frames, kvid.models.get_preprocessing("r3d_18")), verbose=0
    )

    result = serve(kvid.export.export_saved_model(model, tmp_path / "m"), frames)

    assert np.abs(result["probabilities"].numpy() - expected).max() <= TOLERANCE
    assert_top_k(
        result["top_k_indices"].numpy(),
        result["top_k_scores"].numpy(),
        expected,
        kvid.weights.kinetics400_categories(),
        result["top_k_classes"].numpy(),
    )
    assert result["top_k_indices"].shape == (1, kvid.export.saved_model.DEFAULT_TOP_K)


def test_user_head_on_a_kvid_backbone_finds_the_backbone_preprocessing(tmp_path):
    backbone = kvid.get_model("r3d_18", **TINY, include_top=False, pooling="avg")
    inputs = keras.Input((None, None, None, 3))
    outputs = keras.layers.Dense(3, activation="softmax")(backbone(inputs))
    model = keras.Model(inputs, outputs, name="my_classifier")
    preprocessing = kvid.models.model_convention(model)
    assert preprocessing == kvid.models.get_preprocessing("r3d_18")
    frames = synthetic_clip(np.random.default_rng(2), 2, 40, 60)[None]
    expected = model.predict(reference_inputs(frames, preprocessing), verbose=0)

    result = serve(kvid.export.export_saved_model(model, tmp_path / "m"), frames)

    # 3 classes without names: top-3, named by index.
    assert sorted(result) == ["probabilities", "top_k_classes", "top_k_indices", "top_k_scores"]
    names = result["top_k_classes"].numpy().astype(str)
    np.testing.assert_array_equal(
        names, np.char.add("class_", result["top_k_indices"].numpy().astype(str))
    )
    assert np.abs(result["probabilities"].numpy() - expected).max() <= TOLERANCE
    assert_top_k(result["top_k_indices"].numpy(), result["top_k_scores"].numpy(), expected)


def test_fine_tuned_backbone_keeps_its_preprocessing_through_fit_save_and_export(tmp_path):
    # The keras.applications fine-tuning pattern: the backbone's layers are inlined into a
    # new functional model named "functional", with no nested kvid model to find. Nothing
    # here depends on the family: the tiny video ResNet stands for every model.
    backbone = kvid.get_model(
        "r3d_18", **TINY, include_top=False, pooling="avg", input_shape=(4, 32, 32, 3)
    )
    model = keras.Model(
        backbone.input, keras.layers.Dense(2, activation="softmax")(backbone.output)
    )
    model.compile("sgd", "sparse_categorical_crossentropy")
    model.train_on_batch(np.zeros((2, 4, 32, 32, 3), "float32"), np.array([0, 1]))
    path = tmp_path / "tuned.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    r3d = kvid.models.get_preprocessing("r3d_18")
    assert kvid.layers.model_preprocessing(loaded) == r3d
    # r3d_18's crop is 112: the export fits the convention to the model's 32 pixels, as the
    # datasets do for image_size=(32, 32), without being told.
    small = dataclasses.replace(kvid.preprocessing.rescaled(r3d, 32), num_frames=4)
    assert kvid.models.model_convention(loaded) == small
    frames = synthetic_clip(np.random.default_rng(3), 4, 36, 48)[None]
    result = serve(kvid.export.export_saved_model(loaded, tmp_path / "m"), frames)
    expected = loaded.predict(reference_inputs(frames, small), verbose=0)
    assert np.abs(result["probabilities"].numpy() - expected).max() <= TOLERANCE


def test_unknown_model_asks_for_preprocessing():
    inputs = keras.Input((None, None, None, 3))
    x = keras.layers.GlobalAveragePooling3D()(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2)(x), name="mine")
    with pytest.raises(ValueError, match=r"model 'mine' expects.*Pass `preprocessing=`"):
        kvid.export.export_saved_model(model, "unused")
    assert kvid.models.model_convention(model, "mc3_18") == (
        kvid.models.get_preprocessing("mc3_18")
    )


def test_unclear_activation_asks_for_logits(tmp_path):
    # A sigmoid is clear since multi-label exports (sigmoid_probabilities); a ReLU is not.
    model = kvid.get_model("r3d_18", **TINY, classes=2, classifier_activation="relu")
    with pytest.raises(ValueError, match=r"activation 'relu'.*Pass `logits=True`"):
        kvid.export.export_saved_model(model, tmp_path)


def test_bad_class_names_and_existing_version_are_rejected(tmp_path):
    model = kvid.get_model("r3d_18", **TINY, classes=2)
    with pytest.raises(ValueError, match=r"one name per class \(2\). Received: 3 class names"):
        kvid.export.export_saved_model(model, tmp_path, class_names=["a", "b", "c"])
    (tmp_path / "3").mkdir()
    (tmp_path / "notes").mkdir()
    assert kvid.export.next_version(tmp_path) == 4
    assert kvid.export.next_version(tmp_path / "missing") == 1
    with pytest.raises(ValueError, match=r"already exists.*/3"):
        kvid.export.export_saved_model(model, tmp_path, version=3)


def test_op_check_flags_ops_plain_tensorflow_does_not_register(tmp_path):
    saved_model = saved_model_pb2.SavedModel()
    graph = saved_model.meta_graphs.add().graph_def
    graph.node.add(name="x", op="Placeholder")
    function = graph.library.function.add()
    function.signature.name = "serve"
    function.node_def.add(name="y", op="KvidFusedConv")
    graph.node.add(name="call", op="serve")  # a direct call of a library function is fine
    (tmp_path / "saved_model.pb").write_bytes(saved_model.SerializeToString())
    assert unregistered_ops(tmp_path / "saved_model.pb") == ["KvidFusedConv"]
