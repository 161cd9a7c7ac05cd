import dataclasses
import logging
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import kvid
from kvid import preprocessing as sampling
from kvid.data import pipeline
from kvid.io.encode import write_video
from tests.data.conftest import frame_number, numbered_frames

# (first frame value, frame count) of each video in `video_dir`, by class.
VIDEOS = {
    "a": {"a0.mp4": (0, 12), "a1.avi": (2, 9), "a2.webm": (4, 1)},
    "b": {"b0.mkv": (16, 10), "b1.mp4": (18, 14), "b2.avi": (20, 5)},
}
SMALL = dict(num_frames=4, image_size=(8, 8))


def _numbers(clips):
    return frame_number(np.asarray(clips))


def _check_clip_of_class(numbers, label, frame_step=1):
    """The clip is `frame_step`-spaced (looping) frames of one video of class `label`."""
    name = "ab"[label]
    for first, count in VIDEOS[name].values():
        start = numbers[0] - first
        if 0 <= start < count:
            expected = first + (start + frame_step * np.arange(len(numbers))) % count
            if np.array_equal(numbers, expected):
                return
    raise AssertionError(f"clip {numbers} is no clip of a class {name!r} video")


def test_directory_dataset_elements(video_dir):
    ds = kvid.data.video_dataset_from_directory(video_dir, batch_size=4, seed=1, **SMALL)
    assert ds.class_names == ["a", "b"]
    assert [os.path.basename(p) for p in ds.file_paths] == [
        f for c in "ab" for f in sorted(VIDEOS[c])
    ]
    clips_spec, labels_spec = ds.element_spec
    assert clips_spec.shape.as_list() == [None, 4, 8, 8, 3] and clips_spec.dtype == tf.float32
    assert labels_spec.shape.as_list() == [None] and labels_spec.dtype == tf.int32
    seen = []
    for clips, labels in ds:
        for clip, label in zip(_numbers(clips), labels.numpy(), strict=True):
            _check_clip_of_class(clip, label)
            seen.append(label)
    assert sorted(seen) == [0, 0, 0, 1, 1, 1]


def test_same_seed_same_data_new_draws_each_epoch(video_dir):
    def epochs(seed, count=2):
        ds = kvid.data.video_dataset_from_directory(
            video_dir,
            batch_size=6,
            seed=seed,
            num_frames=4,
            image_size=(8, 8),
            augment=[keras.layers.RandomBrightness(0.5)],
        )
        return [next(iter(ds))[0].numpy() for _ in range(count)]

    first, second = epochs(3), epochs(3)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], first[1])
    assert not np.array_equal(first[0], epochs(4, 1)[0])


def test_validation_split_both(video_dir):
    train, val = kvid.data.video_dataset_from_directory(
        video_dir, validation_split=0.34, subset="both", seed=5, batch_size=2, **SMALL
    )
    assert len(train.file_paths) == 4 and len(val.file_paths) == 2
    assert set(train.file_paths).isdisjoint(val.file_paths)
    alone = kvid.data.video_dataset_from_directory(
        video_dir, validation_split=0.34, subset="validation", seed=5, **SMALL
    )
    assert alone.file_paths == val.file_paths
    # Validation clips are the centred clip of each video, in order.
    numbers = np.concatenate([_numbers(c) for c, _ in val])
    for path, clip in zip(val.file_paths, numbers, strict=True):
        first, count = VIDEOS[os.path.basename(os.path.dirname(path))][os.path.basename(path)]
        expected = first + sampling.consecutive_indices(count, 4).numpy()
        np.testing.assert_array_equal(clip, expected)
    with pytest.raises(ValueError, match="seed"):
        kvid.data.video_dataset_from_directory(video_dir, validation_split=0.2, subset="both")
    with pytest.raises(ValueError, match="subset"):
        kvid.data.video_dataset_from_directory(video_dir, subset="training", seed=1)


@pytest.mark.parametrize(
    "label_mode,shape,dtype",
    [
        ("int", [None], tf.int32),
        ("categorical", [None, 2], tf.float32),
        ("binary", [None, 1], tf.float32),
    ],
)
def test_label_modes(video_dir, label_mode, shape, dtype):
    ds = kvid.data.video_dataset_from_directory(video_dir, label_mode=label_mode, seed=0, **SMALL)
    assert ds.element_spec[1].shape.as_list() == shape and ds.element_spec[1].dtype == dtype
    clips, labels = next(iter(ds))
    numbers = _numbers(clips)
    labels = labels.numpy()
    as_int = labels.argmax(-1) if label_mode == "categorical" else labels.reshape(-1).astype(int)
    for clip, label in zip(numbers, as_int, strict=True):
        _check_clip_of_class(clip, label)


