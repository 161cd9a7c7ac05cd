"""apps/prepare_dataset.py: a folder of videos to TFRecord shards, bad files reported."""

import os

import numpy as np

import kvid
from tests.apps import run_app


def test_converts_a_directory_and_reports_skipped_files(tmp_path):
    (tmp_path / "in" / "cls").mkdir(parents=True)
    kvid.io.write_video(str(tmp_path / "in" / "cls" / "v.mp4"), np.zeros((4, 16, 16, 3), np.uint8))
    (tmp_path / "in" / "cls" / "bad.mp4").write_text("not a video")
    done = run_app(
        "prepare_dataset",
        f"--input_dir={tmp_path / 'in'}",
        f"--output_dir={tmp_path / 'out'}",
        "--num_shards=2",
        "--short_side=8",
    )
    out = done.stdout
    # The progress bar (kvid.io.progress) is on stderr, over both files, the bad one included.
    assert "Writing 2 videos to 2 TFRecord shards" in done.stderr and "/video" not in out
    assert "2/2" in done.stderr.split("\r")[-1]
    assert "Wrote 1 videos to 2 shards" in out
    assert "Skipped 1 videos" in out and "bad.mp4" in out
    assert sorted(os.listdir(tmp_path / "out")) == [
        "class_names.txt",
        "videos-00000-of-00002.tfrecord",
        "videos-00001-of-00002.tfrecord",
    ]
