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
    """One example: a video (or a segment of one) and its label, or labels.

    Attributes:
        path: video file or frame folder.
        label: class index (`-1` when the dataset has no labels, or has several per video).
        start: first second of the segment, `None` for the beginning.
        end: end second of the segment (exclusive), `None` for the end.
        labels: the classes of a multi-label example, sorted (empty otherwise).
        segments: `(class, start, end)` seconds of each action in the video
            (Charades' `actions`), for clip labels from the segments a clip overlaps.
    """

    path: str
    label: int = -1
    start: float | None = None
    end: float | None = None
    labels: tuple[int, ...] = ()
    segments: tuple[tuple[int, float, float], ...] = ()

    @property
    def label_set(self) -> tuple[int, ...]:
        """Every class of the example: `labels`, else `(label,)`, else `()`."""
        if self.labels:
            return self.labels
        return (self.label,) if self.label >= 0 else ()

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


CLIP_LABELS = ("video", "segments")
EMPTY_LABELS = ("raise", "skip")
LABEL_SEPARATOR = ";"


@dataclasses.dataclass
class _Row:
    """One row of an annotation file, before its labels are resolved to class indices."""

    line: int
    path: str
    tokens: list[str]
    start: float | None = None
    end: float | None = None
    segments: list[tuple[str, float, float]] = dataclasses.field(default_factory=list)


def _charades_actions(field: str, where: str) -> list[tuple[str, float, float]]:
    """Charades' `actions` cell, `c092 11.90 21.20;c147 0.00 12.60`, as `(class, start, end)`."""
    segments = []
    for action in filter(None, (a.strip() for a in (field or "").split(LABEL_SEPARATOR))):
        parts = action.split()
        if len(parts) != 3:
            raise ValueError(
                f"{where}: an action must be `class start end` (Charades' `actions`). "
                f"Received: {action!r}"
            )
        try:
            segments.append((parts[0], float(parts[1]), float(parts[2])))
        except ValueError:
            raise ValueError(
                f"{where}: action times must be seconds. Received: {action!r}"
            ) from None
    return segments


def _read_rows(annotation_file: str) -> list[_Row]:
    rows = []
    with open(annotation_file, newline="") as f:
        if annotation_file.lower().endswith(".csv"):
            reader = csv.DictReader(f)
            for record in reader:
                where = f"{annotation_file!r} line {reader.line_num}"
                # Charades: `id` names `<id>.mp4`, `actions` lists the segments.
                stem = record.get("youtube_id", record.get("id", ""))
                path = record.get("path") or stem + ".mp4"
                start = record.get("start", record.get("time_start"))
                end = record.get("end", record.get("time_end"))
                row = _Row(reader.line_num, path, [], _seconds(start), _seconds(end))
                if "actions" in record:
                    row.segments = _charades_actions(record["actions"], where)
                    row.tokens = [name for name, _, _ in row.segments]
                else:
                    field = record.get("labels", record.get("label"))
                    row.tokens = None if field is None else _split_labels(field)
                rows.append(row)
        else:
            for line_number, line in enumerate(f, 1):
                fields = line.split()
                if not fields:
                    continue
                fields += [None] * (4 - len(fields))
                tokens = None if fields[1] is None else _split_labels(fields[1])
                rows.append(
                    _Row(line_number, fields[0], tokens, _seconds(fields[2]), _seconds(fields[3]))
                )
    return rows


def _split_labels(field: str) -> list[str]:
    return [token.strip() for token in field.split(LABEL_SEPARATOR) if token.strip()]