def test_no_labels_and_bad_label_modes(video_dir):
    ds = kvid.data.video_dataset_from_directory(
        os.path.join(video_dir, "a"), labels=None, seed=0, **SMALL
    )
    assert ds.element_spec.shape.as_list() == [None, 4, 8, 8, 3]
    with pytest.raises(ValueError, match="label_mode"):
        kvid.data.video_dataset_from_directory(video_dir, label_mode="sparse", **SMALL)


def test_clips_per_video_frame_step_and_uniform_sampling(video_dir):
    ds = kvid.data.video_dataset_from_directory(
        video_dir, clips_per_video=3, frame_step=2, batch_size=None, seed=2, **SMALL
    )
    elements = list(ds)
    assert len(elements) == 18
    for clip, label in elements:
        _check_clip_of_class(_numbers(clip[None])[0], int(label), frame_step=2)
    uniform = kvid.data.video_dataset_from_directory(
        video_dir, sampling="uniform", batch_size=None, seed=2, **SMALL
    )
    for clip, _ in uniform:
        assert np.all(np.diff(_numbers(clip[None])[0]) >= 0)


def test_model_normalisation(video_dir):
    raw = kvid.data.video_dataset_from_directory(video_dir, seed=4, **SMALL)
    # The default transform of 8x8 crops (short side 9), with r3d_18's normalisation.
    small_r3d = dataclasses.replace(kvid.models.get_preprocessing("r3d_18"), crop_size=8, resize=9)
    normed = kvid.data.video_dataset_from_directory(
        video_dir, seed=4, model=small_r3d, num_frames=4
    )
    x_raw, _ = next(iter(raw))
    x_norm, _ = next(iter(normed))
    np.testing.assert_allclose(x_norm, kvid.preprocess_input(x_raw, "r3d_18"), atol=1e-4)


def test_an_image_size_other_than_the_models_crop_scales_its_convention(video_dir):
    # The rule a model with 16-pixel inputs follows in its export, evaluation and prediction.
    r3d = kvid.models.get_preprocessing("r3d_18")
    config = kvid.data.ClipConfig(image_size=(16, 16), model="r3d_18")
    assert config.preprocessing == kvid.preprocessing.rescaled(r3d, 16)
    assert config.preprocessing.resize == (18, 24)
    model = kvid.R3D18(alpha=1 / 16, input_shape=(16, 16, 16, 3))
    assert config.preprocessing == dataclasses.replace(
        kvid.models.model_convention(model), num_frames=r3d.num_frames
    )


def test_validation_clips_are_what_the_export_computes(video_dir):
    small = dataclasses.replace(kvid.models.get_preprocessing("r3d_18"), crop_size=8, resize=9)
    val = kvid.data.video_dataset_from_directory(
        video_dir,
        validation_split=0.5,
        subset="validation",
        seed=2,
        num_frames=4,
        model=small,
        batch_size=None,
        shuffle=False,
    )
    (clip, _), path = next(iter(val)), val.file_paths[0]
    frames = kvid.io.read_video(path)
    indices = kvid.preprocessing.sample_indices(len(frames), 4).numpy()
    expected = kvid.preprocessing.preprocess_frames(frames[indices], small)
    np.testing.assert_array_equal(clip, expected)


def test_keras_layers_augment_inside_the_dataset(video_dir):
    ds = kvid.data.video_dataset_from_directory(
        video_dir,
        seed=0,
        augment=[keras.layers.RandomRotation(0.1), keras.layers.RandomZoom(0.2)],
        **SMALL,
    )
    clips, _ = next(iter(ds))
    assert clips.shape == (6, 4, 8, 8, 3)


def test_fps_resampling(tmp_path):
    folder = tmp_path / "only"
    folder.mkdir()
    write_video(str(folder / "v.mp4"), numbered_frames(30), fps=30)
    ds = kvid.data.video_dataset_from_directory(
        str(tmp_path), fps=15, batch_size=None, seed=0, **SMALL
    )
    for clip, _ in ds:
        np.testing.assert_array_equal(np.diff(_numbers(clip[None])[0]), [2, 2, 2])


def test_frame_folders_are_videos(tmp_path):
    clip_dir = tmp_path / "cls" / "clip0"
    clip_dir.mkdir(parents=True)
    for i, frame in enumerate(numbered_frames(6, first=10)):
        (clip_dir / f"{i:03d}.png").write_bytes(tf.io.encode_png(frame).numpy())
    ds = kvid.data.video_dataset_from_directory(str(tmp_path), batch_size=None, seed=0, **SMALL)
    assert ds.file_paths == [str(clip_dir)]
    clip, label = next(iter(ds))
    numbers = _numbers(clip[None])[0] - 10
    assert label == 0 and np.array_equal(numbers, numbers[0] + np.arange(4))


