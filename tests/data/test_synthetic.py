import av
import numpy as np
import pytest

from kvid.data import synthetic

FRAMES, SIZE = 8, 32


def test_clips_are_deterministic_uint8_and_seed_dependent():
    a = synthetic.make_clip(3, (0, 7), FRAMES, SIZE)
    assert a.shape == (FRAMES, SIZE, SIZE, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, synthetic.make_clip(3, (0, 7), FRAMES, SIZE))
    assert np.abs(a.astype(int) - synthetic.make_clip(3, (0, 8), FRAMES, SIZE)).mean() > 5


@pytest.mark.parametrize("label", range(0, 8, 2))
def test_a_clip_played_backwards_is_a_clip_of_the_paired_class(label):
    pair = synthetic.reversed_label(label)
    assert synthetic.reversed_label(pair) == label and pair != label
    for seed in range(3):
        forward = synthetic.make_clip(label, seed, FRAMES, SIZE)
        backward = synthetic.make_clip(pair, seed, FRAMES, SIZE)
        np.testing.assert_array_equal(backward, forward[::-1])
        # Order matters: the clip is not a palindrome.
        assert np.abs(forward.astype(int) - backward).mean() > 0.5


@pytest.mark.parametrize("label", range(0, 8, 2))
def test_order_free_statistics_cannot_separate_a_pair(label):
    # Over the same seeds the two classes hold exactly the same frames, so any
    # single-frame classifier or order-free statistic scores 50% on a pair.
    def frames_as_set(label):
        clips = [synthetic.make_clip(label, s, FRAMES, SIZE) for s in range(4)]
        flat = np.concatenate(clips).reshape(4 * FRAMES, -1)
        return flat[np.lexsort(flat.T[::-1])]

    np.testing.assert_array_equal(frames_as_set(label), frames_as_set(label ^ 1))


def test_the_class_attribute_changes_in_the_named_direction():
    scenes = [synthetic.sample_scene(label, 5, FRAMES, SIZE) for label in range(8)]
    assert scenes[0].x[-1] < scenes[0].x[0] - 0.15  # move_left
    assert scenes[1].x[-1] > scenes[1].x[0] + 0.15  # move_right
    assert scenes[2].y[-1] < scenes[2].y[0] - 0.15  # move_up (image y points down)
    assert scenes[3].y[-1] > scenes[3].y[0] + 0.15  # move_down
    assert scenes[5].scale[-1] > 1.5 * scenes[5].scale[0]  # grow
    assert scenes[7].opacity[0] <= 0.1 and scenes[7].opacity[-1] >= 0.9  # appear


def test_write_dataset_writes_decodable_h264_once(tmp_path, capsys):
    roots = synthetic.write_dataset(
        tmp_path, train_per_class=2, validation_per_class=1, num_frames=FRAMES, size=SIZE
    )
    shown = capsys.readouterr().err  # the progress bar is on stderr
    assert "Writing the built-in dataset (24 videos)" in shown and "24/24" in shown
    for split, count in (("train", 2), ("validation", 1)):
        for name in synthetic.CLASS_NAMES:
            assert len(list((tmp_path / split / name).glob("*.mp4"))) == count
    path = tmp_path / "train" / "grow" / "00001.mp4"
    with av.open(str(path)) as container:
        assert container.streams.video[0].codec_context.name == "h264"
        frames = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    expected = synthetic.make_clip(5, (0, 0, 1, 1), FRAMES, SIZE)
    assert frames.shape == expected.shape
    assert np.abs(frames.astype(int) - expected).mean() < 6  # lossy, but the same video
    mtime = path.stat().st_mtime_ns
    assert (
        synthetic.write_dataset(
            tmp_path, train_per_class=2, validation_per_class=1, num_frames=FRAMES, size=SIZE
        )
        == roots
    )
    assert path.stat().st_mtime_ns == mtime
    assert capsys.readouterr().out == ""  # nothing written, nothing shown
    with pytest.raises(ValueError, match="other arguments"):
        synthetic.write_dataset(tmp_path, train_per_class=3, num_frames=FRAMES, size=SIZE)


@pytest.mark.parametrize(
    "kwargs, message",
    [({"label": 8}, "label=8"), ({"num_frames": 1}, "num_frames=1"), ({"size": 33}, "size=33")],
)
def test_bad_arguments_are_named(kwargs, message):
    args = {"label": 0, "seed": 0, "num_frames": FRAMES, "size": SIZE, **kwargs}
    with pytest.raises(ValueError, match=message):
        synthetic.make_clip(**args)


def test_write_dataset_is_quiet_when_asked(tmp_path, capsys):
    synthetic.write_dataset(
        tmp_path,
        train_per_class=1,
        validation_per_class=1,
        num_frames=FRAMES,
        size=SIZE,
        verbose=False,
    )
    assert capsys.readouterr() == ("", "")
