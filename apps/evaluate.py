"""Evaluates a trained `.keras` model: clip and video accuracy, and a confusion summary.

With `--multi_label`, the Charades mAP of an annotation file's videos instead:
mAP, weighted mAP and each class's AP (`--plot`: a bar per class).
"""

from absl import app, flags

from kvid import evaluation, plots

from . import _beam, _flags

FLAGS = flags.FLAGS
flags.DEFINE_string("model_path", "runs/train/best.keras", "The `.keras` model file.")
flags.DEFINE_string(
    "data_dir",
    None,
    "Class-per-folder videos (e.g. a validation split), or an annotation file.",
    required=True,
)
flags.DEFINE_bool("multi_label", False, "Several labels a video (k-hot): score the mAP.")
flags.DEFINE_enum(
    "aggregation",
    None,
    list(evaluation.AGGREGATIONS),
    "How a video's views are combined; unset: mean (single-label), max (multi-label).",
)
_flags.define_model_name()
flags.DEFINE_integer("num_clips", 10, "Clips per video, evenly spaced.")
flags.DEFINE_enum("num_crops", "1", ["1", "3"], "Spatial crops per clip.")
flags.DEFINE_integer("num_frames", None, "Frames per clip; unset: the model's input length.")
flags.DEFINE_integer("batch_size", 16, "Views per forward pass.")
flags.DEFINE_string(
    "plot", None, "Also save the confusion matrix and per-class accuracy (AP) as a PNG."
)
flags.DEFINE_bool("progress", True, "Show a progress bar (views done) on stderr.")
_beam.define_runner()
flags.DEFINE_string(
    "output_dir", None, "With --runner: where evaluation.json and dead_letters.jsonl go."
)


def main(argv):
    """Rejects stray arguments and runs the library function."""
    beam, options = _beam.pipeline_options(argv)
    settings = {
        "model_name": FLAGS.model_name,
        "num_frames": FLAGS.num_frames,
        "num_clips": FLAGS.num_clips,
        "num_crops": int(FLAGS.num_crops),
        "batch_size": FLAGS.batch_size,
    }
    skipped = []
    if beam is None:
        result = evaluation.evaluate_directory(
            FLAGS.model_path,
            FLAGS.data_dir,
            progress=FLAGS.progress,
            multi_label=FLAGS.multi_label,
            aggregation=FLAGS.aggregation,
            **settings,
        )
    else:
        if not FLAGS.output_dir:
            raise app.UsageError("--runner needs --output_dir.")
        if FLAGS.multi_label or FLAGS.aggregation:
            raise app.UsageError("--runner evaluates single-label models: drop --multi_label.")
        result, skipped = beam.evaluate_corpus(
            FLAGS.model_path, FLAGS.data_dir, FLAGS.output_dir, options=options, **settings
        )
    print(evaluation.summary(result))
    for path, error in skipped:
        print(f"skipped {path}: {error}")
    if FLAGS.plot and FLAGS.multi_label:
        title = f"{FLAGS.model_path} on {FLAGS.data_dir}: video mAP {result.mean_ap:.3f}"
        positives = result.video_labels.sum(axis=0)
        figure = plots.average_precision_figure(
            result.per_class_ap, result.class_names, positives, title=title
        )
        print(f"average precision plot: {plots.save_figure(figure, FLAGS.plot)}")
    elif FLAGS.plot:
        title = f"{FLAGS.model_path} on {FLAGS.data_dir}: video top-1 {result.video_top1:.3f}"
        figure = plots.confusion_figure(result.confusion, result.class_names, title=title)
        print(f"confusion plot: {plots.save_figure(figure, FLAGS.plot)}")


def run():
    """Console-script entry point."""
    _beam.run(main)


if __name__ == "__main__":
    run()
