"""Corpus prediction on Beam: `RunInference` over the clips of every video, batched across videos.

Each worker cuts a video's clips with `kvid.inference.video_clips` (the clips
of `kvid-predict`), and Beam's `RunInference` classifies them with
`KvidModelHandler`, which loads the model once per worker process (a kvid
`.keras` file, or a kvid SavedModel export, which preprocesses in its graph:
Beam's TensorFlow handler loads SavedModels with `tf.keras.models.load_model`,
which Keras 3 refuses) and takes clips of any videos into one batch. The
clips' probabilities are joined back per video into the `kvid.inference.Timeline`
`kvid-predict` makes, and written as one line per video (`Timeline.record`:
JSON lines or CSV).
"""

from __future__ import annotations

import dataclasses
import itertools
import os

import apache_beam as beam
import numpy as np
import tensorflow as tf
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
    local_file,
    read_dead_letters,
)
from kvid.export.saved_model import SERVING_DEFAULT
from kvid.io.class_names import class_names_beside, read_class_names
from kvid.models import class_names_for, load_model, model_convention
from kvid.preprocessing import Preprocessing

VIDEOS = "videos"


def _is_keras_file(model_path: str) -> bool:
    return model_path.endswith(".keras")


class _ExportForward:
    """The `serving_default` signature of a kvid SavedModel: uint8 clips to probabilities."""

    def __init__(self, path: str):
        self._loaded = tf.saved_model.load(path)  # the signature needs its object alive
        self._serve = self._loaded.signatures[SERVING_DEFAULT]

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        return self._serve(frames=tf.constant(frames))["probabilities"].numpy()


@dataclasses.dataclass(frozen=True)
class ModelInputs:
    """What a model is fed: clips by `convention`, or decoded frames (`None`) of `num_frames`."""

    convention: Preprocessing | None
    num_frames: int
    class_names: tuple[str, ...]


def model_inputs(
    model_path: str,
    *,
    labels_path: str | None = None,
    model_name: str | None = None,
    num_frames: int | None = None,
    size: int | None = None,
) -> ModelInputs:
    """The clips and class names of a `.keras` model or a kvid SavedModel export.

    A `.keras` model's clips follow `kvid.models.model_convention` (as in
    `kvid-predict`); an export (`kvid.export.export_saved_model`, its version
    folder) takes the decoded frames and preprocesses them in its graph.

    Raises:
        ValueError: for an export with `model_name` or `size` (its graph decides).
    """
    if _is_keras_file(model_path):
        model = load_model(model_path)
        convention = model_convention(model, model_name, num_frames=num_frames, size=size)
        names = inference.model_class_names(model, model_path, labels_path)
        return ModelInputs(convention, convention.num_frames, tuple(names))
    if model_name is not None or size is not None:
        raise ValueError(
            "A SavedModel export preprocesses in its graph: pass neither `model_name` nor `size`. "
            f"Received: model_name={model_name!r}, size={size!r}"
        )
    serve = tf.saved_model.load(model_path).signatures[SERVING_DEFAULT]
    frames = serve.structured_input_signature[1]["frames"].shape[1]
    classes = serve.structured_outputs["probabilities"].shape[-1]
    names = read_class_names(labels_path) if labels_path else class_names_beside(model_path)
    return ModelInputs(None, num_frames or frames, tuple(class_names_for(classes, names)))


class KvidModelHandler(ModelHandler):
    """A `RunInference` handler for kvid models: clips in, class scores out.

    Args:
        model_path: a `.keras` file (clips preprocessed by `kvid.inference.video_clips`)
            or a kvid SavedModel export's version folder (uint8 frames, preprocessed
            in its graph), on any Beam filesystem.
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
        """The model's forward call (`kvid.inference.model_forward`, or the export's signature)."""
        if not _is_keras_file(self._model_path):
            return _ExportForward(self._model_path)  # TensorFlow reads every filesystem it has
        with local_file(self._model_path) as path:
            return inference.model_forward(load_model(path))

    def run_inference(self, batch, model, inference_args=None):
        """Classifies a batch of clips (of any videos), one forward pass per clip shape.

        Decoded frames of differently sized videos differ in shape (an export's input).
        """
        scores = []
        for _, group in itertools.groupby(batch, key=np.shape):
            scores += list(model(np.stack(list(group))))
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
    def __init__(self, inputs: ModelInputs, clip_options, on_error):
        super().__init__("predict", on_error)
        self._inputs = inputs
        self._clip_options = clip_options

    def process_video(self, example, path):
        clips = inference.video_clips(
            path, self._inputs.convention, num_frames=self._inputs.num_frames, **self._clip_options
        )
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


def _timeline_lines(joined, class_names, top_k, clips, output_path):
    video_id, parts = joined
    # No record: the video failed part-way (a dead letter), its clips are dropped.
    for meta in parts[VIDEOS]:
        probs = np.stack([row for _, row in sorted(parts["probs"], key=lambda item: item[0])])
        timeline = meta.clips.timeline(
            probs, meta.starts, meta.times, meta.seconds_read, class_names
        )
        timeline = dataclasses.replace(timeline, video=video_id)
        yield inference.corpus_line(timeline.record(top_k, clips), output_path)


class PredictVideos(beam.PTransform):
    """`VideoExample`s to one predictions line per video (`lines`), and `DEAD_LETTER`s.

    Args:
        model_path: the `.keras` model or a kvid SavedModel export (`KvidModelHandler`).
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
        # The clips and names are the model's: read once here, where the pipeline is built.
        inputs = model_inputs(
            model_path,
            labels_path=labels_path,
            model_name=model_name,
            num_frames=num_frames,
            size=size,
        )
        self._class_names = inputs.class_names
        self._cut = _CutClips(
            inputs, {**clip_options, "batch_size": batch_size, "transform_threads": 1}, on_error
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
        lines = lines | "Lines" >> beam.FlatMap(_timeline_lines, self._class_names, *self._output)
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
