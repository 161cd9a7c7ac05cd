"""Finding the videos of a dataset: class folders, annotation files, probing with `on_error`."""

from __future__ import annotations

import csv
import dataclasses
import glob
import os

import numpy as np
from absl import logging

from kvid.io.decode import VideoDecodeError, VideoInfo, frame_positions, is_frame_folder, probe

VIDEO_EXTENSIONS = (
    ".mp4", ".m4v", ".mov", ".avi", ".webm", ".mkv", ".mpg", ".mpeg", ".flv", ".wmv", ".ogv",
    ".3gp", ".ts",
)  # fmt: skip
ON_ERROR = ("raise", "skip")


@dataclasses.dataclass(frozen=True)
class VideoExample:
    """One example: a video (or a segment of one) and its label.

    Attributes:
        path: video file or frame folder.
        label: class index (`-1` when the dataset has no labels).
        start: first second of the segment, `None` for the beginning.
        end: end second of the segment (exclusive), `None` for the end.
    """

    path: str
    label: int = -1
    start: float | None = None
    end: float | None = None

    @property
    def video_id(self) -> str:
        """The path, plus `@start-end` for a segment: unique per example."""
        if self.start is None and self.end is None:
            return self.path
        return f"{self.path}@{self.start or 0:g}-{'' if self.end is None else f'{self.end:g}'}"


@dataclasses.dataclass(frozen=True)
class ProbedExample:
    """A `VideoExample` that probed fine, with the video frame behind each sampler frame."""

    example: VideoExample
    info: VideoInfo
    positions: np.ndarray


def list_videos(directory: str) -> list[str]:
    """Video files and frame folders under `directory`, recursively, sorted.

    A folder that directly holds image files is one video (its frames); other
    folders are searched. Files without a video extension are ignored, and so
    are hidden ones (a writer's temporary file, macOS' `._` files).
    """
    found = []
    for name in sorted(os.listdir(directory)):
        if name.startswith("."):
            continue
        path = os.path.join(directory, name)
        if os.path.isdir(path):
            found += [path] if is_frame_folder(path) else list_videos(path)
        elif name.lower().endswith(VIDEO_EXTENSIONS):
            found.append(path)
    return found


def index_directory(directory: str, labels="inferred", class_names=None):
    """Lists a directory the way `keras.utils.image_dataset_from_directory` does.

    Args:
        directory: with `labels="inferred"`, one subdirectory per class;
            otherwise the videos themselves (searched recursively).
        labels: `"inferred"`, `None`, or a list of class indices, one per
            video in sorted path order.
        class_names: with `"inferred"`, the subdirectories to use, in label order.

    Returns:
        `(examples, class_names)`.

    Raises:
        ValueError: if the directory or arguments do not match.
    """
    if not os.path.isdir(directory):
        raise ValueError(f"`directory` must be a directory. Received: directory={directory!r}")
    if labels == "inferred":
        # Hidden folders are not classes, as in Keras.
        subdirs = sorted(
            d
            for d in os.listdir(directory)
            if os.path.isdir(os.path.join(directory, d)) and not d.startswith(".")
        )
        if class_names is None:
            class_names = subdirs
        elif sorted(class_names) != sorted(set(class_names)) or not set(class_names) <= set(
            subdirs
        ):
            raise ValueError(
                "`class_names` must be distinct subdirectories of `directory`. Received: "
                f"class_names={class_names}, subdirectories={subdirs}"
            )
        examples = [
            VideoExample(path, label)
            for label, name in enumerate(class_names)
            for path in list_videos(os.path.join(directory, name))
        ]
        return examples, list(class_names)
    paths = list_videos(directory)
    if labels is None:
        return [VideoExample(path) for path in paths], None
    if not isinstance(labels, (list, tuple)) or len(labels) != len(paths):
        raise ValueError(
            '`labels` must be "inferred", None, or a list with one label per video '
            f"({len(paths)} found in {directory!r}). Received: labels={labels!r}"
        )
    return [VideoExample(p, int(y)) for p, y in zip(paths, labels, strict=True)], class_names


def _seconds(value):
    return None if value in (None, "") else float(value)


