"""The three pictures: what they say (through the figure) and the PNG they save."""

import os

import numpy as np
import pytest
import tensorflow as tf

from kvid import plots
from kvid.data import synthetic
from kvid.io import write_video

NAMES = synthetic.CLASS_NAMES


def decode(path):
    return tf.io.decode_png(tf.io.read_file(str(path))).numpy()


def texts(figure):
    """Every string drawn on the figure: titles, labels, tick labels, legends, annotations."""
    found = [t.get_text() for t in figure.findobj(lambda a: hasattr(a, "get_text"))]
    return [t for t in found if t]


def test_save_figure_writes_a_png_of_the_figures_size_and_no_temporary(tmp_path):
    figure = plots.training_curves_figure({"loss": [1.0, 0.5], "accuracy": [0.3, 0.6]})
    path = plots.save_figure(figure, tmp_path / "sub" / "curves.png")
    assert path == str(tmp_path / "sub" / "curves.png")
    image = decode(path)
    width, height = figure.get_size_inches() * plots.DPI
    assert image.shape == (round(height), round(width), 4) == (400, 1000, 4)
    assert os.listdir(tmp_path / "sub") == ["curves.png"]


def timeline_data(clips=9, seed=0):
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.full(len(NAMES), 0.5), size=clips)
    probs[:, 6] += 1.0  # "disappear" first on average
    probs /= probs.sum(axis=1, keepdims=True)
    return (np.arange(clips) + 0.5) * 0.64, probs


def test_timeline_names_the_top_classes_in_its_legend_and_labels_its_axes(tmp_path):
    times, probs = timeline_data()
    figure = plots.timeline_figure(
        times, probs, NAMES, k=3, title="bikes.mp4 · r3d_18", duration=6.0
    )
    axes = figure.axes[0]
    legend = [t.get_text() for t in axes.get_legend().get_texts()]
    mean = probs.mean(axis=0)
    top = np.argsort(-mean, kind="stable")[:3]
    assert legend == [f"{NAMES[i]} ({mean[i]:.2f})" for i in top]
    assert legend[0].startswith("disappear ")
    colors = [line.get_color() for line in axes.get_lines()]
    assert colors == ["tab:red", "tab:blue", "tab:green"]  # the report's column names
    for line, index in zip(axes.get_lines(), top, strict=True):
        np.testing.assert_allclose(line.get_xdata(), times)
        np.testing.assert_allclose(line.get_ydata(), probs[:, index])
    assert axes.get_xlim() == (0.0, 6.0)
    assert "time in the video (s)" in axes.get_xlabel()
    assert axes.get_ylabel() == "probability"
    assert figure.get_suptitle() == "bikes.mp4 · r3d_18"
    image = decode(plots.save_figure(figure, tmp_path / "timeline.png"))
    assert image.shape == (360, 900, 4)  # a change detector of the layout: 9 x 3.6 inches
    assert len(np.unique(image[..., :3].reshape(-1, 3), axis=0)) > 20


def test_timeline_with_thumbnails_of_a_video_adds_a_strip_under_the_time_axis(tmp_path):
    video = tmp_path / "clip.mp4"
    write_video(str(video), synthetic.make_clip(3, 0, num_frames=12, size=32))
    frames, duration = plots.video_thumbnails(video, count=4)
    assert frames.shape == (4, 32, 32, 3) and frames.dtype == np.uint8
    assert duration == pytest.approx(12 / 30, abs=1e-3)  # write_video writes 30 fps
    assert plots.video_thumbnails(video, count=2, max_height=16)[0].shape == (2, 16, 16, 3)
    times, probs = timeline_data(clips=5)
    figure = plots.timeline_figure(
        times * duration / times[-1] * 0.9, probs, NAMES, duration=duration, thumbnails=frames
    )
    timeline, strip = figure.axes
    assert len(strip.get_images()) == 4
    extents = [image.get_extent()[:2] for image in strip.get_images()]
    np.testing.assert_allclose(
        extents, [(i * duration / 4, (i + 1) * duration / 4) for i in range(4)]
    )
    assert "time in the video (s)" in strip.get_xlabel()
    assert not timeline.get_xlabel()
    image = decode(plots.save_figure(figure, tmp_path / "timeline.png"))
    # The strip is as tall as square frames 6 inches / 4 wide: 1.5 inch.
    assert image.shape == (510, 900, 4)