def _dataset_with_bad_files(root):
    for name in ("good", "bad"):
        os.makedirs(root / name)
    write_video(str(root / "good" / "ok.mp4"), numbered_frames(8))
    write_video(str(root / "bad" / "ok2.mp4"), numbered_frames(8, first=16))
    (root / "bad" / "empty.mp4").write_bytes(b"")
    (root / "bad" / "text.avi").write_text("not a video")
    return str(root)


def test_bad_files_raise_by_default(tmp_path):
    root = _dataset_with_bad_files(tmp_path)
    with pytest.raises(kvid.io.VideoDecodeError, match="empty.mp4.*empty"):
        kvid.data.video_dataset_from_directory(root, **SMALL)


def test_bad_files_skipped_with_one_warning_each(tmp_path, caplog):
    root = _dataset_with_bad_files(tmp_path)
    with caplog.at_level(logging.WARNING):
        ds = kvid.data.video_dataset_from_directory(
            root, on_error="skip", batch_size=None, seed=0, **SMALL
        )
    messages = [r.getMessage() for r in caplog.records]
    assert sum("empty.mp4" in m for m in messages) == 1
    assert sum("text.avi" in m for m in messages) == 1
    assert any("Skipped 2 of 4" in m for m in messages)
    assert [os.path.basename(p) for p in ds.file_paths] == ["ok2.mp4", "ok.mp4"]
    for clip, label in ds:
        # "bad" is class 0 and holds ok2 (values from 16); "good" is class 1 with ok.
        numbers = _numbers(clip[None])[0]
        assert (numbers >= 16).all() if label == 0 else (numbers < 16).all()


def test_decode_failures_while_training(video_dir, monkeypatch, caplog):
    original = pipeline.decode_frames

    def failing(info, indices):
        if info.path.endswith("b1.mp4"):
            raise kvid.io.VideoDecodeError(f"Cannot read video {info.path!r}: corrupt.")
        return original(info, indices)

    monkeypatch.setattr(pipeline, "decode_frames", failing)
    skipping = kvid.data.video_dataset_from_directory(
        video_dir, on_error="skip", batch_size=None, seed=0, **SMALL
    )
    with caplog.at_level(logging.WARNING):
        labels = [int(label) for _, label in skipping]
    assert sorted(labels) == [0, 0, 0, 1, 1]
    assert any("b1.mp4" in r.getMessage() for r in caplog.records)
    raising = kvid.data.video_dataset_from_directory(video_dir, batch_size=None, seed=0, **SMALL)
    with pytest.raises(tf.errors.OpError, match="b1.mp4"):
        list(raising)


def test_annotation_csv_with_segments(tmp_path):
    write_video(str(tmp_path / "long.mp4"), numbered_frames(30), fps=10)
    (tmp_path / "train.csv").write_text(
        "path,label,start,end\nlong.mp4,jump,0,1\nlong.mp4,run,2,3\n"
    )
    ds = kvid.data.video_dataset_from_annotations(
        str(tmp_path / "train.csv"), batch_size=None, seed=0, **SMALL
    )
    assert ds.class_names == ["jump", "run"]
    assert [os.path.basename(p) for p in ds.file_paths] == ["long.mp4@0-1", "long.mp4@2-3"]
    for _ in range(3):
        for clip, label in ds:
            numbers = _numbers(clip[None])[0]
            low = 0 if label == 0 else 20
            assert ((numbers >= low) & (numbers < low + 10)).all()