def read_annotations(annotation_file: str, root=None, class_names=None, label_offset: int = 0):
    """Reads a CSV or a split list into examples.

    Accepted forms (one example per row):

    - CSV with a header: a `path` column (or Kinetics' `youtube_id`, the file
      being `<youtube_id>.mp4`), `label`, and optional `start`/`end` seconds
      (or Kinetics' `time_start`/`time_end`), so a segment of a long video is
      an example.
    - A whitespace-separated list (UCF101/HMDB51 style): `path [label [start end]]`.
      A missing label is the path's parent directory name
      (`ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi`).

    A label is a class name, or an integer class index minus `label_offset`
    (UCF101's `trainlist0*.txt` count from 1: use `label_offset=1`).

    Args:
        annotation_file: the file.
        root: directory relative paths are under (default: the file's directory).
        class_names: class names in label order (default: sorted names found).
        label_offset: subtracted from integer labels.

    Returns:
        `(examples, class_names)`.
    """
    root = os.path.dirname(os.path.abspath(annotation_file)) if root is None else root
    rows = []
    with open(annotation_file, newline="") as f:
        if annotation_file.lower().endswith(".csv"):
            for record in csv.DictReader(f):
                path = record.get("path") or record.get("youtube_id", "") + ".mp4"
                start = record.get("start", record.get("time_start"))
                end = record.get("end", record.get("time_end"))
                rows.append((path, record.get("label"), _seconds(start), _seconds(end)))
        else:
            for line in f:
                fields = line.split()
                if not fields:
                    continue
                fields += [None] * (4 - len(fields))
                rows.append((fields[0], fields[1], _seconds(fields[2]), _seconds(fields[3])))
    if not rows:
        raise ValueError(f"The annotation file {annotation_file!r} lists no videos.")
    tokens = [label if label is not None else os.path.basename(os.path.dirname(path)) for
              path, label, _, _ in rows]  # fmt: skip
    names = [t for t in tokens if not t.lstrip("-").isdigit()]
    if class_names is None:
        class_names = sorted(set(names)) if names else None
    lookup = {name: i for i, name in enumerate(class_names or [])}
    examples = []
    for (path, _, start, end), token in zip(rows, tokens, strict=True):
        if token.lstrip("-").isdigit():
            label = int(token) - label_offset
        elif token in lookup:
            label = lookup[token]
        else:
            raise ValueError(
                f"Unknown class {token!r} for {path!r} in {annotation_file!r}. "
                f"Known classes: {class_names}"
            )
        examples.append(VideoExample(os.path.join(root, path), label, start, end))
    return examples, class_names


def corpus_examples(
    source: str,
    *,
    labels="inferred",
    class_names=None,
    root: str | None = None,
    label_offset: int = 0,
    match=None,
):
    """The examples of a directory, an annotation file or a file pattern: `(examples, class_names)`.

    The one dispatch of the corpus-wide apps (single-process and `kvid.beam`).

    Args:
        source: a directory (`index_directory` with `labels`), an annotation
            file (`read_annotations`), or a pattern of video files (unlabelled, sorted).
        labels: for a directory, `"inferred"` (class folders) or `None` (its
            videos, found recursively, unlabelled).
        class_names: the classes in label order, as those functions take them.
        root: for an annotation file, the directory its paths are under.
        label_offset: for an annotation file, subtracted from integer labels.
        match: the pattern matcher, `pattern -> paths` (default `glob.glob`;
            `kvid.beam` passes Beam's, which knows `gs://` and the others).

    Raises:
        ValueError: if nothing matches `source`.
    """
    if os.path.isdir(source):
        return index_directory(source, labels, class_names)
    if os.path.isfile(source):
        return read_annotations(source, root, class_names, label_offset)
    paths = sorted((match or glob.glob)(source))
    if not paths:
        raise ValueError(
            "`source` must be a directory, an annotation file or a file pattern that matches "
            f"videos. Received: source={source!r}"
        )
    return [VideoExample(path) for path in paths], class_names


def probe_examples(
    examples, fps: float | None = None, on_error: str = "raise"
) -> list[ProbedExample]:
    """Probes every example; bad files raise or are skipped with a warning each.

    Args:
        examples: `VideoExample`s.
        fps: frame rate the sampler will see (`None`: the videos' own frames).
        on_error: `"raise"` (the error names the file and the problem) or
            `"skip"` (one warning per bad file and a count at the end).

    Returns:
        The usable examples, in order.
    """
    if on_error not in ON_ERROR:
        raise ValueError(f"`on_error` must be one of {ON_ERROR}. Received: on_error={on_error!r}")
    probed, skipped = [], 0
    for example in examples:
        try:
            info = probe(example.path)
            positions = frame_positions(info, fps=fps, start=example.start, end=example.end)
        except VideoDecodeError as err:
            if on_error == "raise":
                raise
            logging.warning("Skipping a video: %s", err)
            skipped += 1
            continue
        probed.append(ProbedExample(example, info, positions))
    if skipped:
        logging.warning("Skipped %d of %d videos that could not be read.", skipped, len(examples))
    return probed
