"""kvid.io.progress: the one progress bar, and every long-work path reporting through it."""

import hashlib
import pathlib
import re

import keras
import pytest

from kvid import evaluation, inference
from kvid.data import synthetic, tfrecord
from kvid.io import progress, write_video
from kvid.weights import MIRROR_ENV, WeightFile, WeightSpec, loading
from tests.apps import run_app
from tests.weights import mirror_path

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_the_bar_is_drawn_on_stderr_with_its_title_and_ends_at_the_work_done(capsys):
    bar = progress.progress_bar(10, "video", title="Converting")
    for step in range(1, 5):
        bar.update(step, skipped=1)
    bar.add(2)
    bar.finish(skipped=1)
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("Converting\n")
    # Stopped at 6 of the 10 expected: the last line says 6/6 (an estimate corrected).
    last = err.rstrip("\n").split("\r")[-1]
    assert re.search(r"6/6\b", last) and "/video" in last and "skipped: 1.0000" in last
    assert bar.current == bar.total == 6


def test_an_unknown_length_ends_as_the_count_reached(capsys):
    bar = progress.progress_bar(None, "B")
    bar.add(5)
    bar.add(7)
    bar.finish()
    assert "12/12" in capsys.readouterr().err.split("\r")[-1]


def test_a_disabled_bar_shows_nothing_but_still_counts(capsys):
    bar = progress.progress_bar(3, "video", enabled=False, title="Hidden")
    bar.add(3)
    bar.finish()
    assert capsys.readouterr() == ("", "")
    assert bar.current == 3


def test_only_kvid_io_progress_makes_a_keras_progbar():
    sources = [*(ROOT / "kvid").rglob("*.py"), *(ROOT / "apps").glob("*.py")]
    found = {
        str(path.relative_to(ROOT))
        for path in sources
        if re.search(r"Progbar|_Progress\b", path.read_text())
    }
    assert found == {"kvid/io/progress.py"}


@pytest.fixture
def bars(monkeypatch):
    """Every `ProgressBar` made during the test, with `steps` (each `update`) and `finished`."""
    made = []
    init, update, finish = (
        progress.ProgressBar.__init__,
        progress.ProgressBar.update,
        progress.ProgressBar.finish,
    )

    def recording_init(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self.steps, self.finished = [], 0
        made.append(self)

    def recording_update(self, current, **values):
        self.steps.append(current)
        update(self, current, **values)

    def recording_finish(self, **values):
        self.finished += 1
        finish(self, **values)

    monkeypatch.setattr(progress.ProgressBar, "__init__", recording_init)
    monkeypatch.setattr(progress.ProgressBar, "update", recording_update)
    monkeypatch.setattr(progress.ProgressBar, "finish", recording_finish)
    return made


def only(bars, unit_name):
    """The one bar of the call, checked to be of `unit_name`, finished once."""
    assert [bar.unit_name for bar in bars] == [unit_name]
    assert bars[0].finished == 1
    return bars[0]


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    """Two classes of one 6-frame 16-pixel video each, and a model of 4-frame clips on them."""
    root = tmp_path_factory.mktemp("progress")
    for label, name in enumerate(["a", "b"]):
        (root / "videos" / name).mkdir(parents=True)
        clip = synthetic.make_clip(label, 0, num_frames=6, size=16)
        write_video(str(root / "videos" / name / "v.mp4"), clip)
    model = keras.Sequential(
        [
            keras.Input((4, 16, 16, 3)),
            keras.layers.GlobalAveragePooling3D(),
            keras.layers.Dense(2, activation="softmax"),
        ]
    )
    model.save(root / "model.keras")
    return root


def test_a_download_reports_its_bytes(bars, tmp_path, monkeypatch, capsys):
    data = bytes(range(256)) * 12
    weight_file = WeightFile(
        "https://weights.example.org/kvid/tiny.bin", hashlib.sha256(data).hexdigest()
    )
    pathlib.Path(mirror_path(tmp_path / "mirror", weight_file.url)).write_bytes(data)
    monkeypatch.setenv("KVID_HOME", str(tmp_path / "home"))
    monkeypatch.setenv(MIRROR_ENV, (tmp_path / "mirror").as_uri())
    spec = WeightSpec("r3d_18", "progress_test", (weight_file,), classes=5)
    loading.fetch_file(spec, weight_file)  # progress=True by default
    bar = only(bars, "B")
    assert bar.enabled and bar.current == bar.total == len(data)
    assert capsys.readouterr().err.startswith("Downloading file://")
    bars.clear()
    loading.fetch_file(spec, weight_file)  # cached: no download, no bar
    assert bars == []


def test_tfrecord_conversion_reports_each_video(bars, videos, tmp_path):
    tfrecord.convert_directory(str(videos / "videos"), str(tmp_path), num_shards=1)
    bar = only(bars, "video")
    assert bar.enabled and bar.steps == [1, 2] and bar.total == 2
    bars.clear()
    tfrecord.convert_directory(str(videos / "videos"), str(tmp_path / "q"), verbose=False)
    assert not only(bars, "video").enabled


def test_writing_the_built_in_dataset_reports_each_video(bars, tmp_path):
    synthetic.write_dataset(
        tmp_path, train_per_class=1, validation_per_class=1, num_frames=2, size=16
    )
    bar = only(bars, "video")
    assert bar.enabled and bar.steps == list(range(1, 17)) and bar.total == 16


def test_evaluating_a_directory_reports_each_batch_of_views(bars, videos):
    arguments = dict(model_name="r3d_18", num_clips=3, batch_size=4)
    evaluation.evaluate_directory(
        str(videos / "model.keras"), str(videos / "videos"), progress=True, **arguments
    )
    bar = only(bars, "view")
    assert bar.enabled and bar.steps == [4, 6] and bar.total == 6
    bars.clear()
    evaluation.evaluate_directory(str(videos / "model.keras"), str(videos / "videos"), **arguments)
    assert not only(bars, "view").enabled  # off by default in the library


def test_predicting_a_video_reports_each_batch_of_clips(bars, videos):
    model = keras.saving.load_model(videos / "model.keras")
    arguments = dict(class_names=["a", "b"], model_name="r3d_18", stride=1, batch_size=2)
    video = videos / "videos" / "a" / "v.mp4"
    timeline = inference.predict_video(model, video, progress=True, **arguments)
    bar = only(bars, "frame")
    # Clips start at frames 0, 1 and 2: two batches; the last waits for the end of the video.
    assert len(timeline.starts) == 3
    assert bar.enabled and len(bar.steps) == 2 and bar.current == bar.total == 6
    bars.clear()
    inference.predict_video(model, video, **arguments)
    assert not only(bars, "frame").enabled  # off by default in the library


def test_the_evaluate_app_shows_the_bar_on_stderr_and_the_summary_on_stdout(videos):
    done = run_app(
        "evaluate",
        f"--model_path={videos / 'model.keras'}",
        f"--data_dir={videos / 'videos'}",
        "--model_name=r3d_18",
        "--num_clips=1",
    )
    assert "clips: 2  videos: 2" in done.stdout and "/view" not in done.stdout
    assert re.search(r"2/2\S* .*/view", done.stderr.split("\r")[-1])
