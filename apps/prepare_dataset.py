"""Converts a directory of videos (one subdirectory per class) into sharded TFRecords.

    python apps/prepare_dataset.py --input_dir=videos/ --output_dir=records/ \
        --num_shards=16 --short_side=128 --fps=15

Frames are stored as JPEG in `tf.train.SequenceExample`s (TF Model Garden
layout); read them with `kvid.data.video_dataset_from_tfrecords`. With
`--runner=DirectRunner --direct_num_workers=2` (or Dataflow, Flink, Spark) the
conversion runs as an Apache Beam pipeline (docs/beam.md).
"""

from absl import flags

from kvid.data import tfrecord

from . import _beam

FLAGS = flags.FLAGS
flags.DEFINE_string("input_dir", None, "Videos, one subdirectory per class.", required=True)
flags.DEFINE_string("output_dir", None, "Where the shards are written.", required=True)
flags.DEFINE_integer("num_shards", 8, "Number of TFRecord shards.")
flags.DEFINE_integer("short_side", None, "Resize frames to this short side.")
flags.DEFINE_float("fps", None, "Resample videos to this frame rate.")
flags.DEFINE_enum("on_error", "skip", ["skip", "raise"], "Unreadable videos.")
_beam.define_runner()


def main(argv):
    """Converts `--input_dir` into shards in `--output_dir` and prints what was skipped."""
    beam, options = _beam.pipeline_options(argv)
    settings = {
        "num_shards": FLAGS.num_shards,
        "short_side": FLAGS.short_side,
        "fps": FLAGS.fps,
        "on_error": FLAGS.on_error,
    }
    if beam is None:
        summary = tfrecord.convert_directory(FLAGS.input_dir, FLAGS.output_dir, **settings)
    else:
        summary = beam.prepare_dataset(
            FLAGS.input_dir, FLAGS.output_dir, options=options, **settings
        )
    print(f"Wrote {summary.written} videos to {len(summary.shards)} shards in {FLAGS.output_dir}.")
    _beam.print_skipped(summary.skipped)


def run():
    """Console-script entry point."""
    _beam.run(main)


if __name__ == "__main__":
    run()
