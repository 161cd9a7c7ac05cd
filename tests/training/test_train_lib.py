import csv
import dataclasses
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import kvid
from kvid import preprocessing
from kvid.models import get_model, get_spec
from kvid.training import callbacks, train_lib
from tests import parity
from tests.training import helpers


def test_train_with_every_option_then_export(tiny_data_dir, tmp_path):
    work_dir = tmp_path / "run"
    result = train_lib.train(
        **helpers.TINY,
        data_dir=tiny_data_dir,
        work_dir=str(work_dir),
        export_dir=str(tmp_path / "export"),
        reversed_evaluation=True,
        epochs=2,
        optimizer="sgd",
        learning_rate=0.01,
        schedule="step",
        milestones=(1,),
        warmup_epochs=0.5,
        weight_decay=1e-4,
        label_smoothing=0.1,
        gradient_accumulation_steps=2,
        freeze_batch_norm=True,
    )
    assert result.model.jit_compile is False  # XLA's Conv3D is slower on CPU
    assert len(result.history["loss"]) == 2
    assert 0 <= result.val_accuracy <= 1 and 0 <= result.reversed_val_accuracy <= 1
    assert result.class_names == sorted(result.class_names) and len(result.class_names) == 8
    with open(work_dir / callbacks.TRAINING_LOG) as f:
        assert [row["epoch"] for row in csv.DictReader(f)] == ["0", "1"]
    assert (work_dir / callbacks.BEST_MODEL).exists() and (work_dir / "logs").is_dir()
    # The library exported it, with the run's transform: no resize of the built-in dataset's
    # 32-pixel frames, the whole frame as the crop. Frames of another size are resized the
    # same way the evaluation views are, so the served probabilities are the model's.
    assert result.export_path == str(tmp_path / "export" / "r3d_18" / "1")
    assert result.preprocessing.crop_shape == (32, 32) and result.preprocessing.resize == 32
    served = tf.saved_model.load(result.export_path).signatures["serving_default"]
    frames = np.random.default_rng(0).integers(0, 256, (2, 4, 40, 48, 3), dtype=np.uint8)
    probs = served(frames=tf.constant(frames))["probabilities"].numpy()
    clips = preprocessing.preprocess_frames(frames, result.preprocessing)
    expected = keras.ops.convert_to_numpy(result.model(clips, training=False))
    # Near-uniform probabilities hide a wrong transform: compare the logits (log-probabilities
    # up to a constant per clip) at the export tests' scale.
    parity.assert_close_to_scale(centered_logits(probs), centered_logits(expected), 1e-5)
    # The convention travels in the saved model too.
    best = keras.saving.load_model(work_dir / callbacks.BEST_MODEL, safe_mode=True)
    assert kvid.layers.model_preprocessing(best) == result.preprocessing


def centered_logits(probabilities):
    logits = np.log(np.asarray(probabilities, np.float64))
    return logits - logits.mean(axis=-1, keepdims=True)


def test_train_config_defaults_are_for_real_data_and_the_demo_is_separate(tmp_path):
    config = train_lib.TrainConfig(data_dir=str(tmp_path))
    assert config.alpha is None and config.time_budget is None and config.size is None
    assert not config.uses_builtin_dataset
    demo = train_lib.TrainConfig.demo()
    assert (demo.alpha, demo.size, demo.time_budget, demo.reversed_evaluation) == (
        0.25,
        64,
        540.0,
        True,
    )
    assert demo.fit_budget and not config.fit_budget
    assert demo.uses_builtin_dataset
    # Real data: the model's registered convention, or scaled to another crop.
    assert train_lib.clip_preprocessing(config) == dataclasses.replace(
        kvid.models.get_preprocessing("s3dg"), num_frames=16
    )
    small = dataclasses.replace(config, model="r3d_18", size=56)
    assert train_lib.clip_preprocessing(small).resize == (64, 86)
    with pytest.raises(ValueError, match="optimizer='adagrad'"):
        train_lib.TrainConfig(optimizer="adagrad")
    with pytest.raises(ValueError, match="epochs=0"):
        train_lib.TrainConfig(epochs=0)


def test_flags_are_generated_from_the_config():
    from absl import flags

    from apps import _flags

    values = flags.FlagValues()
    config = train_lib.TrainConfig
    _flags.define_config_flags(config, values, defaults={"export_dir": "saved_models"})
    values(["train", "--epochs=3", "--milestones=2,4", "--scale_range=1,1.5"])
    demo = _flags.config_from_flags(config, values, base=config.demo())
    assert demo == train_lib.TrainConfig.demo(
        epochs=3, milestones=(2, 4), scale_range=(1.0, 1.5), export_dir="saved_models"
    )
    values.unparse_flags()
    values(["train", "--data_dir=videos", "--model=r2plus1d_18"])
    real = _flags.config_from_flags(config, values)
    assert real == train_lib.TrainConfig(
        data_dir="videos", model="r2plus1d_18", export_dir="saved_models"
    )
    assert real.alpha is None and real.time_budget is None  # full width, all its epochs
    assert values["optimizer"].parser.enum_values == list(train_lib.OPTIMIZERS)


