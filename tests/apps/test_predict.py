"""apps/predict.py on a generated video with a tiny saved model."""

import json
import re

import keras
import pytest

import kvid
from kvid.data import synthetic
from kvid.io import write_class_names, write_video
from tests.apps import run_app


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    folder = tmp_path_factory.mktemp("model")
    keras.utils.set_random_seed(0)
    model = kvid.R3D18(alpha=0.0625, classes=len(synthetic.CLASS_NAMES), input_shape=(4, 32, 32, 3))
    model.save(folder / "best.keras")
    write_class_names(str(folder), synthetic.CLASS_NAMES)
    return folder / "best.keras"


def test_predict_prints_top5_and_a_timeline_and_saves_json_and_a_png(tmp_path, model_path):
    video = write_video(str(tmp_path / "long.mp4"), synthetic.make_clip(1, 0, 12, size=32))
    plot, timeline = tmp_path / "timeline.png", tmp_path / "timeline.json"
    done = run_app(
        "predict",
        f"--video={video}",
        f"--model_path={model_path}",
        f"--plot={plot}",
        f"--output={timeline}",
    )
    out = done.stdout
    top = re.findall(r"^\s+\d\. (\S+)\s+(\d\.\d{3})$", out, flags=re.M)
    assert len(top) == 5 and {name for name, _ in top} <= set(synthetic.CLASS_NAMES)
    assert [float(p) for _, p in top] == sorted((float(p) for _, p in top), reverse=True)
    # 12 frames at 30 fps, clips of 4 every 2 frames: starts 0, 2, 4, 6, 8, centred 1.5 frames on.
    rows = re.findall(r"^\s+(\d+)\s+(\d+\.\d\d)(?:\s+\d\.\d{3}){5}$", out, flags=re.M)
    assert rows == [(str(s), f"{(s + 1.5) / 30:.2f}") for s in (0, 2, 4, 6, 8)]
    clips = json.loads(timeline.read_text())["clips"]
    assert [c["start_frame"] for c in clips] == [0, 2, 4, 6, 8]
    assert {t["class"] for t in clips[0]["top"]} <= set(synthetic.CLASS_NAMES)
    # The progress bar, on stderr: all 12 frames, the estimate from the headers corrected.
    assert re.search(r"Predicting long.mp4 \(0\.4 s of video\)\n(.|\n)*12/12", done.stderr)
    assert "Predicting" not in out
    assert f"timeline plot: {plot}" in out
    # The plot itself is tests/training/test_plots.py's and test_apps.py's.
    assert f"timeline plot: {plot}" in out and plot.stat().st_size > 0


def test_predict_resamples_and_strides_in_seconds_and_writes_csv(tmp_path, model_path):
    video = write_video(str(tmp_path / "v.mp4"), synthetic.make_clip(2, 0, 30, size=32), fps=30)
    table = tmp_path / "timeline.csv"
    run_app(
        "predict",
        f"--video={video}",
        f"--model_path={model_path}",
        "--fps=10",
        "--stride_seconds=0.2",
        f"--output={table}",
        "--progress=false",
    )
    # 1 s at 10 fps: 10 frames, clips of 4 every 2 frames start at 0, 2, 4, 6.
    rows = table.read_text().splitlines()
    assert rows[0].startswith("time,start_frame,class_1,probability_1,class_2")
    assert [row.split(",")[:2] for row in rows[1:]] == [
        [f"{(s + 1.5) / 10:.3f}", str(s)] for s in (0, 2, 4, 6)
    ]
