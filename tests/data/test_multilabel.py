"""Several labels per video: annotation files, k-hot targets, segment labels, TFRecords."""

import numpy as np
import pytest
import tensorflow as tf

import kvid
from kvid.io.encode import write_video

from .conftest import frame_number, numbered_frames

CLASSES = ["c000", "c001", "c002"]
FPS = 10


@pytest.fixture(scope="module")
def charades(tmp_path_factory):
    """Two 3-second videos at 10 fps and a Charades-style CSV of their actions."""
    root = tmp_path_factory.mktemp("charades")
    write_video(str(root / "AAAAA.mp4"), numbered_frames(30), fps=FPS)
    write_video(str(root / "BBBBB.mp4"), numbered_frames(30), fps=FPS)
    (root / "train.csv").write_text(
        "id,subject,scene,actions,length\n"
        'AAAAA,s1,Kitchen,"c000 0.00 1.05;c002 1.95 3.00",3\n'
        "BBBBB,s2,Hall,c001 0.00 3.00,3\n"
    )
    return root


def test_charades_csv_gives_labels_and_segments(charades):
    examples, names = kvid.data.read_annotations(str(charades / "train.csv"), multi_label=True)
    assert names == ["c000", "c001", "c002"]
    assert [e.path for e in examples] == [str(charades / "AAAAA.mp4"), str(charades / "BBBBB.mp4")]
    assert [e.labels for e in examples] == [(0, 2), (1,)]
    assert examples[0].segments == ((0, 0.0, 1.05), (2, 1.95, 3.0))
    assert [e.label for e in examples] == [-1, -1]


def test_semicolon_labels_and_one_row_per_label_agree(tmp_path):
    (tmp_path / "joined.csv").write_text("path,labels\nv1.mp4,run;jump\nv2.mp4,sit\n")
    (tmp_path / "rows.csv").write_text("path,label\nv1.mp4,jump\nv2.mp4,sit\nv1.mp4,run\n")
    joined = kvid.data.read_annotations(str(tmp_path / "joined.csv"), multi_label=True)
    rows = kvid.data.read_annotations(str(tmp_path / "rows.csv"), multi_label=True)
    assert joined == rows
    assert joined[1] == ["jump", "run", "sit"]
    assert [e.labels for e in joined[0]] == [(0, 1), (2,)]


