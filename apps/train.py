"""Trains a kvid model; with no arguments, S3D-G (alpha 0.25) on the built-in dataset.

The last line printed is `val_accuracy=... reversed_val_accuracy=... seconds=...`.
"""

import dataclasses
import os
import time

from absl import app, flags

import kvid.export
from kvid.training import plots, train_lib

FLAGS = flags.FLAGS
flags.DEFINE_string("model", "s3dg", "Registry key of the model (see kvid.list_models()).")
flags.DEFINE_float("alpha", 0.25, "Width multiplier of the model.")
flags.DEFINE_string(
    "data_dir",
    None,
    "Folder with train/ and validation/ class folders; unset: the built-in synthetic dataset.",
)
flags.DEFINE_string("work_dir", "runs/train", "Checkpoints, backups and logs; rerun to resume.")
flags.DEFINE_bool("resume", True, "Resume the run in --work_dir; --noresume starts afresh.")
flags.DEFINE_string("export_dir", "saved_models", "Where the SavedModel goes ('' to skip).")
flags.DEFINE_integer("epochs", 8, "Epochs to train (the cosine ends with the last).")
flags.DEFINE_integer("batch_size", 16, "Global batch size.")
flags.DEFINE_integer("num_frames", 16, "Frames per clip.")
flags.DEFINE_integer("size", 64, "Frame side in pixels.")
flags.DEFINE_enum("optimizer", "adam", train_lib.OPTIMIZERS, "The optimizer.")
flags.DEFINE_float("learning_rate", 1e-3, "Peak learning rate.")
flags.DEFINE_enum("schedule", "cosine", ["constant", "step", "cosine"], "After warm-up.")
flags.DEFINE_float("warmup_epochs", 1.0, "Epochs of linear warm-up.")
flags.DEFINE_list("milestones", [], "Epochs at which the 'step' schedule decays.")
flags.DEFINE_float("gamma", 0.1, "Decay factor of the 'step' schedule.")
flags.DEFINE_float("weight_decay", 0.0, "Decoupled weight decay.")
flags.DEFINE_float("label_smoothing", 0.0, "Label smoothing, e.g. 0.1.")
flags.DEFINE_integer("gradient_accumulation_steps", None, "Batches per update (>= 2).")
flags.DEFINE_bool("freeze_batch_norm", False, "Freeze all BatchNorm layers but the first.")
flags.DEFINE_enum("mixed_precision", None, ["mixed_float16", "mixed_bfloat16"], "Policy.")
flags.DEFINE_enum("strategy", "auto", ["auto", "default", "mirrored", "multi_worker"], "")
flags.DEFINE_bool("jit_compile", None, "XLA; unset: only with a GPU.")
flags.DEFINE_float("time_budget", 530, "Stop after the epoch that would overrun (seconds).")
flags.DEFINE_integer("train_per_class", 375, "Built-in dataset: training videos per class.")
flags.DEFINE_integer("validation_per_class", 125, "Built-in dataset: validation videos per class.")
flags.DEFINE_integer("seed", 0, "Seed of the data and the initialisation.")


def main(argv):
    """Rejects stray arguments and runs the library function."""
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    result = train_lib.train(
        FLAGS.model,
        data_dir=FLAGS.data_dir,
        work_dir=FLAGS.work_dir,
        model_kwargs={"alpha": FLAGS.alpha},
        epochs=FLAGS.epochs,
        batch_size=FLAGS.batch_size,
        num_frames=FLAGS.num_frames,
        size=FLAGS.size,
        optimizer=FLAGS.optimizer,
        learning_rate=FLAGS.learning_rate,
        schedule=FLAGS.schedule,
        warmup_epochs=FLAGS.warmup_epochs,
        milestones=tuple(int(m) for m in FLAGS.milestones),
        gamma=FLAGS.gamma,
        weight_decay=FLAGS.weight_decay,
        label_smoothing=FLAGS.label_smoothing,
        gradient_accumulation_steps=FLAGS.gradient_accumulation_steps,
        freeze_batch_norm=FLAGS.freeze_batch_norm,
        mixed_precision=FLAGS.mixed_precision,
        strategy=FLAGS.strategy,
        jit_compile=FLAGS.jit_compile,
        time_budget=FLAGS.time_budget or None,
        synthetic_kwargs={
            "train_per_class": FLAGS.train_per_class,
            "validation_per_class": FLAGS.validation_per_class,
        },
        seed=FLAGS.seed,
        resume=FLAGS.resume,
    )
    started = time.monotonic()
    if result.is_chief:
        print(f"training curves: {plots.write_training_curves(FLAGS.work_dir)}")
    if FLAGS.export_dir and result.is_chief:
        path = kvid.export.export_saved_model(
            result.model,
            os.path.join(FLAGS.export_dir, FLAGS.model),
            class_names=result.class_names,
            preprocessing=result.preprocessing,
        )
        print(f"exported: {path}")
    exported = dataclasses.replace(result, seconds=result.seconds + time.monotonic() - started)
    print(exported.summary())


def run():
    """Console-script entry point."""
    app.run(main)


if __name__ == "__main__":
    run()
