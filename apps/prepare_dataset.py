"""Converts a directory of videos (one subdirectory per class) into sharded TFRecords.

    python apps/prepare_dataset.py --input_dir=videos/ --output_dir=records/ \
        --num_shards=16 --short_side=128 --fps=15

Frames are stored as JPEG in `tf.train.SequenceExample`s (TF Model Garden
layout); read them with `kvid.data.video_dataset_from_tfrecords`.
"""

from absl import app, flags

from kvid.data import tfrecord

_INPUT_DIR = flags.DEFINE_string("input_dir", None, "Videos, one subdirectory per class.")
_OUTPUT_DIR = flags.DEFINE_string("output_dir", None, "Where the shards are written.")
_NUM_SHARDS = flags.DEFINE_integer("num_shards", 8, "Number of TFRecord shards.")
_SHORT_SIDE = flags.DEFINE_integer("short_side", None, "Resize frames to this short side.")
_FPS = flags.DEFINE_float("fps", None, "Resample videos to this frame rate.")
_ON_ERROR = flags.DEFINE_enum("on_error", "skip", ["skip", "raise"], "Unreadable videos.")
flags.mark_flags_as_required(["input_dir", "output_dir"])


def main(argv):
    """Converts `--input_dir` into shards in `--output_dir` and prints what was skipped."""
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    summary = tfrecord.convert_directory(
        _INPUT_DIR.value,
        _OUTPUT_DIR.value,
        num_shards=_NUM_SHARDS.value,
        short_side=_SHORT_SIDE.value,
        fps=_FPS.value,
        on_error=_ON_ERROR.value,
    )
    print(f"Wrote {summary.written} videos to {len(summary.shards)} shards in {_OUTPUT_DIR.value}.")
    if summary.skipped:
        print(f"Skipped {len(summary.skipped)} videos:")
        for path, error in summary.skipped:
            print(f"  {path}: {error}")


def run():
    """Console-script entry point."""
    app.run(main)


if __name__ == "__main__":
    run()