def test_kinetics_csv_and_split_lists(tmp_path):
    (tmp_path / "ApplyLipstick").mkdir()
    (tmp_path / "Archery").mkdir()
    write_video(str(tmp_path / "ApplyLipstick" / "v1.avi"), numbered_frames(8), codec="mpeg4")
    write_video(str(tmp_path / "Archery" / "v2.avi"), numbered_frames(8, 16), codec="mpeg4")
    (tmp_path / "trainlist.txt").write_text("ApplyLipstick/v1.avi 1\nArchery/v2.avi 2\n")
    (tmp_path / "testlist.txt").write_text("ApplyLipstick/v1.avi\nArchery/v2.avi\n")
    examples, names = kvid.data.read_annotations(str(tmp_path / "trainlist.txt"), label_offset=1)
    assert [e.label for e in examples] == [0, 1] and names is None
    examples, names = kvid.data.read_annotations(str(tmp_path / "testlist.txt"))
    assert [e.label for e in examples] == [0, 1] and names == ["ApplyLipstick", "Archery"]
    write_video(str(tmp_path / "abc.mp4"), numbered_frames(30), fps=10)
    (tmp_path / "kinetics.csv").write_text(
        "label,youtube_id,time_start,time_end,split\nabseiling,abc,1,2,train\n"
    )
    examples, names = kvid.data.read_annotations(str(tmp_path / "kinetics.csv"))
    assert names == ["abseiling"]
    assert (examples[0].path, examples[0].start, examples[0].end) == (
        str(tmp_path / "abc.mp4"),
        1.0,
        2.0,
    )
    with pytest.raises(ValueError, match="Unknown class 'Archery'"):
        kvid.data.read_annotations(str(tmp_path / "testlist.txt"), class_names=["ApplyLipstick"])


def test_video_evaluation_dataset(video_dir):
    ds = kvid.data.video_evaluation_dataset(
        video_dir, num_clips=2, num_crops=3, num_frames=4, image_size=(8, 8)
    )
    assert ds.class_names == ["a", "b"]
    views_spec, label_spec, id_spec = ds.element_spec
    assert views_spec.shape.as_list() == [6, 4, 8, 8, 3]
    assert label_spec.dtype == tf.int32 and id_spec.dtype == tf.string
    found = []
    for views, label, video_id in ds:
        path = video_id.numpy().decode()
        name = os.path.basename(path)
        first, count = VIDEOS["ab"[int(label)]][name]
        expected = first + sampling.evenly_spaced_clips(count, 4, 1, 2).numpy()
        numbers = _numbers(views).reshape(2, 3, 4)
        for crop in range(3):
            np.testing.assert_array_equal(numbers[:, crop], expected)
        found.append(path)
    assert sorted(map(os.path.basename, found)) == sorted(n for c in VIDEOS.values() for n in c)
    assert ds.file_paths == found


def test_a_kvid_model_fits_on_the_dataset(video_dir):
    small = dataclasses.replace(
        kvid.models.get_preprocessing("r2plus1d_18"), crop_size=16, resize=(18, 24)
    )
    ds = kvid.data.video_dataset_from_directory(
        video_dir, batch_size=3, seed=0, num_frames=4, model=small
    )
    model = kvid.R2Plus1D18(
        weights=None, classes=len(ds.class_names), input_shape=(4, 16, 16, 3), alpha=1 / 16
    )
    model.compile("sgd", "sparse_categorical_crossentropy")
    history = model.fit(ds, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_decoding_runs_in_parallel_calls(video_dir, monkeypatch):
    """Clips decode in concurrent `numpy_function` calls (PyAV releases the GIL while decoding).

    The first two calls wait for each other: if the pipeline ran one call at a
    time, the first would wait alone and the barrier would break.
    """
    import threading

    original = pipeline.decode_frames
    barrier = threading.Barrier(2, timeout=20)
    calls, met = [], []

    def meet_then_decode(info, indices):
        calls.append(info)
        if len(calls) <= 2:
            try:
                barrier.wait()
                met.append(True)
            except threading.BrokenBarrierError:
                met.append(False)
        return original(info, indices)

    monkeypatch.setattr(pipeline, "decode_frames", meet_then_decode)
    ds = kvid.data.video_dataset_from_directory(video_dir, batch_size=None, seed=0, **SMALL)
    assert len(list(ds)) == 6
    assert met == [True, True]


def test_every_entry_point_takes_a_clip_config_or_its_fields(video_dir):
    config = kvid.data.ClipConfig(num_frames=4, image_size=(8, 8), augment=False)
    by_config = kvid.data.video_dataset_from_directory(
        video_dir, batch_size=None, shuffle=False, seed=3, clip=config
    )
    by_keywords = kvid.data.video_dataset_from_directory(
        video_dir,
        batch_size=None,
        shuffle=False,
        seed=3,
        num_frames=4,
        image_size=(8, 8),
        augment=False,
    )
    for (a, label_a), (b, label_b) in zip(by_config, by_keywords, strict=True):
        np.testing.assert_array_equal(a, b)
        assert int(label_a) == int(label_b)
    with pytest.raises(ValueError, match="not both"):
        kvid.data.video_evaluation_dataset(video_dir, clip=config, num_frames=4)
    with pytest.raises(ValueError, match=r"Unknown clip options \['num_frame'\]"):
        kvid.data.video_dataset_from_directory(video_dir, num_frame=4)
