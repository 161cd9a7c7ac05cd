import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from kvid.data import synthetic, write_video
from kvid.training import evaluation

# Two views per video; rows are class probabilities, worked through by hand.
VIEWS = np.array(
    [
        [0.6, 0.3, 0.1, 0, 0, 0],  # video 0, label 0: top-1 right
        [0.3, 0.5, 0.2, 0, 0, 0],  # wrong, label 2nd -> top-5 right
        [0.5, 0.2, 0.1, 0.1, 0.1, 0],  # video 1, label 5: label last -> top-5 wrong
        [0.1, 0.1, 0.1, 0.1, 0.1, 0.5],  # right
        [0, 0, 1, 0, 0, 0],  # video 2, label 2: right
        [0, 0, 1, 0, 0, 0],  # right
        [0.25, 0.2, 0.15, 0.06, 0.3, 0.04],  # video 3, label 3: 5th -> top-5 right
        [0.1, 0.1, 0.1, 0.2, 0.5, 0],  # 2nd -> top-5 right
        [0, 0.9, 0.1, 0, 0, 0],  # video 4, label 1: right
        [0.7, 0.2, 0.1, 0, 0, 0],  # 2nd -> top-5 right
    ]
)
LABELS = np.repeat([0, 5, 2, 3, 1], 2)
IDS = np.repeat([10, 11, 12, 13, 14], 2)
# Video means: v0 [.45 .4 .15] right; v1 [.3 .15 .1 .1 .1 .25] top-1 0 (wrong), 5 is 2nd;
# v2 right; v3 [.175 .15 .125 .13 .4 .02] top-1 4 (wrong), 3 is 4th; v4 [.35 .55 .1] right.
EXPECTED = dict(clip_top1=0.5, clip_top5=0.9, video_top1=0.6, video_top5=1.0)
EXPECTED_CONFUSION = {(0, 0): 1, (5, 0): 1, (2, 2): 1, (3, 4): 1, (1, 1): 1}


def check(result):
    for key, value in EXPECTED.items():
        assert getattr(result, key) == pytest.approx(value), key
    assert (result.num_clips, result.num_videos) == (10, 5)
    expected = np.zeros((6, 6), int)
    for (row, col), count in EXPECTED_CONFUSION.items():
        expected[row, col] = count
    np.testing.assert_array_equal(result.confusion, expected)


def probability_model():
    # Each view is a 1x1x1 "clip" whose 6 channels are its probabilities.
    inputs = keras.Input((1, 1, 1, 6))
    return keras.Model(inputs, keras.layers.GlobalAveragePooling3D()(inputs))


def view_batches(batch_size):
    views = VIEWS.reshape(10, 1, 1, 1, 6).astype("float32")
    return tf.data.Dataset.from_tensor_slices((views, LABELS, IDS)).batch(batch_size)


def test_score_by_hand():
    check(evaluation.score(VIEWS, LABELS, IDS))


@pytest.mark.parametrize("batch_size", [3, 4, 10, 16])
def test_evaluate_counts_a_partial_last_batch_once(batch_size):
    check(evaluation.evaluate(probability_model(), view_batches(batch_size)))


def test_evaluate_from_logits():
    logits = np.log(np.maximum(VIEWS, 1e-12)) + 3.0  # softmax(log p + c) == p
    dataset = tf.data.Dataset.from_tensor_slices(
        (logits.reshape(10, 1, 1, 1, 6).astype("float32"), LABELS, IDS)
    ).batch(3)
    check(evaluation.evaluate(probability_model(), dataset, from_logits=True))


MIRRORED = """
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from tests.training import test_evaluation as t
from kvid.training import evaluation, strategy
s = strategy.get_strategy("mirrored")
assert s.num_replicas_in_sync == 2
with s.scope():
    model = t.probability_model()
for batch_size in (3, 5):  # 10 views: odd batches, and batches that do not split in two
    t.check(evaluation.evaluate(model, t.view_batches(batch_size)))
print("MIRRORED_OK")
"""


def test_evaluate_under_two_replicas_counts_each_view_once():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    done = subprocess.run(
        [sys.executable, "-c", MIRRORED], cwd=root, capture_output=True, text=True, timeout=240
    )
    assert "MIRRORED_OK" in done.stdout, done.stderr[-3000:]


def test_video_views_are_evenly_spaced_clips_times_three_crops():
    frames, height, width = 10, 4, 8
    t = np.arange(frames)[:, None, None, None]
    x = np.arange(width)[None, None, :, None]
    video = np.broadcast_to(t * 100 + x, (frames, height, width, 1))
    views = evaluation.video_views(video, num_frames=4, num_clips=3, crop_size=4, num_crops=3)
    assert views.shape == (9, 4, 4, 4, 1)
    for clip, start in enumerate([0, 3, 6]):
        for crop, left in enumerate([0, 2, 4]):
            view = views[clip * 3 + crop]
            np.testing.assert_array_equal(view[:, 0, 0, 0], (start + np.arange(4)) * 100 + left)
            np.testing.assert_array_equal(view[0, 0, :, 0], start * 100 + left + np.arange(4))
    short = evaluation.video_views(video[:2], num_frames=4, num_clips=2, crop_size=4)
    np.testing.assert_array_equal(short[1, :, 0, 0, 0], [2, 102, 102, 102])  # last frame repeated
    with pytest.raises(ValueError, match="num_crops=2"):
        evaluation.video_views(video, num_frames=4, num_clips=1, crop_size=4, num_crops=2)


def test_view_dataset_reads_every_view_of_every_video(tmp_path):
    for label, name in enumerate(["a", "b"]):
        (tmp_path / name).mkdir()
        clip = synthetic.make_clip(label, 0, num_frames=6, size=16)
        write_video(str(tmp_path / name / "v.mp4"), clip)
    dataset, names = evaluation.view_dataset(
        tmp_path, num_frames=4, size=16, num_clips=3, batch_size=4
    )
    batches = list(dataset.as_numpy_iterator())
    views, labels, ids = (np.concatenate([b[i] for b in batches]) for i in range(3))
    assert names == ["a", "b"] and views.shape == (6, 4, 16, 16, 3)
    np.testing.assert_array_equal(labels, [0, 0, 0, 1, 1, 1])
    np.testing.assert_array_equal(ids, [0, 0, 0, 1, 1, 1])
