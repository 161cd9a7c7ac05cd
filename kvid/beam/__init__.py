"""Apache Beam pipelines of kvid: dataset preparation, corpus prediction and evaluation.

The optional extra `pip install "kvid[beam]"`; core kvid never imports Beam.
Every transform calls kvid's own functions (labelling rules, the TFRecord
encoder, the clip cutter of `kvid-predict`, the scoring of `kvid-evaluate`),
so a Beam run on any runner gives what the single-process path gives.
"""

try:
    import apache_beam  # noqa: F401
except ImportError as err:  # the extra is missing: say which to install
    raise ImportError(
        'kvid.beam needs Apache Beam: pip install "kvid[beam]". '
        f"Importing apache_beam failed with: {err}"
    ) from err

from kvid.beam.corpus import DEAD_LETTER, ReadCorpus, list_corpus, local_file
from kvid.beam.evaluation import EvaluateVideos, evaluate_corpus
from kvid.beam.inference import KvidModelHandler, PredictVideos, predict_corpus
from kvid.beam.options import pipeline_options
from kvid.beam.tfrecords import EncodeVideos, WriteVideoTFRecords, prepare_dataset

__all__ = [
    "DEAD_LETTER",
    "EncodeVideos",
    "EvaluateVideos",
    "KvidModelHandler",
    "PredictVideos",
    "ReadCorpus",
    "WriteVideoTFRecords",
    "evaluate_corpus",
    "list_corpus",
    "local_file",
    "pipeline_options",
    "predict_corpus",
    "prepare_dataset",
]
