import numpy as np
import pytest
import tensorflow as tf

from kvid import preprocessing as sampling


def seed(k):
    return tf.constant([k, 99], tf.int64)


def test_consecutive_evaluation_clip_is_centred():
    np.testing.assert_array_equal(sampling.consecutive_indices(100, 4, 2), [46, 48, 50, 52])
    np.testing.assert_array_equal(sampling.consecutive_indices(10, 10), np.arange(10))


def test_consecutive_training_clips_start_anywhere_and_depend_only_on_the_seed():
    starts = set()
    for k in range(200):
        indices = sampling.consecutive_indices(20, 4, 3, seed(k)).numpy()
        np.testing.assert_array_equal(np.diff(indices), [3, 3, 3])
        assert 0 <= indices[0] and indices[-1] < 20
        starts.add(int(indices[0]))
        np.testing.assert_array_equal(indices, sampling.consecutive_indices(20, 4, 3, seed(k)))
    # Every start from 0 to 20 - 10 = 10 is drawn.
    assert starts == set(range(11))


def test_speed_augmentation_draws_a_step_from_the_range():
    steps = {
        int(np.diff(sampling.consecutive_indices(100, 5, (1, 3), seed(k)).numpy())[0])
        for k in range(100)
    }
    assert steps == {1, 2, 3}
    np.testing.assert_array_equal(np.diff(sampling.consecutive_indices(100, 5, (1, 3))), [2] * 4)
    with pytest.raises(ValueError, match="frame_step"):
        sampling.consecutive_indices(100, 5, (3, 1))


@pytest.mark.parametrize("count", [1, 3, 7])
def test_short_videos_loop(count):
    indices = sampling.consecutive_indices(count, 8, 1).numpy()
    np.testing.assert_array_equal(indices, np.arange(8) % count)
    trained = sampling.consecutive_indices(count, 8, 2, seed(1)).numpy()
    assert trained.min() >= 0 and trained.max() < count


def test_uniform_sampling_takes_one_frame_per_segment():
    np.testing.assert_array_equal(sampling.uniform_indices(40, 4), [5, 15, 25, 35])
    for k in range(50):
        indices = sampling.uniform_indices(40, 4, seed(k)).numpy()
        np.testing.assert_array_equal(indices // 10, [0, 1, 2, 3])
    draws = {tuple(sampling.uniform_indices(40, 4, seed(k)).numpy()) for k in range(20)}
    assert len(draws) > 10
    np.testing.assert_array_equal(sampling.uniform_indices(1, 3), [0, 0, 0])
    np.testing.assert_array_equal(sampling.uniform_indices(2, 4), [0, 0, 1, 1])


def test_evenly_spaced_clips_cover_the_video():
    clips = sampling.evenly_spaced_clips(100, 4, 2, num_clips=3).numpy()
    # Starts can be 0..93: the centres of three equal parts of that range, rounded down.
    np.testing.assert_array_equal(clips[:, 0], np.floor(np.array([1, 3, 5]) / 6 * 93))
    np.testing.assert_array_equal(np.diff(clips, axis=1), np.full((3, 3), 2))
    single = sampling.evenly_spaced_clips(1, 4, 1, num_clips=2).numpy()
    np.testing.assert_array_equal(single, np.zeros((2, 4)))


def test_multi_clip_uniform_shifts_inside_segments():
    clips = sampling.multi_clip_indices(40, 4, sampling="uniform", num_clips=2).numpy()
    np.testing.assert_array_equal(clips, [[2, 12, 22, 32], [7, 17, 27, 37]])


def test_sampling_runs_inside_tf_data_with_tensor_counts():
    ds = tf.data.Dataset.from_tensor_slices([5, 50]).map(
        lambda n: sampling.sample_indices(n, 4, 2, "consecutive", seed(3))
    )
    for count, indices in zip([5, 50], ds, strict=True):
        assert indices.numpy().max() < count
    with pytest.raises(ValueError, match="sampling"):
        sampling.sample_indices(10, 4, sampling="random")
