"""A corpus of videos as a `PCollection`, files opened through Beam's `FileSystems`.

The videos are listed when the pipeline is built, by `kvid.data.sources`
(class folders, annotation files: the labelling rules of every kvid dataset)
or by a Beam file pattern. A worker reads a video through
`apache_beam.io.filesystems.FileSystems`, so `gs://` and the other
filesystems Beam has installed work: a local path is read in place, any
other is copied to a local temporary file first (PyAV seeks in the file).
Every transform routes a video that cannot be read to the `DEAD_LETTER`
output, counted in Beam's metrics.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from kvid.data.sources import ON_ERROR, VideoExample, corpus_examples
from kvid.io.decode import VideoDecodeError

DEAD_LETTER = "dead_letter"
METRICS_NAMESPACE = "kvid"
# Bytes copied at a time from a remote filesystem.
COPY_BUFFER = 16 * 1024 * 1024


def _match(pattern: str) -> list[str]:
    return [m.path for m in FileSystems.match([pattern])[0].metadata_list]


def list_corpus(source: str, **kwargs):
    """`kvid.data.sources.corpus_examples`, patterns matched by Beam's `FileSystems`.

    Args:
        source: a class-per-folder directory, an annotation file or a file
            pattern any Beam filesystem matches (`gs://bucket/videos/*.mp4`).
        **kwargs: `labels`, `class_names`, `root`, `label_offset` of `corpus_examples`.

    Returns:
        `(examples, class_names)`.
    """
    return corpus_examples(source, match=_match, **kwargs)


def check_on_error(on_error: str) -> str:
    """`on_error` if it is one of `kvid.data.sources.ON_ERROR`."""
    if on_error not in ON_ERROR:
        raise ValueError(f"`on_error` must be one of {ON_ERROR}. Received: on_error={on_error!r}")
    return on_error


def _is_local(path: str) -> bool:
    return FileSystems.get_scheme(path) in (None, "file")


@contextlib.contextmanager
def local_file(path: str):
    """A local path to read `path` (a video, a model) from: itself, or a temporary copy.

    A path on another Beam filesystem is copied; the copy is removed after the block.

    Raises:
        VideoDecodeError: if a remote file cannot be read (it names the file).
    """
    if _is_local(path):
        yield path
        return
    folder = tempfile.mkdtemp(prefix="kvid-beam-")
    try:
        local = os.path.join(folder, os.path.basename(path))
        try:
            with FileSystems.open(path) as remote, open(local, "wb") as copy:
                shutil.copyfileobj(remote, copy, COPY_BUFFER)
        except (OSError, beam.io.filesystem.BeamIOError) as err:
            raise VideoDecodeError(f"Cannot read video {path!r}: {err}") from err
        yield local
    finally:
        shutil.rmtree(folder, ignore_errors=True)


class ReadCorpus(beam.PTransform):
    """The listed `VideoExample`s as a `PCollection`, spread over the workers."""

    def __init__(self, examples):
        super().__init__()
        self._examples = list(examples)
        if not self._examples:
            raise ValueError("The corpus lists no videos.")

    def expand(self, pbegin):
        """Applies the transform to `pbegin`."""
        # Reshuffled: each video is a unit of work any worker can take.
        return pbegin | beam.Create(self._examples, reshuffle=True)


class VideoDoFn(beam.DoFn):
    """A per-video step: its output, or `(path, error)` to `DEAD_LETTER`, both counted.

    Subclasses implement `process_video(example, local_path)`; a
    `VideoDecodeError` sends `{"path", "step", "error"}` to the dead letters
    (with `on_error="raise"` it stops the pipeline). Outputs are streamed: a
    step that emits several per video and may fail after the first marks a
    video complete with its last output, and the steps downstream keep only
    complete videos. Counters `kvid/<step>_videos` and `kvid/<step>_failed`
    count both kinds.
    """

    def __init__(self, step: str, on_error: str = "skip"):
        super().__init__()
        self._step = step
        self._on_error = check_on_error(on_error)
        self._done = Metrics.counter(METRICS_NAMESPACE, f"{step}_videos")
        self._failed = Metrics.counter(METRICS_NAMESPACE, f"{step}_failed")

    def process_video(self, example: VideoExample, path: str):
        """Yields the outputs of one readable video."""
        raise NotImplementedError

    def process(self, example: VideoExample):
        """Runs `process_video`; a bad video becomes a dead letter (or raises)."""
        try:
            with local_file(example.path) as path:
                yield from self.process_video(example, path)
        except VideoDecodeError as err:
            if self._on_error == "raise":
                raise
            self._failed.inc()
            yield beam.pvalue.TaggedOutput(
                DEAD_LETTER, {"path": example.video_id, "step": self._step, "error": str(err)}
            )
            return
        self._done.inc()


DEAD_LETTERS_FILE = "dead_letters.jsonl"


class WriteDeadLetters(beam.PTransform):
    """Writes dead letters as JSON lines to one file (Beam's temporary write, then a rename)."""

    def __init__(self, path: str):
        super().__init__()
        self._path = path

    def expand(self, dead_letters):
        """Applies the transform to `dead_letters`."""
        return (
            dead_letters
            | "ToJson" >> beam.Map(json.dumps, sort_keys=True)
            | "Write" >> beam.io.WriteToText(self._path, num_shards=1, shard_name_template="")
        )


def read_dead_letters(path: str) -> list[tuple[str, str]]:
    """`(path, error)` of each video in a dead-letter file `WriteDeadLetters` wrote."""
    with FileSystems.open(path) as f:
        letters = [json.loads(line) for line in f.read().decode().splitlines() if line]
    return sorted((letter["path"], letter["error"]) for letter in letters)
