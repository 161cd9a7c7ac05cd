"""apps/train.py, evaluate.py and predict.py on the built-in dataset, at a tiny size."""

import json
import os
import re

import pytest
import tensorflow as tf

from kvid.data import synthetic
from kvid.io import write_video
from kvid.planning import plan as planning
from tests import processes
from tests.apps import NOISE, assert_quiet, run_app


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny epoch of `apps/train.py` on the built-in dataset."""
    tmp = tmp_path_factory.mktemp("apps")
    done = run_app(
        "train",
        "--model=r3d_18",
        "--alpha=0.0625",
        "--epochs=1",
        "--batch_size=4",
        "--num_frames=4",
        "--size=32",
        "--train_per_class=2",
        "--validation_per_class=1",
        f"--work_dir={tmp / 'run'}",
        f"--export_dir={tmp / 'export'}",
        env={"KERAS_HOME": str(tmp / "keras_home")},
    )
    assert_quiet(done.stderr)
    data = tmp / "keras_home" / "datasets" / "kvid_synthetic_v3_4f_32px_2-1_s0"
    return tmp, done.stdout, data


def decode_png(path):
    return tf.io.decode_png(tf.io.read_file(str(path))).numpy()


def test_train_prints_the_result_line_last_and_exports(trained):
    tmp, out, data = trained
    last = out.strip().splitlines()[-1]
    pattern = r"val_accuracy=(\d\.\d{3}) reversed_val_accuracy=(\d\.\d{3}) seconds=\d+"
    match = re.fullmatch(pattern, last)
    assert match, out
    assert all(0 <= float(v) <= 1 for v in match.groups())
    assert (tmp / "export" / "r3d_18" / "1" / "saved_model.pb").exists()
    assert (tmp / "run" / "best.keras").exists()
    assert f"training curves: {tmp / 'run' / 'curves.png'}" in out
    assert decode_png(tmp / "run" / "curves.png").shape == (400, 1000, 4)
    assert len(list((data / "validation").glob("*/*.mp4"))) == 8


def test_the_runs_checkpoint_loads_in_safe_mode_after_import_kvid_alone(trained):
    # A fresh process, as a user's notebook: the schedule and every kvid layer are registered
    # by `import kvid`, with the optimizer's state restored.
    tmp, _, _ = trained
    code = (
        "import sys, keras, kvid; "
        "model = keras.saving.load_model(sys.argv[1], safe_mode=True); "
        "print(model.optimizer.get_config()['learning_rate']['class_name'], "
        "int(model.optimizer.iterations))"
    )
    done = processes.run_python("-c", code, str(tmp / "run" / "best.keras"), cwd=str(tmp))
    schedule, iterations = done.stdout.split()[-2:]
    assert schedule == "WarmupCosineDecay" and int(iterations) > 0


def test_evaluate_prints_clip_and_video_accuracy_and_confusions_and_plots_them(trained):
    tmp, _, data = trained
    plot = tmp / "confusion.png"
    done = run_app(
        "evaluate",
        f"--model_path={tmp / 'run' / 'best.keras'}",
        f"--data_dir={data / 'validation'}",
        "--num_clips=2",
        f"--plot={plot}",
    )
    assert_quiet(done.stderr)
    out = done.stdout
    assert "clips: 16  videos: 8" in out
    assert re.search(r"clip top-1 \d\.\d{3}  top-5 \d\.\d{3}", out)
    assert re.search(r"video top-1 \d\.\d{3}", out)
    for name in synthetic.CLASS_NAMES:
        assert name in out
    assert f"confusion plot: {plot}" in out
    # The confusion figure of 8 classes (a change detector: tests/training/test_plots.py).
    assert decode_png(plot).shape == (540, 910, 4)


def test_predict_prints_top5_and_a_timeline_and_saves_a_png(trained):
    tmp, _, data = trained
    video = tmp / "long.mp4"
    write_video(str(video), synthetic.make_clip(1, 0, num_frames=12, size=32))
    plot = tmp / "timeline.png"
    done = run_app(
        "predict",
        f"--video={video}",
        f"--model_path={tmp / 'run' / 'best.keras'}",
        f"--plot={plot}",
        "--noplot_thumbnails",
    )
    assert_quiet(done.stderr)
    out = done.stdout
    top = re.findall(r"^\s+\d\. (\S+)\s+(\d\.\d{3})$", out, flags=re.M)
    assert len(top) == 5 and {name for name, _ in top} <= set(synthetic.CLASS_NAMES)
    assert [float(p) for _, p in top] == sorted((float(p) for _, p in top), reverse=True)
    # 12 frames, clips of 4 every 2 frames: starts 0, 2, 4, 6, 8.
    starts = re.findall(r"^\s+(\d+)\s+\d+\.\d\d(?:\s+\d\.\d{3}){5}$", out, flags=re.M)
    assert starts == ["0", "2", "4", "6", "8"]
    assert f"timeline plot: {plot}" in out
    assert decode_png(plot).shape == (360, 900, 4)  # the timeline's, with no strip of frames


def test_train_plans_the_training_path_with_the_plan_flags(tiny_data_dir, tmp_path):
    # The dynamic programming is tests/training/test_planning.py's (a mock runner): here two
    # real transitions through the app, from scratch to 2-frame clips, then on to 4-frame clips.
    work_dir = tmp_path / "run"
    out = run_app(
        "train",
        "--plan",
        f"--data_dir={tiny_data_dir}",
        "--model=r3d_18",
        "--alpha=0.0625",
        "--num_frames=4",
        "--size=32",
        "--batch_size=4",
        "--plan_clip_lengths=2,4",
        "--plan_learning_rates=0.01",
        "--plan_samplings=consecutive",
        "--plan_delay=1",
        "--plan_max_epochs=1",
        "--plan_holdout_split=0.25",
        f"--work_dir={work_dir}",
        f"--export_dir={tmp_path / 'export'}",
    ).stdout
    assert re.fullmatch(r"val_accuracy=\d\.\d{3}", out.strip().splitlines()[-1]), out
    figure = re.search(r"^plan figure: (\S+)$", out, flags=re.M).group(1)
    assert decode_png(figure).shape[2] == 4
    record = json.loads((work_dir / "plan" / planning.PLAN_RECORD).read_text())
    transitions = [planning.Transition.from_json(t) for t in record["transitions"]]
    assert [(t.source and t.source.num_frames, t.target.num_frames) for t in transitions] == [
        (None, 2),
        (2, 4),
    ]
    for t in transitions:
        assert t.epochs == len(t.curve) == 1 and t.accuracy == t.curve[0]
        assert os.path.exists(t.weights)
    exported = re.search(r"^exported: (\S+)$", out, flags=re.M).group(1)
    served = tf.saved_model.load(exported).signatures["serving_default"]
    frames = tf.zeros([1, 4, 40, 48, 3], tf.uint8)
    assert served(frames=frames)["probabilities"].shape == (1, len(synthetic.CLASS_NAMES))


STRAY = {
    "train": [],
    "evaluate": ["--data_dir=x"],
    "predict": ["--video=x.mp4"],
    "export": ["--model=r3d_18"],
    "prepare_dataset": ["--input_dir=x", "--output_dir=y"],
}


@pytest.fixture(scope="module")
def stray_runs():
    """Every app started at once with a stray argument (their start-ups overlap)."""
    started = {
        name: processes.python(
            f"import sys; from apps import {name}; sys.argv = {['x', *flags, 'stray']!r}; "
            f"{name}.run()"
        )
        for name, flags in STRAY.items()
    }
    yield started
    processes.stop(*started.values())


def test_verbosity_shows_tensorflows_start_up_lines():
    done = processes.run_python("-c", "import sys; sys.argv = ['x', '-v=0']; import apps")
    assert NOISE.search(done.stderr), done.stderr


@pytest.mark.parametrize("name", STRAY)
def test_apps_reject_stray_arguments(name, stray_runs):
    ((_, err),) = processes.finish([stray_runs[name]], timeout=120)
    assert stray_runs[name].returncode != 0 and "Unexpected arguments: " in err
    assert "stray" in err
