"""Top-5 labels of a video of any length and each clip's probabilities over time.

The video is decoded once, in order, and classified as it streams, in memory
that does not grow with its length. Optionally saves the timeline as JSON or
CSV (`--output`) and plots it (`--plot`). A live source (a URL, a device, `-`
for standard input) is classified as it arrives: one JSON line per clip on
stdout as soon as the clip is complete (docs/live.md).
"""

import sys

from absl import app, flags

from kvid import inference as prediction
from kvid import live
from kvid.io import VideoDecodeError, sources

from . import _flags

FLAGS = flags.FLAGS
flags.DEFINE_string(
    "video",
    None,
    "The video file, or a live source: a URL (rtsp://, http(s)://, udp://, srt://), a device "
    "(/dev/video0) or - for a container stream on standard input.",
    required=True,
)
flags.DEFINE_string("model_path", "runs/train/best.keras", "The `.keras` model file.")
flags.DEFINE_string(
    "labels",
    None,
    "Class names, one per line; unset: class_names.txt "
    "next to the model, Kinetics-400 for 400 classes, else indices.",
)
_flags.define_sliding_window(
    "Clips per forward pass; live: the most clips a pass takes and that wait for it "
    "(larger: more clips per second when the model lags, each with more latency)."
)
flags.DEFINE_string("output", None, "Also save the timeline as this .json or .csv file.")
flags.DEFINE_string("plot", None, "Also save the timeline as this PNG file.")
flags.DEFINE_bool("plot_thumbnails", True, "Draw a strip of the video's frames under the plot.")
flags.DEFINE_bool("progress", True, "Show a progress bar (frames done) on stderr.")
flags.DEFINE_string(
    "format", None, "Live: the container format (mpegts, matroska, v4l2, ...); unset: detected."
)
flags.DEFINE_list(
    "source_options", [], "Live: FFmpeg options of the source, key=value,... (rtsp_transport=tcp)."
)
flags.register_validator(
    "source_options",
    lambda options: all("=" in option for option in options),
    message="--source_options takes key=value pairs, e.g. --source_options=rtsp_transport=tcp.",
)
flags.DEFINE_float("timeout", 10.0, "Live: seconds without data after which the source failed.")
flags.DEFINE_integer("reconnects", 3, "Live: how many times a network source is reopened.")
flags.DEFINE_bool(
    "drop_clips",
    True,
    "Live: drop whole clips when the model is slower than the stream (bounded latency); "
    "--nodrop_clips classifies every clip and makes the source wait.",
)
flags.DEFINE_float(
    "threshold", None, "A multi-label model's threshold: also list each clip's labels above it."
)


def main(argv):
    """Rejects stray arguments and runs the library function."""
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    if sources.is_live_source(FLAGS.video):
        try:
            live.predict_source(
                FLAGS.video,
                FLAGS.model_path,
                labels_path=FLAGS.labels,
                **_flags.sliding_window(),
                drop_clips=FLAGS.drop_clips,
                format=FLAGS.format,
                options=dict(option.split("=", 1) for option in FLAGS.source_options),
                timeout=FLAGS.timeout,
                reconnects=FLAGS.reconnects,
                output_path=FLAGS.output,
                plot_path=FLAGS.plot,
            )
        except VideoDecodeError as error:
            sys.exit(f"kvid-predict: {error}")
        return
    print(
        prediction.predict_file(
            FLAGS.video,
            FLAGS.model_path,
            labels_path=FLAGS.labels,
            **_flags.sliding_window(),
            output_path=FLAGS.output,
            plot_path=FLAGS.plot,
            plot_thumbnails=FLAGS.plot_thumbnails,
            progress=FLAGS.progress,
            threshold=FLAGS.threshold,
        )
    )


def run():
    """Console-script entry point."""
    app.run(main)


if __name__ == "__main__":
    run()
