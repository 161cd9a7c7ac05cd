"""`--runner`: an app runs as an Apache Beam pipeline, and Beam's own flags pass through.

absl parses the app's flags; whatever it does not know (`--direct_num_workers=2`,
`--project=...`, `--setup_file=./setup.py`) goes to Beam's `PipelineOptions`.
Without `--runner` the app runs in one process, as it always did, and takes
no other flags.
"""

from __future__ import annotations

import logging
import sys

from absl import app, flags

FLAGS = flags.FLAGS


def define_runner() -> None:
    """`--runner`: the Beam runner, unset for the single-process path."""
    flags.DEFINE_string(
        "runner",
        None,
        "Run as an Apache Beam pipeline on this runner (DirectRunner, DataflowRunner, "
        "FlinkRunner, SparkRunner, PortableRunner); Beam's other options (--direct_num_workers, "
        "--project, --region, --temp_location, --setup_file, ...) pass through. Unset: one "
        'process, no Beam. Needs pip install "kvid[beam]".',
    )


def parse_flags(argv: list[str]) -> list[str]:
    """Absl's flags of the app; the unknown ones stay in the returned argv for Beam."""
    try:
        return FLAGS(argv, known_only=True)
    except flags.Error as error:
        sys.stderr.write(f"FATAL Flags parsing error: {error}\n")
        sys.exit(1)


def _beam_warnings_below_error(record: logging.LogRecord) -> bool:
    return record.levelno >= logging.ERROR or "apache_beam" not in record.pathname


def pipeline_options(argv: list[str]):
    """`(kvid.beam, PipelineOptions)` for `--runner`; stray arguments without it are an error."""
    if not FLAGS.runner:
        if len(argv) > 1:
            raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
        return None, None
    # Beam's warnings about optional parts (a BigQuery client at import, the resource module
    # RunInference reads memory with, per batch) are not the user's to act on: its loggers
    # show errors only, and so do its calls of the root logger. kvid's own lines stay.
    logging.getLogger("apache_beam").setLevel(logging.ERROR)
    logging.getLogger().addFilter(_beam_warnings_below_error)
    try:
        from kvid import beam
    except ImportError as err:  # the message names the extra to install
        raise app.UsageError(str(err)) from err
    return beam, beam.pipeline_options(argv[1:], FLAGS.runner)


def print_skipped(skipped) -> None:
    """Lists the `(path, error)` of the videos a run could not read, if any."""
    if skipped:
        print(f"Skipped {len(skipped)} videos:")
        for path, error in skipped:
            print(f"  {path}: {error}")


def run(main) -> None:
    """`app.run(main)` with Beam's flags passed through."""
    app.run(main, flags_parser=parse_flags)
