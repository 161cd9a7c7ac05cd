"""Corpus evaluation on Beam: `kvid-evaluate`'s multi-clip x multi-crop protocol on many workers.

Each worker makes a video's views with
`kvid.data.pipeline.evaluation_dataset_from_examples` (the views of
`kvid-evaluate`), `RunInference` classifies views of any videos in one batch,
and every view's probabilities meet in one place where
`kvid.evaluation.score` makes the report: clip and video top-1/top-5 and the
confusion matrix, written as `evaluation.json` (`result_from_json` reads it
back for `kvid.evaluation.summary` and `kvid.plots.confusion_figure`).
"""

from __future__ import annotations

import dataclasses
import json
import os

import apache_beam as beam
import numpy as np
import tensorflow as tf
from apache_beam.io.filesystems import FileSystems
from apache_beam.ml.inference.base import KeyedModelHandler, RunInference

from kvid import evaluation
from kvid.beam import options as options_lib
from kvid.beam.corpus import (
    DEAD_LETTER,
    DEAD_LETTERS_FILE,
    ReadCorpus,
    VideoDoFn,
    WriteDeadLetters,
    list_corpus,
    read_dead_letters,
)
from kvid.beam.inference import KvidModelHandler
from kvid.data.pipeline import evaluation_dataset_from_examples
from kvid.io.class_names import class_names_beside
from kvid.io.decode import VideoDecodeError
from kvid.models import load_model, model_convention

EVALUATION_FILE = "evaluation.json"


class _Views(VideoDoFn):
    def __init__(self, class_names, num_clips, num_crops, convention, on_error):
        super().__init__("evaluate", on_error)
        self._views = (class_names, num_clips, num_crops)
        self._convention = convention

    def process_video(self, example, path):
        dataset = evaluation_dataset_from_examples(
            [dataclasses.replace(example, path=path)],
            *self._views,
            num_frames=self._convention.num_frames,
            model=self._convention,
        )
        try:
            # Every view made before the first goes out: a video fails whole or not at all.
            ((views, label, _),) = list(dataset.as_numpy_iterator())
        except tf.errors.OpError as err:
            raise VideoDecodeError(f"Cannot read video {example.path!r}: {err.message}") from err
        for index, view in enumerate(views):
            yield (example.video_id, int(label), index), view


def result_to_json(result: evaluation.EvaluationResult) -> str:
    """An `EvaluationResult` as JSON (`result_from_json` reads it back)."""
    data = dataclasses.asdict(result)
    data["confusion"] = result.confusion.tolist()
    data["video_ids"] = [v.decode() for v in result.video_ids]
    data["video_probabilities"] = result.video_probabilities.tolist()
    return json.dumps(data)


def result_from_json(text: str) -> evaluation.EvaluationResult:
    """The `EvaluationResult` `result_to_json` wrote."""
    data = json.loads(text)
    data["confusion"] = np.asarray(data["confusion"], np.int64)
    data["class_names"] = tuple(data["class_names"])
    # Bytes, as `tf.data` gives the single-process ids.
    data["video_ids"] = np.asarray([video.encode() for video in data["video_ids"]])
    data["video_probabilities"] = np.asarray(data["video_probabilities"])
    return evaluation.EvaluationResult(**data)


def _score(views, class_names):
    if not views:
        raise ValueError("No readable videos to evaluate: every one is a dead letter.")
    ids, labels, probs = zip(*views, strict=True)
    ids = [video.encode() for video in ids]
    probs = np.stack(probs).astype(np.float64)
    result = evaluation.score(probs, labels, ids, num_classes=probs.shape[1])
    return result_to_json(dataclasses.replace(result, class_names=tuple(class_names)))


class EvaluateVideos(beam.PTransform):
    """Labelled `VideoExample`s to the `evaluation.json` text (`report`) and `DEAD_LETTER`s.

    Args:
        model_path: the `.keras` model.
        class_names: the corpus' classes in label order.
        model_name: as in `kvid.evaluation.evaluate_directory`.
        num_frames: as in `kvid.evaluation.evaluate_directory`.
        num_clips: clips per video.
        num_crops: 1 or 3 crops per clip.
        batch_size: views per forward pass, from any videos.
        on_error: `"skip"` or `"raise"`.
    """

    def __init__(
        self,
        model_path: str,
        class_names,
        *,
        model_name: str | None = None,
        num_frames: int | None = None,
        num_clips: int = 10,
        num_crops: int = 1,
        batch_size: int = 16,
        on_error: str = "skip",
    ):
        super().__init__()
        convention = model_convention(load_model(model_path), model_name, num_frames=num_frames)
        self._class_names = list(class_names)
        self._views = _Views(self._class_names, num_clips, num_crops, convention, on_error)
        self._handler = KvidModelHandler(model_path, batch_size=batch_size)

    def expand(self, examples):
        """Applies the transform to `examples`."""
        views = examples | "Views" >> beam.ParDo(self._views).with_outputs(
            DEAD_LETTER, main="views"
        )
        report = (
            views.views
            | "Classify" >> RunInference(KeyedModelHandler(self._handler))
            | "Probabilities" >> beam.MapTuple(lambda key, out: (key[0], key[1], out.inference))
            | "AllViews" >> beam.combiners.ToList()
            | "Score" >> beam.Map(_score, self._class_names)
        )
        return {"report": report, DEAD_LETTER: views[DEAD_LETTER]}


def evaluate_corpus(
    model_path: str,
    source: str,
    output_dir: str,
    *,
    options=None,
    **kwargs,
) -> evaluation.EvaluationResult:
    """`kvid.evaluation.evaluate_directory` as a Beam pipeline.

    Args:
        model_path: the `.keras` model; its `class_names.txt` names the classes.
        source: a class-per-folder directory or annotation file.
        output_dir: gets `evaluation.json` and `dead_letters.jsonl`.
        options: `PipelineOptions`; `None`: DirectRunner.
        **kwargs: `EvaluateVideos`'.

    Returns:
        `(result, skipped)`: the `EvaluationResult` of the readable videos and
        the `(path, error)` of the others.
    """
    names = class_names_beside(model_path)
    examples, class_names = list_corpus(source, class_names=list(names) if names else None)
    pipeline = beam.Pipeline(options=options)
    evaluated = (
        pipeline
        | "Corpus" >> ReadCorpus(examples)
        | "Evaluate" >> EvaluateVideos(model_path, class_names, **kwargs)
    )
    report = os.path.join(output_dir, EVALUATION_FILE)
    _ = evaluated["report"] | "Write" >> beam.io.WriteToText(
        report, num_shards=1, shard_name_template=""
    )
    dead_letters = os.path.join(output_dir, DEAD_LETTERS_FILE)
    _ = evaluated[DEAD_LETTER] | "DeadLetters" >> WriteDeadLetters(dead_letters)
    options_lib.run(pipeline)
    with FileSystems.open(report) as f:
        result = result_from_json(f.read().decode())
    return result, read_dead_letters(dead_letters)