def read_annotations(
    annotation_file: str,
    root=None,
    class_names=None,
    label_offset: int = 0,
    *,
    multi_label: bool = False,
    empty_labels: str = "raise",
):
    """Reads a CSV or a split list into examples.

    Accepted forms (one example per row):

    - CSV with a header: a `path` column (or Kinetics' `youtube_id` or
      Charades' `id`, the file being `<id>.mp4`), `label` (or `labels`), and
      optional `start`/`end` seconds (or Kinetics' `time_start`/`time_end`),
      so a segment of a long video is an example.
    - Charades' CSV: `id` and `actions`, `c092 11.90 21.20;c147 0.00 12.60`
      (class, start and end seconds of each action): the video's labels are
      its actions' classes, and the segments are kept for clip labels.
    - A whitespace-separated list (UCF101/HMDB51 style): `path [label [start end]]`.
      A missing label is the path's parent directory name
      (`ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi`).

    A label is a class name, or an integer class index minus `label_offset`
    (UCF101's `trainlist0*.txt` count from 1: use `label_offset=1`). With
    `multi_label`, a label field holds several, separated by `;`
    (`dog;frisbee`), and rows of the same video (and segment) are merged, so
    one row per (video, label) works too.

    Args:
        annotation_file: the file.
        root: directory relative paths are under (default: the file's directory).
        class_names: class names in label order (default: sorted names found).
        label_offset: subtracted from integer labels.
        multi_label: read several labels per example into `VideoExample.labels`.
        empty_labels: with `multi_label`, a row without any label is an error
            (`"raise"`) or is left out (`"skip"`, with a warning counting them).

    Returns:
        `(examples, class_names)`.

    Raises:
        ValueError: for an unknown class, a row with several labels without
            `multi_label`, or an empty label list; the message names the file,
            the line and the value.
    """
    if empty_labels not in EMPTY_LABELS:
        raise ValueError(
            f"`empty_labels` must be one of {EMPTY_LABELS}. Received: empty_labels={empty_labels!r}"
        )
    root = os.path.dirname(os.path.abspath(annotation_file)) if root is None else root
    rows = _read_rows(annotation_file)
    if not rows:
        raise ValueError(f"The annotation file {annotation_file!r} lists no videos.")
    for row in rows:
        if row.tokens is None:
            row.tokens = [os.path.basename(os.path.dirname(row.path))]
        if not multi_label and len(row.tokens) != 1:
            raise ValueError(
                f"{annotation_file!r} line {row.line}: {row.path!r} has {len(row.tokens)} labels "
                f"({LABEL_SEPARATOR.join(row.tokens)!r}); read several per video with "
                "`multi_label=True`."
            )
    names = [t for row in rows for t in row.tokens if not t.lstrip("-").isdigit()]
    if class_names is None:
        class_names = sorted(set(names)) if names else None
    lookup = {name: i for i, name in enumerate(class_names or [])}

    def index(token, row):
        if token.lstrip("-").isdigit():
            return int(token) - label_offset
        if token in lookup:
            return lookup[token]
        raise ValueError(
            f"Unknown class {token!r} for {row.path!r} in {annotation_file!r} line {row.line}. "
            f"Known classes: {class_names}"
        )

    if not multi_label:
        examples = [
            VideoExample(
                os.path.join(root, row.path), index(row.tokens[0], row), row.start, row.end
            )
            for row in rows
        ]
        return examples, class_names
    merged: dict[tuple, list] = {}
    for row in rows:
        labels = {index(token, row) for token in row.tokens}
        segments = {(index(name, row), start, end) for name, start, end in row.segments}
        entry = merged.setdefault((row.path, row.start, row.end), [set(), set(), row])
        entry[0] |= labels
        entry[1] |= segments
    examples, empty = [], []
    for (path, start, end), (labels, segments, row) in merged.items():
        if not labels:
            if empty_labels == "raise":
                raise ValueError(
                    f"{annotation_file!r} line {row.line}: {path!r} has an empty label list. "
                    'Pass `empty_labels="skip"` to leave such videos out.'
                )
            empty.append(path)
            continue
        examples.append(
            VideoExample(
                os.path.join(root, path),
                start=start,
                end=end,
                labels=tuple(sorted(labels)),
                segments=tuple(sorted(segments)),
            )
        )
    if empty:
        logging.warning(
            "Left out %d of %d videos of %s with an empty label list (first: %s).",
            len(empty),
            len(merged),
            annotation_file,
            empty[0],
        )
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


def multi_hot(label_sets, num_classes: int) -> np.ndarray:
    """`float32 [examples, num_classes]` k-hot targets of each example's classes.

    Raises:
        ValueError: for a class index outside `[0, num_classes)`.
    """
    targets = np.zeros((len(label_sets), num_classes), np.float32)
    for row, labels in enumerate(label_sets):
        for label in labels:
            if not 0 <= label < num_classes:
                raise ValueError(
                    f"Class index {label} of example {row} is outside [0, {num_classes})."
                )
            targets[row, label] = 1.0
    return targets


def segment_targets(example: VideoExample, frame_times, num_classes: int) -> np.ndarray:
    """`float32 [num_classes]` k-hot of the actions under any of a clip's frames.

    Charades' frame-level labels: a class is on when one of its segments
    `[start, end]` (seconds in the video) holds the time of a frame the clip
    samples. A clip between actions has no class.
    """
    times = np.asarray(frame_times, np.float64).reshape([-1])
    target = np.zeros(num_classes, np.float32)
    for label, start, end in example.segments:
        if np.any((times >= start) & (times <= end)):
            target[label] = 1.0
    return target


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
