"""A small corpus of real and hostile videos, a tiny model, and DirectRunner options."""

import os
import shutil

import numpy as np
import pytest

import kvid
from kvid.io.encode import write_video

FIXTURE = os.path.join(os.path.dirname(os.path.dirname(__file__)), "fixtures", "cricket_10f.mp4")
CLASSES = ["a", "b"]


def _moving(num_frames, seed, height=36, width=48):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (height, width, 3))
    return np.stack([np.roll(base, 3 * i, axis=1) for i in range(num_frames)]).astype(np.uint8)


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    """Class folders `a`, `b`: the cricket fixture, written videos, and hostile files.

    Returns `(root, good, bad)`: the readable videos' paths (one cut short but readable) and
    the hostile files' (empty, cut before any frame can be read, not a video).
    """
    root = tmp_path_factory.mktemp("corpus")
    for name in CLASSES:
        (root / name).mkdir()
    good = [shutil.copy(FIXTURE, root / "a" / "cricket.mp4")]
    for path, frames, seed in (("a/v0.mp4", 20, 0), ("b/v1.mp4", 12, 1), ("b/v2.avi", 6, 2)):
        good.append(write_video(str(root / path), _moving(frames, seed), fps=10))
    # Cut short: a Matroska file is read up to the cut (16 of its 30 frames), an MP4 not at all
    # (its index is written last).
    readable = write_video(str(root / "a" / "cut.mkv"), _moving(30, 4), fps=10)
    whole = write_video(str(root / "b" / "cut.mp4"), _moving(30, 3), fps=10)
    for path, kept in ((readable, 2 / 3), (whole, 1 / 3)):
        data = open(path, "rb").read()
        with open(path, "wb") as f:
            f.write(data[: int(len(data) * kept)])
    good.append(readable)
    (root / "a" / "empty.mp4").write_bytes(b"")
    (root / "b" / "not_a_video.mp4").write_text("not a video")
    bad = [str(root / "a" / "empty.mp4"), whole, str(root / "b" / "not_a_video.mp4")]
    return str(root), sorted(map(str, good)), bad


@pytest.fixture(scope="session")
def model_path(tmp_path_factory):
    """A tiny R3D-18 (1/16 width, 8 x 32 x 32 clips, two classes) and its class names."""
    folder = tmp_path_factory.mktemp("model")
    model = kvid.R3D18(alpha=1 / 16, input_shape=(8, 32, 32, 3), classes=len(CLASSES))
    path = str(folder / "model.keras")
    model.save(path)
    kvid.io.write_class_names(folder, CLASSES)
    return path


def direct_options(*extra):
    """DirectRunner with two worker processes, as the suite runs every Beam pipeline."""
    from kvid.beam import pipeline_options

    return pipeline_options(
        ["--direct_running_mode=multi_processing", "--direct_num_workers=2", *extra],
        runner="DirectRunner",
    )
