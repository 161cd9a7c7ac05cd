"""Exports a registry model for TensorFlow Serving: `<export_dir>/<version>/`.

Example:
    python -m apps.export --model=r3d_18 --weights=r3d_18.weights.h5
"""

from absl import app, flags

import kvid.export

flags.DEFINE_string("model", None, "Registry key of the model, e.g. r2plus1d_18.", required=True)
flags.DEFINE_string("weights", None, "A weights file or registered weights name; unset: random.")
flags.DEFINE_integer("classes", 400, "Number of classes of the weights.")
flags.DEFINE_float("alpha", None, "Width multiplier of the weights; unset: the model's default.")
flags.DEFINE_list("class_names", None, "Comma-separated class names; Kinetics-400 for 400 classes.")
flags.DEFINE_string("export_dir", None, "The model's folder; defaults to saved_models/<model>.")
flags.DEFINE_integer("version", None, "Version folder; defaults to the next free integer.")
flags.DEFINE_integer("top_k", 5, "How many best classes each prediction lists.")
FLAGS = flags.FLAGS


def main(argv):
    """Exports `--model` with `--weights` to `--export_dir/--version`."""
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    path = kvid.export.export_registered_model(
        FLAGS.model,
        weights=FLAGS.weights,
        classes=FLAGS.classes,
        alpha=FLAGS.alpha,
        export_dir=FLAGS.export_dir,
        version=FLAGS.version,
        class_names=FLAGS.class_names,
        top_k=FLAGS.top_k,
    )
    print(f"Exported {FLAGS.model} to {path}")


def run():
    """Console-script entry point."""
    app.run(main)


if __name__ == "__main__":
    run()
