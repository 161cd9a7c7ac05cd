"""Corpus prediction on Beam: `RunInference` over the clips of every video, batched across videos.

Each worker cuts a video's clips with `kvid.inference.video_clips` (the clips
of `kvid-predict`), and Beam's `RunInference` classifies them with
`KvidModelHandler`, which loads the model once per worker process (the
`.keras` files of kvid: Beam's TensorFlow handler loads with
`tf.keras.models.load_model`, which Keras 3 refuses for them) and takes clips
of any videos into one batch. The clips' probabilities are joined back per
video into the `kvid.inference.Timeline` `kvid-predict` makes, and written as
one line per video (`Timeline.record`: JSON lines or CSV).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile

import apache_beam as beam
import numpy as np
from apache_beam.ml.inference.base import (
    KeyedModelHandler,
    ModelHandler,
    PredictionResult,
    RunInference,
)

from kvid import inference
from kvid.beam import options as options_lib
from kvid.beam.corpus import (
    DEAD_LETTER,
    DEAD_LETTERS_FILE,
    ReadCorpus,
    VideoDoFn,
    WriteDeadLetters,
    list_corpus,
    local_video,
    read_dead_letters,
)
from kvid.models import load_model, model_convention

VIDEOS = "videos"


class KvidModelHandler(ModelHandler):
    """A `RunInference` handler for a kvid `.keras` model: clips in, class scores out.

    Args:
        model_path: the `.keras` file (any Beam filesystem).
        batch_size: the most clips in one forward pass (from any videos).
        large_model: one copy of the model per machine, shared by its worker
            processes (Beam's `share_model_across_processes`), for a model
            that does not fit once per process.
    """

    def __init__(self, model_path: str, *, batch_size: int = 8, large_model: bool = False):
        self._model_path = model_path
        self._batch_size = batch_size
        self._large_model = large_model

    def load_model(self):
        """The model's traced forward call (`kvid.inference.model_forward`)."""
        folder = tempfile.mkdtemp(prefix="kvid-beam-model-")
        try:
            with local_video(self._model_path) as path:
                local = path
                if path != self._model_path:  # a remote file: keep the copy while loading
                    local = shutil.copy(path, os.path.join(folder, os.path.basename(path)))
                return inference.model_forward(load_model(local))
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def run_inference(self, batch, model, inference_args=None):
        """Classifies a batch of clips (of any videos) in one forward pass."""
        scores = model(np.stack(batch))
        return [PredictionResult(clip, row) for clip, row in zip(batch, scores, strict=True)]

    def batch_elements_kwargs(self):
        """Batches of at most `batch_size` clips."""
        return {"min_batch_size": 1, "max_batch_size": self._batch_size}

    def share_model_across_processes(self) -> bool:
        """`large_model`."""
        return self._large_model

    def get_metrics_namespace(self) -> str:
        """Beam's inference metrics under `kvid`."""
        return "kvid"


@dataclasses.dataclass(frozen=True)
class _VideoMeta:
    clips: inference.VideoClips  # with no batches left
    starts: np.ndarray
    times: np.ndarray
    seconds_read: float


class _CutClips(VideoDoFn):
    def __init__(self, convention, clip_options, on_error):
        super().__init__("predict", on_error)
        self._convention = convention
        self._clip_options = clip_options

    def process_video(self, example, path):
        clips = inference.video_clips(path, self._convention, **self._clip_options)
        starts, times, seconds_read = [], [], 0.0
        for batch in clips.batches:
            for index, clip in enumerate(batch.clips, len(starts)):
                yield (example.video_id, index), clip
            starts += batch.starts.tolist()
            times += batch.times.tolist()
            seconds_read = batch.seconds_read
        # The last output: the video is complete.
        meta = _VideoMeta(dataclasses.replace(clips, batches=()), starts, times, seconds_read)
        yield beam.pvalue.TaggedOutput(VIDEOS, (example.video_id, meta))


def _timeline_line(joined, class_names, top_k, clips, output_path):
    video_id, parts = joined
    if not parts[VIDEOS]:
        return  # failed part-way: a dead letter, its clips dropped
    (meta,) = parts[VIDEOS]
    probs = np.stack([row for _, row in sorted(parts["probs"], key=lambda item: item[0])])
    timeline = meta.clips.timeline(probs, meta.starts, meta.times, meta.seconds_read, class_names)
    timeline = dataclasses.replace(timeline, video=video_id)
    yield inference.corpus_line(timeline.record(top_k, clips), output_path)


class PredictVideos(beam.PTransform):
    """`VideoExample`s to one predictions line per video (`lines`), and `DEAD_LETTER`s.

    Args:
        model_path: the `.keras` model.
        output_path: `.jsonl` or `.csv`: the lines' format.
        labels_path: class names, as `kvid-predict` takes them.
        top_k: classes per video.
        clips: also list each clip's time and top-k (JSON lines).
        model_name: as in `kvid.inference.predict_video`.
        num_frames: as in `kvid.inference.predict_video`.
        size: as in `kvid.inference.predict_video`.
        batch_size: clips per forward pass, from any videos.
        on_error: `"skip"` or `"raise"`.
        large_model: `KvidModelHandler`'s.
        **clip_options: `stride`, `stride_seconds`, `fps` of `predict_video`.
    """

    def __init__(
        self,
        model_path: str,
        output_path: str,
        *,
        labels_path: str | None = None,
        top_k: int = 5,
        clips: bool = False,
        model_name: str | None = None,
        num_frames: int | None = None,
        size: int | None = None,
        batch_size: int = 8,
        on_error: str = "skip",
        large_model: bool = False,
        **clip_options,
    ):
        super().__init__()
        inference.corpus_format(output_path)
        # The convention and names are the model's: read once here, where the pipeline is built.
        model = load_model(model_path)
        convention = model_convention(model, model_name, num_frames=num_frames, size=size)
        self._class_names = inference.model_class_names(model, model_path, labels_path)
        self._cut = _CutClips(
            convention, {**clip_options, "batch_size": batch_size, "transform_threads": 1}, on_error
        )
        self._handler = KvidModelHandler(model_path, batch_size=batch_size, large_model=large_model)
        self._output = (top_k, clips, output_path)

    def expand(self, examples):
        """Applies the transform to `examples`."""
        cut = examples | "CutClips" >> beam.ParDo(self._cut).with_outputs(
            VIDEOS, DEAD_LETTER, main="clips"
        )
        probs = (
            cut.clips
            | "Classify" >> RunInference(KeyedModelHandler(self._handler))
            | "ByVideo" >> beam.MapTuple(lambda key, result: (key[0], (key[1], result.inference)))
        )
        lines = {"probs": probs, VIDEOS: cut[VIDEOS]} | "Join" >> beam.CoGroupByKey()
        lines = lines | "Lines" >> beam.FlatMap(_timeline_line, self._class_names, *self._output)
        return {"lines": lines, DEAD_LETTER: cut[DEAD_LETTER]}


def predict_corpus(
    source: str,
    model_path: str,
    output_path: str,
    *,
    options=None,
    **kwargs,
) -> inference.CorpusSummary:
    """`kvid.inference.predict_corpus` as a Beam pipeline.

    Args:
        source: a directory (its videos, found recursively), annotation file
            or file pattern (`kvid.beam.list_corpus`).
        model_path: the `.keras` model.
        output_path: `.jsonl` or `.csv` (one line per video, in no set order);
            `dead_letters.jsonl` is written beside it.
        options: `PipelineOptions`; `None`: DirectRunner.
        **kwargs: `PredictVideos`'.

    Returns:
        The `CorpusSummary` the single-process path returns.
    """
    examples, _ = list_corpus(source, labels=None)
    pipeline = beam.Pipeline(options=options)
    predicted = (
        pipeline
        | "Corpus" >> ReadCorpus(examples)
        | "Predict" >> PredictVideos(model_path, output_path, **kwargs)
    )
    header = inference.corpus_header(output_path, kwargs.get("top_k", 5))
    _ = predicted["lines"] | "Write" >> beam.io.WriteToText(
        output_path, num_shards=1, shard_name_template="", header=header
    )
    dead_letters = os.path.join(os.path.dirname(output_path), DEAD_LETTERS_FILE)
    _ = predicted[DEAD_LETTER] | "DeadLetters" >> WriteDeadLetters(dead_letters)
    result = options_lib.run(pipeline)
    return inference.CorpusSummary(
        output_path, options_lib.counter(result, "predict_videos"), read_dead_letters(dead_letters)
    )
