"""Beam pipeline options from the command line, and a run's counters."""

from __future__ import annotations

import os
from collections.abc import Sequence

import apache_beam as beam
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions

from kvid._onednn import ENV as ONEDNN
from kvid.beam.corpus import METRICS_NAMESPACE

# Beam's workers log every bundle at INFO and warn about optional clients (apitools, the
# resource module); a kvid run prints its own summary, and its errors still show.
QUIET_WORKERS = "--default_sdk_harness_log_level=ERROR"


def pipeline_options(argv: Sequence[str] = (), runner: str | None = None) -> PipelineOptions:
    """`PipelineOptions` of Beam's own flags (`--direct_num_workers=2`, `--project=...`).

    Args:
        argv: the flags absl did not know, handed over as they were given.
        runner: `--runner` (`DirectRunner`, `DataflowRunner`, `FlinkRunner`,
            `SparkRunner`, `PortableRunner`).
    """
    # Local worker processes inherit it: they import TensorFlow (unpickling) before kvid,
    # and this turns oneDNN on there as `import kvid` does (see kvid._onednn).
    os.environ.setdefault(ONEDNN, "1")
    args = list(argv)
    if runner:
        args.append(f"--runner={runner}")
    if not any(arg.startswith("--default_sdk_harness_log_level") for arg in args):
        args.append(QUIET_WORKERS)
    return PipelineOptions(args)


def run(pipeline: beam.Pipeline):
    """Runs `pipeline` to the end; returns its result (a failed run raises)."""
    result = pipeline.run()
    result.wait_until_finish()
    return result


def counter(result, name: str) -> int:
    """The committed value of the kvid counter `name` of a finished run (0 if never counted)."""
    query = MetricsFilter().with_namespace(METRICS_NAMESPACE).with_name(name)
    counters = result.metrics().query(query)["counters"]
    return int(sum(c.committed or 0 for c in counters))
