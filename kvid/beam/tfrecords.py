"""Dataset preparation on Beam: the TFRecords of `kvid.data.tfrecord`, sharded, atomic.

Each worker encodes videos with `kvid.data.tfrecord.encode_video` (the
single-process converter's encoder) and `beam.io.WriteToTFRecord` writes the
shards: to temporary files first, renamed to
`<prefix>-0000i-of-0000n.tfrecord` only once every bundle has succeeded, so a
failed run leaves no shard a reader would take for complete, and a bundle a
runner retries is written once. `class_names.txt` follows the shards.
"""

from __future__ import annotations

import dataclasses
import os

import apache_beam as beam

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
from kvid.data import tfrecord
from kvid.io.class_names import write_class_names


class _Encode(VideoDoFn):
    def __init__(self, class_names, short_side, fps, on_error):
        super().__init__("encode", on_error)
        self._class_names = class_names
        self._short_side = short_side
        self._fps = fps

    def process_video(self, example, path):
        yield tfrecord.encode_video(
            dataclasses.replace(example, path=path),
            self._class_names,
            self._short_side,
            self._fps,
            media_id=example.video_id,
        )


class EncodeVideos(beam.PTransform):
    """`VideoExample`s to serialized `SequenceExample`s (`records`) and `DEAD_LETTER`s.

    Args:
        class_names: names for `clip/label/text`.
        short_side: resize frames so their short side has this length.
        fps: resample to this frame rate.
        on_error: `"skip"` (dead letters) or `"raise"` (the run fails).
    """

    def __init__(self, class_names=None, short_side=None, fps=None, on_error="skip"):
        super().__init__()
        self._encode = _Encode(class_names, short_side, fps, on_error)

    def expand(self, examples):
        """Applies the transform to `examples`."""
        return examples | beam.ParDo(self._encode).with_outputs(DEAD_LETTER, main="records")


class WriteVideoTFRecords(beam.PTransform):
    """Writes records to `num_shards` shards in `output_dir`, then `class_names.txt`.

    The output is the shard paths, once they are final.
    """

    def __init__(self, output_dir: str, num_shards: int, class_names=None, prefix="videos"):
        super().__init__()
        self._output_dir = output_dir
        self._num_shards = num_shards
        self._class_names = class_names
        self._prefix = prefix

    def expand(self, records):
        """Applies the transform to `records`."""
        shards = records | "WriteShards" >> beam.io.WriteToTFRecord(
            os.path.join(self._output_dir, self._prefix),
            file_name_suffix=tfrecord.SHARD_SUFFIX,
            num_shards=self._num_shards,
            shard_name_template="-SSSSS-of-NNNNN",
        )
        if self._class_names:
            output_dir, names = self._output_dir, list(self._class_names)
            _ = (
                shards
                | "AllShards" >> beam.combiners.Count.Globally()
                | "WriteClassNames" >> beam.Map(lambda _: write_class_names(output_dir, names))
            )
        return shards


def prepare_dataset(
    source: str,
    output_dir: str,
    *,
    num_shards: int = 8,
    short_side: int | None = None,
    fps: float | None = None,
    on_error: str = "skip",
    class_names=None,
    options=None,
) -> tfrecord.ConversionSummary:
    """`kvid.data.tfrecord.convert_directory` as a Beam pipeline.

    Args:
        source: a class-per-folder directory, annotation file or file pattern
            (`kvid.beam.list_corpus`).
        output_dir: gets the shards, `class_names.txt` and `dead_letters.jsonl`
            (`{"path", "step", "error"}` per unreadable video).
        num_shards: shard files (no more than there are videos, as
            `kvid.data.tfrecord.shard_count` says).
        short_side: resize frames so their short side has this length.
        fps: resample to this frame rate.
        on_error: `"skip"` or `"raise"`.
        class_names: classes in label order (default: those `source` gives).
        options: `PipelineOptions` (`kvid.beam.pipeline_options`); `None`: DirectRunner.

    Returns:
        The `ConversionSummary` the single-process converter returns.
    """
    examples, class_names = list_corpus(source, class_names=class_names)
    num_shards = tfrecord.shard_count(num_shards, len(examples))
    pipeline = beam.Pipeline(options=options)
    encoded = (
        pipeline
        | "Corpus" >> ReadCorpus(examples)
        | "Encode" >> EncodeVideos(class_names, short_side, fps, on_error)
    )
    _ = encoded.records | "Write" >> WriteVideoTFRecords(output_dir, num_shards, class_names)
    dead_letters = os.path.join(output_dir, DEAD_LETTERS_FILE)
    _ = encoded[DEAD_LETTER] | "DeadLetters" >> WriteDeadLetters(dead_letters)
    result = options_lib.run(pipeline)
    return tfrecord.ConversionSummary(
        tfrecord.shard_paths(output_dir, "videos", num_shards),
        options_lib.counter(result, "encode_videos"),
        read_dead_letters(dead_letters),
    )
