import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

import kvid
from kvid import evaluation, preprocessing
from kvid.data import synthetic
from kvid.io import write_video
from tests import processes

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
from kvid import evaluation
from kvid.training import strategy
s = strategy.get_strategy("mirrored")
assert s.num_replicas_in_sync == 2
with s.scope():
    model = t.probability_model()
for batch_size in (3, 5):  # 10 views: odd batches, and batches that do not split in two
    t.check(evaluation.evaluate(model, t.view_batches(batch_size)))
print("MIRRORED_OK")
"""


def test_evaluate_under_two_replicas_counts_each_view_once():
    done = processes.run_python("-c", MIRRORED, check=False)
    assert "MIRRORED_OK" in done.stdout, done.stderr[-3000:]


def test_view_batches_spread_each_videos_views_and_can_reverse_them():
    views = np.arange(2 * 3 * 2).reshape(2, 3, 2, 1, 1, 1).astype("float32")  # 2 videos
    dataset = tf.data.Dataset.from_tensor_slices((views, [4, 7], [b"x", b"y"]))
    batches = list(evaluation.view_batches(dataset, 4).as_numpy_iterator())
    assert [len(b[0]) for b in batches] == [4, 2]
    clips, labels, ids = (np.concatenate([b[i] for b in batches]) for i in range(3))
    np.testing.assert_array_equal(clips[:, :, 0, 0, 0], views.reshape(6, 2))
    np.testing.assert_array_equal(labels, [4, 4, 4, 7, 7, 7])
    assert list(ids) == [b"x"] * 3 + [b"y"] * 3
    backwards = list(evaluation.view_batches(dataset, 6, reverse=True).as_numpy_iterator())
    np.testing.assert_array_equal(backwards[0][0][:, :, 0, 0, 0], views.reshape(6, 2)[:, ::-1])


def test_evaluate_directory_scores_every_view_of_every_video(tmp_path):
    for label, name in enumerate(["a", "b"]):
        (tmp_path / name).mkdir()
        clip = synthetic.make_clip(label, 0, num_frames=6, size=16)
        write_video(str(tmp_path / name / "v.mp4"), clip)
    model = keras.Sequential(
        [
            keras.Input((4, 16, 16, 3)),
            keras.layers.GlobalAveragePooling3D(),
            keras.layers.Dense(2, activation="softmax"),
        ]
    )
    model_path = tmp_path / "model.keras"
    model.save(model_path)
    # The model records no convention and is not a registry model: name one at its size.
    with pytest.raises(ValueError, match="Pass `preprocessing=` a registry key"):
        evaluation.evaluate_directory(str(model_path), str(tmp_path))
    # A registry key's convention, fitted to the model's 4 frames of 16 pixels.
    result = evaluation.evaluate_directory(
        str(model_path), str(tmp_path), model_name="r3d_18", num_clips=3, batch_size=4
    )
    assert (result.num_clips, result.num_videos) == (6, 2)
    assert result.class_names == ("a", "b")
    # Each video's score: the mean of the model's probabilities on its 3 evenly spaced clips.
    convention = preprocessing.rescaled(kvid.models.get_preprocessing("r3d_18"), 16)
    convention = dataclasses.replace(convention, num_frames=4)
    expected = []
    for name in ("a", "b"):
        frames = kvid.io.read_video(str(tmp_path / name / "v.mp4"))
        indices = preprocessing.evenly_spaced_clips(len(frames), 4, 1, num_clips=3).numpy()
        views = preprocessing.preprocess_frames(frames[indices], convention)
        expected.append(keras.ops.convert_to_numpy(model(views)).mean(axis=0))
    np.testing.assert_allclose(result.video_probabilities, expected, rtol=1e-5, atol=1e-7)
