import logging
import os
import signal
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

import kvid
from kvid import preprocessing as sampling
from kvid.data import tfrecord
from kvid.io import atomic
from tests import processes
from tests.data.conftest import frame_number
from tests.data.test_pipeline import VIDEOS, _check_clip_of_class

SMALL = dict(num_frames=4, image_size=(8, 8))


@pytest.fixture(scope="module")
def records(video_dir, tmp_path_factory):
    output = str(tmp_path_factory.mktemp("records"))
    summary = kvid.data.convert_directory(video_dir, output, num_shards=2, verbose=False)
    return output, summary


def test_conversion_writes_model_garden_sequence_examples(records):
    output, summary = records
    assert summary.written == 6 and summary.skipped == []
    assert [os.path.basename(s) for s in summary.shards] == [
        "videos-00000-of-00002.tfrecord",
        "videos-00001-of-00002.tfrecord",
    ]
    assert tfrecord.shard_class_names(os.path.join(output, "*.tfrecord")) == ["a", "b"]
    seen = {}
    for shard in summary.shards:
        for raw in tf.data.TFRecordDataset(shard):
            example = tf.train.SequenceExample.FromString(raw.numpy())
            context = example.context.feature
            name = os.path.basename(context["clip/media_id"].bytes_list.value[0].decode())
            label = context["clip/label/index"].int64_list.value[0]
            assert context["clip/label/text"].bytes_list.value[0].decode() == "ab"[label]
            jpegs = [
                f.bytes_list.value[0]
                for f in example.feature_lists.feature_list["image/encoded"].feature
            ]
            frames = np.stack([tf.io.decode_jpeg(j).numpy() for j in jpegs])
            seen[name] = frame_number(frames)
    for name, (first, count) in {**VIDEOS["a"], **VIDEOS["b"]}.items():
        np.testing.assert_array_equal(seen[name], first + np.arange(count))


def test_tfrecord_dataset_matches_the_pyav_dataset_structure(records, video_dir):
    output, _ = records
    ds = kvid.data.video_dataset_from_tfrecords(
        os.path.join(output, "*.tfrecord"), batch_size=4, seed=0, **SMALL
    )
    reference = kvid.data.video_dataset_from_directory(video_dir, batch_size=4, seed=0, **SMALL)
    assert ds.element_spec == reference.element_spec
    assert ds.class_names == ["a", "b"]
    labels = []
    for clips, batch_labels in ds:
        for clip, label in zip(frame_number(clips.numpy()), batch_labels.numpy(), strict=True):
            _check_clip_of_class(clip, label)
            labels.append(label)
    assert sorted(labels) == [0, 0, 0, 1, 1, 1]
    first, again = (
        kvid.data.video_dataset_from_tfrecords(
            os.path.join(output, "*.tfrecord"), batch_size=4, seed=0, **SMALL
        )
        for _ in range(2)
    )
    np.testing.assert_array_equal(next(iter(first))[0], next(iter(again))[0])


def test_tfrecord_evaluation_dataset(records):
    output, _ = records
    ds = kvid.data.tfrecord_evaluation_dataset(
        os.path.join(output, "*.tfrecord"), num_clips=3, num_crops=1, **SMALL
    )
    count = 0
    for views, label, media_id in ds:
        assert views.shape == (3, 4, 8, 8, 3)
        name = os.path.basename(media_id.numpy().decode())
        first, frames = VIDEOS["ab"[int(label)]][name]
        expected = first + sampling.evenly_spaced_clips(frames, 4, 1, 3).numpy()
        np.testing.assert_array_equal(frame_number(views.numpy()), expected)
        count += 1
    assert count == 6


