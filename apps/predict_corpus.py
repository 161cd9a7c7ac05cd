"""Top-k labels of every video of a corpus, one line per video (JSON lines or CSV).

    kvid-predict-corpus --input=videos/ --model_path=best.keras --output=predictions.jsonl
    kvid-predict-corpus --input='gs://bucket/videos/*.mp4' --model_path=best.keras \
        --output=gs://bucket/predictions.jsonl --runner=DataflowRunner --project=... \
        --region=... --temp_location=gs://bucket/tmp --setup_file=./setup.py

Each video is predicted as `kvid-predict` predicts it (the same clips, top-k
and mean probabilities; `--clips` adds each clip's time and top-k). With
`--runner` the corpus runs as an Apache Beam pipeline (docs/beam.md) and
unreadable videos are listed in `dead_letters.jsonl` beside the output.
"""

from absl import flags

from kvid import inference
from kvid.data import sources

from . import _beam, _flags

FLAGS = flags.FLAGS
flags.DEFINE_string(
    "input",
    None,
    "A directory (its videos, recursively), an annotation file or a file pattern.",
    required=True,
)
flags.DEFINE_string(
    "model_path",
    "runs/train/best.keras",
    "The `.keras` model file; with --runner also a kvid SavedModel export's version folder.",
)
flags.DEFINE_string("output", None, "The .jsonl or .csv file, one line per video.", required=True)
flags.DEFINE_string(
    "labels", None, "Class names, one per line; unset: class_names.txt next to the model."
)
flags.DEFINE_integer("top_k", 5, "Classes listed per video.")
flags.DEFINE_bool("clips", False, "Also list each clip's time and top-k (JSON lines).")
_flags.define_sliding_window("Clips per forward pass (from any videos, with --runner).")
flags.DEFINE_bool("progress", True, "Show a progress bar (videos done) on stderr, in one process.")
_beam.define_runner()


def main(argv):
    """Predicts the corpus in one process or on `--runner`; prints what was skipped."""
    beam, options = _beam.pipeline_options(argv)
    settings = {
        "labels_path": FLAGS.labels,
        "top_k": FLAGS.top_k,
        "clips": FLAGS.clips,
        **_flags.sliding_window(),
    }
    if beam is None:
        examples, _ = sources.corpus_examples(FLAGS.input, labels=None)
        summary = inference.predict_corpus(
            [e.path for e in examples],
            FLAGS.model_path,
            FLAGS.output,
            progress=FLAGS.progress,
            **settings,
        )
    else:
        summary = beam.predict_corpus(
            FLAGS.input, FLAGS.model_path, FLAGS.output, options=options, **settings
        )
    print(f"Predicted {summary.written} videos into {summary.output}.")
    _beam.print_skipped(summary.skipped)


def run():
    """Console-script entry point."""
    _beam.run(main)


if __name__ == "__main__":
    run()