def test_freeze_batch_norm_keeps_only_the_first_trainable():
    model = get_model("r3d_18", **get_spec("r3d_18").test_kwargs, input_shape=(4, 32, 32, 3))
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert train_lib.freeze_batch_norm_except_first(model) == len(norms) - 1 > 3
    assert [layer.trainable for layer in norms] == [True] + [False] * (len(norms) - 1)


def test_weight_decay_spares_biases_and_norms():
    optimizer = train_lib.make_optimizer("sgd", 0.5, weight_decay=0.1)
    kernel = keras.Variable(np.ones(3, "float32"), name="kernel")
    bias = keras.Variable(np.ones(3, "float32"), name="bias")
    gamma = keras.Variable(np.ones(3, "float32"), name="gamma")
    optimizer.apply([np.zeros(3, "float32")] * 3, [kernel, bias, gamma])
    np.testing.assert_allclose(kernel.numpy(), 1 - 0.5 * 0.1)
    np.testing.assert_allclose(bias.numpy(), 1.0)
    np.testing.assert_allclose(gamma.numpy(), 1.0)


def test_gradient_accumulation_updates_every_n_batches_with_the_mean():
    optimizer = train_lib.make_optimizer("sgd", 1.0, gradient_accumulation_steps=2)
    weight = keras.Variable(np.zeros(2, "float32"))
    optimizer.apply([np.array([1.0, 3.0], "float32")], [weight])
    np.testing.assert_allclose(weight.numpy(), [0, 0])
    optimizer.apply([np.array([3.0, 5.0], "float32")], [weight])
    np.testing.assert_allclose(weight.numpy(), [-2.0, -4.0])


def test_bad_arguments_are_named(tiny_data_dir, tmp_path):
    with pytest.raises(ValueError, match="optimizer='adagrad'"):
        train_lib.make_optimizer("adagrad", 0.1)
    with pytest.raises(ValueError, match="batch_size=64"):
        train_lib.train(
            **{**helpers.TINY, "batch_size": 64}, data_dir=tiny_data_dir, work_dir=str(tmp_path)
        )
    with pytest.raises(ValueError, match="`directory` must be a directory"):
        train_lib.train(**helpers.TINY, data_dir=str(tmp_path / "nope"), work_dir=str(tmp_path))


def test_builtin_dataset_is_written_once_per_configuration(tmp_path):
    root = helpers.tiny_dataset(tmp_path)
    assert os.path.basename(root) == "kvid_synthetic_v3_4f_32px_2-1_s0"
    assert len(os.listdir(os.path.join(root, "train"))) == 8
    assert helpers.tiny_dataset(tmp_path) == root


def test_fit_budget_times_a_step_then_trains_fewer_clips_per_epoch_in_mixed_precision(
    tiny_data_dir, tmp_path, monkeypatch, capsys
):
    # A machine where a step takes 100 s: 16 clips in batches of 4 are 4 steps an epoch, and
    # the budget affords 2 (the floor of total steps lowered to let it choose so) after the
    # time reserved before and after training (measured, then fixed at 100 s here, so the
    # plan does not depend on this machine's speed). The real steps are far faster, so the
    # budget's guard (1.5x the plan) does not stop the run.
    monkeypatch.setattr(train_lib.budget_lib, "measure_step_seconds", lambda step, **kw: 100.0)
    monkeypatch.setattr(train_lib.budget_lib, "measure_input_seconds", lambda batches: 0.0)
    plan, measured = train_lib.budget_lib.plan, []

    def fixed_reserve(*args, reserved_seconds, **kwargs):
        measured.append(reserved_seconds)
        return plan(*args, **kwargs, reserved_seconds=100.0, min_total_steps=2)

    monkeypatch.setattr(train_lib.budget_lib, "plan", fixed_reserve)
    afford = 100 + train_lib.budget_lib.estimate_seconds(
        100.0, epochs=2, steps_per_epoch=2, validation_steps=2, evaluation_steps=2
    )
    work_dir = tmp_path / "run"
    result = train_lib.train(
        **helpers.TINY,
        data_dir=tiny_data_dir,
        work_dir=str(work_dir),
        epochs=2,
        time_budget=afford + 1,
        fit_budget=True,
        mixed_precision="mixed_bfloat16",
    )
    assert "budget: step 100.000 s at 32px" in capsys.readouterr().out
    chosen = train_lib.budget_lib.WorkPlan(
        **json.loads((work_dir / train_lib.BUDGET_FILE).read_text())
    )
    assert (chosen.size, chosen.steps_per_epoch, chosen.epochs) == (32, 2, 2)
    (reserved,) = measured
    assert reserved > 0  # the time spent before planning and 4 x the first step's trace
    assert len(result.history["loss"]) == 2
    with open(work_dir / callbacks.TRAINING_LOG) as f:
        assert [row["epoch"] for row in csv.DictReader(f)] == ["0", "1"]
    assert keras.mixed_precision.global_policy().name == "float32"  # restored
    convs = [layer for layer in result.model.layers if isinstance(layer, keras.layers.Conv3D)]
    assert convs[0].dtype_policy.name == "mixed_bfloat16"
