"""`kvid-train --multi_label` on the built-in two-polygon variant, then its model evaluated,
exported and predicted with: one tiny run, checked against independent code."""

import re

import keras
import numpy as np
import pytest
import tensorflow as tf
from sklearn.metrics import average_precision_score

import kvid
from kvid.data import synthetic
from kvid.io import write_video
from kvid.models import load_model
from tests.apps import assert_quiet, run_app


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny epoch of `apps/train.py --multi_label` on the built-in dataset."""
    tmp = tmp_path_factory.mktemp("multilabel")
    done = run_app(
        "train",
        "--multi_label",
        "--model=r3d_18",
        "--alpha=0.0625",
        "--epochs=1",
        "--batch_size=4",
        "--num_frames=4",
        "--size=32",
        "--train_per_class=3",
        "--validation_per_class=2",
        "--label_smoothing=0.1",
        f"--work_dir={tmp / 'run'}",
        f"--export_dir={tmp / 'export'}",
        env={"KERAS_HOME": str(tmp / "keras_home")},
    )
    assert_quiet(done.stderr)
    data = tmp / "keras_home" / "datasets" / "kvid_synthetic_multilabel_v3_4f_32px_3-2_s0"
    return tmp, done.stdout, data


def _validation(data):
    """The validation videos' k-hot labels and their centred clips, read by hand."""
    rows = (data / "validation.csv").read_text().splitlines()[1:]
    names = sorted(synthetic.CLASS_NAMES)
    labels = np.zeros((len(rows), len(names)))
    clips = []
    for i, row in enumerate(sorted(rows)):
        path, classes = row.split(",")
        for name in classes.split(";"):
            labels[i, names.index(name)] = 1
        frames = kvid.io.decode.decode_frames(
            kvid.io.decode.probe(str(data / path)), np.arange(4)
        )  # 4-frame videos: the centred clip is the whole video
        clips.append(frames)
    return labels, np.stack(clips)


def test_train_prints_the_map_line_last_and_it_is_the_charades_map(trained):
    tmp, out, data = trained
    last = out.strip().splitlines()[-1]
    match = re.fullmatch(r"val_mAP=(\d\.\d{3}) reversed_val_mAP=(\d\.\d{3}) seconds=\d+", last)
    assert match, out
    model = load_model(str(tmp / "run" / "best.keras"))
    assert model.layers[-1].get_config()["activation"] == "sigmoid"
    compiled = keras.saving.load_model(str(tmp / "run" / "best.keras"))
    assert compiled.loss.get_config()["label_smoothing"] == 0.1
    assert "val_pr_auc" in (tmp / "run" / "training_log.csv").read_text().splitlines()[0]
    labels, clips = _validation(data)
    present = labels.sum(axis=0) > 0
    for score, frames in ((match[1], clips), (match[2], clips[:, ::-1])):
        probs = model.predict(kvid.models.preprocess_frames(frames, model), verbose=0)
        expected = average_precision_score(labels[:, present], probs[:, present])
        assert float(score) == pytest.approx(expected, abs=5e-4)


def test_export_returns_sigmoid_probabilities_and_multi_clip_takes_their_max(trained):
    tmp, _, data = trained
    model = load_model(str(tmp / "run" / "best.keras"))
    _, clips = _validation(data)
    clips = clips[:3]
    expected = model.predict(kvid.models.preprocess_frames(clips, model), verbose=0)
    backwards = model.predict(kvid.models.preprocess_frames(clips[:, ::-1], model), verbose=0)
    loaded = tf.saved_model.load(str(tmp / "export" / "r3d_18" / "1"))
    single = loaded.signatures["serving_default"](frames=tf.constant(clips))
    assert "probabilities" not in single
    np.testing.assert_allclose(single["sigmoid_probabilities"], expected, atol=1e-5)
    both = loaded.signatures["multi_clip"](clips=tf.constant(np.stack([clips, clips[:, ::-1]], 1)))
    np.testing.assert_allclose(
        both["sigmoid_probabilities"], np.maximum(expected, backwards), atol=1e-5
    )


def test_evaluation_report_and_plot_of_the_annotation_file(trained):
    tmp, out, data = trained
    result = kvid.evaluation.evaluate_directory(
        str(tmp / "run" / "best.keras"), str(data / "validation.csv"), num_clips=1,
        multi_label=True,
    )  # fmt: skip
    assert f"val_mAP={result.mean_ap:.3f}" in out
    report = kvid.evaluation.summary(result)
    assert f"video mAP {result.mean_ap:.3f}" in report and "views combined by max" in report
    assert len(report.splitlines()) == 3 + len(synthetic.CLASS_NAMES)
    figure = kvid.plots.average_precision_figure(
        result.per_class_ap, result.class_names, result.video_labels.sum(axis=0)
    )
    path = kvid.plots.save_figure(figure, tmp / "ap.png")
    assert tf.io.decode_png(tf.io.read_file(path)).shape[-1] == 4


def test_prediction_lists_each_clips_labels_above_the_threshold(trained, tmp_path):
    tmp, _, data = trained
    _, clips = _validation(data)
    video = write_video(str(tmp_path / "long.mp4"), np.concatenate(list(clips[:3])), fps=15)
    text = kvid.inference.predict_file(
        video, str(tmp / "run" / "best.keras"), stride=4, threshold=0.5, progress=False,
        output_path=str(tmp_path / "timeline.csv"), plot_path=str(tmp_path / "t.png"),
        plot_thumbnails=False,
    )  # fmt: skip
    model = load_model(str(tmp / "run" / "best.keras"))
    decoded = kvid.io.decode.decode_frames(kvid.io.decode.probe(video), np.arange(12))
    probs = model.predict(kvid.models.preprocess_frames(decoded.reshape(3, 4, 32, 32, 3), model))
    names = sorted(synthetic.CLASS_NAMES)
    expected = [
        [names[i] for i in np.argsort(-row, kind="stable") if row[i] >= 0.5] for row in probs
    ]
    lines = text.split("labels of each clip (probability >= 0.5):\n")[1].splitlines()[:3]
    assert [line.split(None, 1) for line in lines] == [
        [str(start), ", ".join(above) or "-"]
        for start, above in zip((0, 4, 8), expected, strict=True)
    ]
    rows = (tmp_path / "timeline.csv").read_text().splitlines()
    assert rows[0].endswith(",labels")
    assert [row.split(",")[-1] for row in rows[1:]] == [";".join(above) for above in expected]