@pytest.mark.parametrize(
    ("text", "kwargs", "message"),
    [
        (
            "path,labels\nv1.mp4,run\nv2.mp4,run;fly\n",
            {},
            r"Unknown class 'fly' for 'v2.mp4'.*line 3",
        ),
        ("path,labels\nv1.mp4,run\nv2.mp4,\n", {}, r"line 3: 'v2.mp4' has an empty label list"),
        ("id,actions\nv1,c000 0 1\nv2,c000 zero 1\n", {}, r"line 3: action times.*'c000 zero 1'"),
        ("id,actions\nv1,c000 0\n", {}, r"line 2: an action must be"),
        ("path,labels\nv1.mp4,run;jump\n", {"multi_label": False}, r"line 2: 'v1.mp4' has 2"),
    ],
)
def test_bad_rows_name_file_line_and_value(tmp_path, text, kwargs, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    names = ["jump", "run"] if "labels" in text else None
    with pytest.raises(ValueError, match=message) as error:
        kvid.data.read_annotations(str(path), class_names=names, **{"multi_label": True, **kwargs})
    assert str(path) in str(error.value)


def test_empty_label_lists_can_be_skipped_and_counted(tmp_path, caplog):
    path = tmp_path / "some_empty.csv"
    path.write_text("path,labels\nv1.mp4,run\nv2.mp4,\nv3.mp4,\n")
    examples, _ = kvid.data.read_annotations(str(path), multi_label=True, empty_labels="skip")
    assert [e.labels for e in examples] == [(0,)]
    assert "Left out 2 of 3 videos" in caplog.text


def test_multi_hot_targets_per_video_and_per_clip_segments(charades):
    video = kvid.data.video_dataset_from_annotations(
        str(charades / "train.csv"), label_mode="multi_hot", batch_size=None, shuffle=False,
        training=False, num_frames=4, image_size=(8, 8),
    )  # fmt: skip
    assert video.element_spec[1] == tf.TensorSpec([3], tf.float32)
    assert [labels.numpy().tolist() for _, labels in video] == [[1, 0, 1], [0, 1, 0]]
    seen = set()
    # In order (file_paths' order); each seed samples other clips.
    for seed in range(6):
        segments = kvid.data.video_dataset_from_annotations(
            str(charades / "train.csv"), label_mode="multi_hot", batch_size=None, seed=seed,
            shuffle=False, clip_labels="segments", num_frames=4, frame_step=3, augment=False,
            image_size=(8, 8),
        )  # fmt: skip
        for path, (clip, labels) in zip(segments.file_paths, segments, strict=True):
            # Which frames the clip holds, read from their pixels: their times at 10 fps.
            times = frame_number(clip.numpy()[..., :1]) / FPS
            if path.endswith("AAAAA.mp4"):
                expected = [np.any(times <= 1.05), False, np.any(times >= 1.95)]
            else:
                expected = [False, True, False]
            assert labels.numpy().tolist() == [float(e) for e in expected], times
            seen.add(tuple(expected))
    assert len(seen) >= 3  # clips under one action, the other, and both


def test_single_label_modes_refuse_multi_label_examples(charades, tmp_path):
    with pytest.raises(ValueError, match='use label_mode="multi_hot"'):
        kvid.data.pipeline.example_targets(
            kvid.data.sources.probe_examples(
                kvid.data.read_annotations(str(charades / "train.csv"), multi_label=True)[0]
            ),
            "int",
            3,
        )
    with pytest.raises(ValueError, match="has 2 labels.*multi_label=True"):
        kvid.data.video_dataset_from_annotations(str(charades / "train.csv"), label_mode="int")
    (tmp_path / "one.csv").write_text(f"path,label\n{charades / 'BBBBB.mp4'},run\n")
    with pytest.raises(ValueError, match="clip_labels"):
        kvid.data.video_dataset_from_annotations(
            str(tmp_path / "one.csv"), label_mode="int", clip_labels="segments"
        )


def test_evaluation_views_carry_k_hot_labels(charades):
    ds = kvid.data.video_evaluation_dataset(
        str(charades / "train.csv"), num_clips=2, multi_label=True, num_frames=4, image_size=(8, 8)
    )
    assert ds.element_spec[1] == tf.TensorSpec([3], tf.float32)
    assert [label.numpy().tolist() for _, label, _ in ds] == [[1, 0, 1], [0, 1, 0]]


def test_tfrecords_store_label_lists_and_single_labels_read_as_before(charades, tmp_path):
    examples, names = kvid.data.read_annotations(str(charades / "train.csv"), multi_label=True)
    single = kvid.data.VideoExample(examples[1].path, label=2)
    kvid.data.write_tfrecords(examples, str(tmp_path / "multi"), names, num_shards=1, verbose=False)
    kvid.data.write_tfrecords([single], str(tmp_path / "one"), names, num_shards=1, verbose=False)
    options = dict(batch_size=None, training=False, num_frames=4, image_size=(8, 8))
    multi = kvid.data.video_dataset_from_tfrecords(
        str(tmp_path / "multi" / "*.tfrecord"), label_mode="multi_hot", **options
    )
    assert [labels.numpy().tolist() for _, labels in multi] == [[1, 0, 1], [0, 1, 0]]
    one = kvid.data.video_dataset_from_tfrecords(str(tmp_path / "one" / "*.tfrecord"), **options)
    assert [int(label) for _, label in one] == [2]
    hot = kvid.data.video_dataset_from_tfrecords(
        str(tmp_path / "one" / "*.tfrecord"), label_mode="multi_hot", **options
    )
    assert [labels.numpy().tolist() for _, labels in hot] == [[0, 0, 1]]
    views = kvid.data.tfrecord_evaluation_dataset(
        str(tmp_path / "multi" / "*.tfrecord"), num_clips=1, multi_label=True, num_frames=4,
        image_size=(8, 8),
    )  # fmt: skip
    assert [label.numpy().tolist() for _, label, _ in views] == [[1, 0, 1], [0, 1, 0]]
    with pytest.raises(tf.errors.InvalidArgumentError, match="several"):
        for _ in kvid.data.video_dataset_from_tfrecords(
            str(tmp_path / "multi" / "*.tfrecord"), **options
        ):
            pass