def test_timeline_rejects_probabilities_that_do_not_match_the_clips():
    with pytest.raises(ValueError, match=r"Received: probs.shape=\(3, 8\)"):
        plots.timeline_figure([0.5, 1.0], np.full((3, 8), 0.125), NAMES)


LOG = """epoch,accuracy,learning_rate,loss,val_accuracy,val_loss
0,0.2,0.001,2.0,0.1,2.1
1,0.4,0.001,1.5,0.3,1.6
0,0.25,0.001,1.9,0.2,2.0
1,0.5,0.001,1.4,0.6,1.3
2,0.7,0.0005,1.0,0.5,1.1
2,0.75,0.0005,0.9,0.8,0.8
3,0.9,0.0001,0.5,0.7,0.9
4,0.95,NA,0.4,,
"""


def test_read_training_log_keeps_the_latest_run_and_resumed_epochs_once(tmp_path):
    # A first run of 2 epochs, then a fresh run killed after epoch 2 was logged
    # (so the resumed run logs it again), then epoch 3.
    path = tmp_path / "training_log.csv"
    path.write_text(LOG)
    log = plots.read_training_log(path)
    np.testing.assert_array_equal(log["epoch"], [0, 1, 2, 3, 4])
    np.testing.assert_allclose(log["val_accuracy"], [0.2, 0.6, 0.8, 0.7, np.nan])
    np.testing.assert_allclose(log["loss"], [1.9, 1.4, 0.9, 0.5, 0.4])
    assert np.isnan(log["learning_rate"][4])  # Keras writes "NA" for a missing value


def test_read_training_log_rejects_an_empty_log(tmp_path):
    path = tmp_path / "training_log.csv"
    path.write_text("epoch,loss\n")
    with pytest.raises(ValueError, match="holds no epoch"):
        plots.read_training_log(path)


def test_training_curves_plot_both_splits_and_mark_the_best_epoch(tmp_path):
    (tmp_path / "training_log.csv").write_text(LOG)
    path = plots.write_training_curves(tmp_path)
    assert path == str(tmp_path / "curves.png")
    assert decode(path).shape == (400, 1000, 4)

    figure = plots.training_curves_figure(plots.read_training_log(tmp_path / "training_log.csv"))
    loss_axes, accuracy_axes = figure.axes
    assert loss_axes.get_xlabel() == accuracy_axes.get_xlabel() == "epoch"
    assert "accuracy" in accuracy_axes.get_ylabel()
    for axes in (loss_axes, accuracy_axes):
        legend = [t.get_text() for t in axes.get_legend().get_texts()]
        assert legend[:2] == ["training", "validation"]
        np.testing.assert_array_equal(axes.get_lines()[0].get_xdata(), [1, 2, 3, 4, 5])
    assert "best validation: 0.800 (epoch 3)" in legend


def test_confusion_has_class_names_on_both_axes_rows_normalised_and_per_class_accuracy(
    tmp_path,
):
    confusion = np.diag([5, 4, 5, 5, 3, 5, 5, 0])
    confusion[1, 0] = 1
    confusion[4, 5] = 2
    figure = plots.confusion_figure(confusion, NAMES, title="r3d_18 on validation")
    matrix_axes, bar_axes = figure.axes[:2]
    assert [t.get_text() for t in matrix_axes.get_xticklabels()] == list(NAMES)
    assert [t.get_text() for t in matrix_axes.get_yticklabels()] == list(NAMES)
    assert matrix_axes.get_xlabel() == "predicted class"
    assert matrix_axes.get_ylabel() == "true class"
    rates = matrix_axes.get_images()[0].get_array()
    np.testing.assert_allclose(rates.sum(axis=1), [1, 1, 1, 1, 1, 1, 1, 0])
    assert rates[1, 0] == pytest.approx(0.2) and rates[4, 5] == pytest.approx(0.4)
    widths = [bar.get_width() for bar in bar_axes.patches]
    np.testing.assert_allclose(widths, [1, 0.8, 1, 1, 0.6, 1, 1, 0])
    drawn = texts(figure)
    assert "0.80 (4/5)" in drawn and "0.60 (3/5)" in drawn and "no video" in drawn
    assert "r3d_18 on validation" in drawn
    image = decode(plots.save_figure(figure, tmp_path / "confusion.png"))
    assert image.shape == (540, 910, 4)  # a change detector of the layout for 8 classes


def test_confusion_rejects_a_matrix_of_another_size():
    with pytest.raises(ValueError, match=r"Received: confusion.shape=\(3, 3\)"):
        plots.confusion_figure(np.eye(3), NAMES)
