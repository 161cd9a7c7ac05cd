"""Trains a kvid model; with no --data_dir, the demo: quarter-width S3D-G on the built-in dataset.

Every flag is a field of `kvid.training.TrainConfig`; flags left unset take the
demo's values without `--data_dir` (`TrainConfig.demo()`) and a full-width
model trained for its epochs with it. The library exports the model. The last
line printed is `val_accuracy=... reversed_val_accuracy=... seconds=...`.

With `--plan`, the training path (clip length and learning rate per stage) is
planned instead (`kvid.planning.plan`, flags `--plan_*`); it prints the
chosen path, the plan's picture and the planned model's validation accuracy.
"""

from absl import app, flags

from kvid import plots
from kvid.planning import plan as planning
from kvid.training import train_lib

FLAGS = flags.FLAGS
train_lib.define_flags(FLAGS, defaults={"export_dir": "saved_models"})
planning.define_flags(FLAGS)


def main(argv):
    """Rejects stray arguments and runs the library function."""
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    config = train_lib.config_from_flags(FLAGS)
    if FLAGS.plan:
        plan = planning.config_from_flags(FLAGS, demo=config.data_dir is None)
        result = planning.plan_training(config, plan)
        print(f"plan figure: {result.figure}")
    else:
        result = train_lib.train(config)
        if result.is_chief:
            print(f"training curves: {plots.write_training_curves(FLAGS.work_dir)}")
    if result.export_path:
        print(f"exported: {result.export_path}")
    print(result.summary())


def run():
    """Console-script entry point."""
    app.run(main)


if __name__ == "__main__":
    run()
