"""Trains a kvid model; with no --data_dir, the demo: quarter-width S3D-G on the built-in dataset.

Every flag is a field of `kvid.training.TrainConfig`; flags left unset take the
demo's values without `--data_dir` (`TrainConfig.demo()`) and a full-width
model trained for its epochs with it. The library exports the model. The last
line printed is `val_accuracy=... reversed_val_accuracy=... seconds=...`;
with `--multi_label` (sigmoid head, the built-in two-polygon variant without
`--data_dir`) it is `val_mAP=... reversed_val_mAP=... seconds=...`.

With `--plan`, the training path (clip length and learning rate per stage) is
planned instead (`kvid.planning.plan`, flags `--plan_*`); it prints the
chosen path, the plan's picture and the planned model's validation accuracy.
"""

from absl import app, flags

from kvid import plots
from kvid.planning import plan as planning
from kvid.training import train_lib

from . import _flags

FLAGS = flags.FLAGS
_flags.define_config_flags(train_lib.TrainConfig, defaults={"export_dir": "saved_models"})
flags.DEFINE_bool(
    "plan",
    False,
    "Plan the training path (Optimization Planning for 3D ConvNets) instead of one schedule.",
)
_flags.define_config_flags(planning.PlanConfig, prefix="plan_")


def main(argv):
    """Rejects stray arguments and runs the library function."""
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    demo = FLAGS.data_dir is None
    config = _flags.config_from_flags(
        train_lib.TrainConfig,
        base=train_lib.TrainConfig.demo(multi_label=FLAGS.multi_label) if demo else None,
    )
    if FLAGS.plan:
        plan = _flags.config_from_flags(
            planning.PlanConfig, prefix="plan_", base=planning.PlanConfig.demo() if demo else None
        )
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
