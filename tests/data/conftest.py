"""Tiny generated videos, made once per test session in a temporary directory."""

import os

import numpy as np
import pytest

from kvid.io.encode import write_video

HEIGHT, WIDTH = 24, 32


def numbered_frames(num_frames, first=0, height=HEIGHT, width=WIDTH, channels=3):
    """Frames whose value encodes their index: frame i is filled with 8 * (first + i) (mod 256).

    A bright square marks the top-left corner so flips and crops are visible.
    """
    values = (8 * (first + np.arange(num_frames))) % 256
    frames = np.broadcast_to(values[:, None, None, None], (num_frames, height, width, channels))
    frames = np.array(frames, np.uint8)
    return frames


def frame_number(frames, first=0):
    """Inverse of `numbered_frames` (robust to lossy coding): the index of each frame."""
    mean = np.asarray(frames, np.float64).mean(axis=(-3, -2, -1))
    return np.round(mean / 8).astype(int) - first


@pytest.fixture(scope="session")
def video_dir(tmp_path_factory):
    """A class-folder dataset: 2 classes, 3 videos each, different containers and lengths.

    Class `a` videos show frame values 0.., class `b` videos start at 16, so a
    clip tells which video it came from.
    """
    root = tmp_path_factory.mktemp("videos")
    specs = {
        "a": [("a0.mp4", "libx264", 12), ("a1.avi", "mpeg4", 9), ("a2.webm", "libvpx-vp9", 1)],
        "b": [("b0.mkv", "libx264", 10), ("b1.mp4", "libx264", 14), ("b2.avi", "mpeg4", 5)],
    }
    for label, (name, entries) in enumerate(specs.items()):
        os.makedirs(root / name)
        for k, (filename, codec, count) in enumerate(entries):
            first = 16 * label + 2 * k
            # Near-lossless MPEG-4, so frame values survive a second lossy step (JPEG).
            options = {"qmax": "2"} if codec == "mpeg4" else None
            write_video(
                str(root / name / filename),
                numbered_frames(count, first),
                codec=codec,
                options=options,
            )
    return str(root)