def test_conversion_resizes_and_resamples(tmp_path):
    (tmp_path / "c").mkdir()
    frames = np.zeros((20, 24, 32, 3), np.uint8)
    kvid.io.write_video(str(tmp_path / "c" / "v.mp4"), frames, fps=20)
    summary = kvid.data.convert_directory(
        str(tmp_path), str(tmp_path / "out"), short_side=12, fps=10, verbose=False
    )
    jpegs, label, _ = tfrecord.parse_record(next(iter(tf.data.TFRecordDataset(summary.shards))))
    assert jpegs.shape == (10,) and int(label) == 0
    assert tf.io.decode_jpeg(jpegs[0]).shape == (12, 16, 3)


def test_stored_frames_are_resized_by_the_one_resize(tmp_path):
    (tmp_path / "c").mkdir()
    frames = np.random.default_rng(0).integers(0, 256, (3, 30, 40, 3), np.uint8)
    path = str(tmp_path / "c" / "v.mkv")
    kvid.io.write_video(path, frames, fps=10, codec="ffv1")
    summary = kvid.data.convert_directory(
        str(tmp_path), str(tmp_path / "out"), short_side=16, verbose=False
    )
    jpegs, _, _ = tfrecord.parse_record(next(iter(tf.data.TFRecordDataset(summary.shards))))
    decoded = kvid.io.read_video(path)
    resized = kvid.preprocessing.resize_to(decoded, (16, 22))
    expected = tf.cast(tf.round(tf.clip_by_value(resized, 0.0, 255.0)), tf.uint8)
    for jpeg, frame in zip(jpegs.numpy(), expected, strict=True):
        assert jpeg == tf.io.encode_jpeg(frame, quality=90).numpy()


def test_conversion_skips_bad_files_and_reports_them(tmp_path, caplog):
    (tmp_path / "c").mkdir()
    kvid.io.write_video(str(tmp_path / "c" / "v.mp4"), np.zeros((3, 8, 8, 3), np.uint8))
    (tmp_path / "c" / "broken.mp4").write_bytes(b"\x00" * 100)
    with caplog.at_level(logging.WARNING):
        summary = kvid.data.convert_directory(str(tmp_path), str(tmp_path / "out"), verbose=False)
    assert summary.written == 1
    assert [os.path.basename(p) for p, _ in summary.skipped] == ["broken.mp4"]
    assert any("broken.mp4" in r.getMessage() for r in caplog.records)
    with pytest.raises(kvid.io.VideoDecodeError, match="broken.mp4"):
        kvid.data.convert_directory(
            str(tmp_path), str(tmp_path / "out2"), on_error="raise", verbose=False
        )


def test_a_conversion_killed_part_way_leaves_no_shard_and_hidden_files_are_not_videos(
    video_dir, tmp_path
):
    output = tmp_path / "records"
    code = (
        "from kvid.data import tfrecord\n"
        f"tfrecord.convert_directory({video_dir!r}, {str(output)!r}, num_shards=2, verbose=False)"
    )
    # Killed after the shards' records were written, as the first of them was being renamed.
    env = processes.kill_in_write_env("videos-00001-of-00002.tfrecord")
    run = processes.run_python("-c", code, env=env, check=False)
    assert run.returncode == -signal.SIGKILL, run.stderr[-3000:]
    assert tf.io.gfile.glob(str(output / "*.tfrecord")) == []
    assert len([name for name in os.listdir(output) if atomic.is_partial(name)]) == 2
    # A rerun replaces the leftovers; a writer's hidden temporary video is not a video.
    (Path(video_dir) / "a" / ".partial-0-a3.mp4").write_bytes(b"\x00" * 100)
    try:
        summary = kvid.data.convert_directory(video_dir, str(output), num_shards=2, verbose=False)
    finally:
        os.remove(Path(video_dir) / "a" / ".partial-0-a3.mp4")
    assert summary.written == 6 and summary.skipped == []
    assert sorted(os.listdir(output)) == [
        "class_names.txt",
        "videos-00000-of-00002.tfrecord",
        "videos-00001-of-00002.tfrecord",
    ]
