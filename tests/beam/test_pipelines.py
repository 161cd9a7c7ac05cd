"""Beam pipelines on DirectRunner with 2 worker processes give the single-process answers.

Each pipeline runs once per module (its workers import TensorFlow); the tests read its output.
"""

import glob
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from kvid import beam, evaluation, inference
from kvid.data import pipeline, sources, tfrecord
from kvid.models import load_model, model_convention
from tests.beam.conftest import CLASSES, direct_options

NUM_SHARDS = 3


@pytest.fixture(scope="module")
def prepared(corpus, tmp_path_factory):
    root, _, _ = corpus
    folder = tmp_path_factory.mktemp("prepared")
    single = tfrecord.convert_directory(
        root, str(folder / "single"), num_shards=NUM_SHARDS, short_side=32, verbose=False
    )
    beamed = beam.prepare_dataset(
        root, str(folder / "beam"), num_shards=NUM_SHARDS, short_side=32, options=direct_options()
    )
    return single, beamed, folder


def _records(directory):
    """`{media_id: (label, decoded frames)}` of every record in a conversion's shards."""
    found = {}
    for serialized in tf.data.TFRecordDataset(sorted(glob.glob(f"{directory}/*.tfrecord"))):
        jpegs, label, media_id = tfrecord.parse_record(serialized)
        frames = np.stack([tf.io.decode_jpeg(jpeg).numpy() for jpeg in jpegs])
        assert media_id.numpy() not in found, "a video written twice"
        found[media_id.numpy().decode()] = (int(label), frames)
    return found


def test_shards_hold_exactly_the_single_process_examples(prepared, corpus):
    single, beamed, folder = prepared
    _, good, _ = corpus
    expected, written = _records(folder / "single"), _records(folder / "beam")
    assert sorted(written) == good
    for video, (label, frames) in expected.items():
        assert written[video][0] == label == CLASSES.index(os.path.basename(os.path.dirname(video)))
        np.testing.assert_array_equal(written[video][1], frames)
    (cut,) = [video for video in good if video.endswith("cut.mkv")]
    assert len(written[cut][1]) == 16  # the frames before the cut
    names = [os.path.basename(path) for path in beamed.shards]
    assert names == [os.path.basename(path) for path in single.shards]
    assert sorted(os.listdir(folder / "beam")) == sorted(
        [*names, "class_names.txt", "dead_letters.jsonl"]
    )
    assert beamed.written == single.written == len(good)


def test_video_dataset_from_tfrecords_reads_the_beam_shards(prepared):
    _, _, folder = prepared
    ds = tfrecord.video_dataset_from_tfrecords(
        str(folder / "beam" / "*.tfrecord"), batch_size=None, training=False, num_frames=4,
        image_size=(24, 24),
    )  # fmt: skip
    assert ds.class_names == CLASSES
    labels = sorted(int(label) for clip, label in ds)
    assert labels == [0, 0, 0, 1, 1]


def test_dead_letters_list_the_bad_files_with_their_errors(prepared, corpus):
    single, beamed, folder = prepared
    _, _, bad = corpus
    assert [path for path, _ in beamed.skipped] == bad
    assert [path for path, _ in sorted(single.skipped)] == bad
    for path, error in beamed.skipped:
        assert error.startswith(f"Cannot read video {path!r}")
    letters = [json.loads(line) for line in open(folder / "beam" / "dead_letters.jsonl")]
    assert {letter["step"] for letter in letters} == {"encode"}


def test_a_run_failed_partway_leaves_no_complete_looking_shard(corpus, tmp_path):
    root, _, _ = corpus
    with pytest.raises(Exception, match="Cannot read video"):
        beam.prepare_dataset(
            root, str(tmp_path), num_shards=2, on_error="raise", options=direct_options()
        )
    assert not glob.glob(str(tmp_path / "*.tfrecord"))
    assert not os.path.exists(tmp_path / "class_names.txt")


@pytest.fixture(scope="module")
def predicted(corpus, model_path, tmp_path_factory):
    root, good, _ = corpus
    folder = tmp_path_factory.mktemp("predicted")
    options = {"top_k": 2, "clips": True, "stride": 3, "batch_size": 3}
    single = inference.predict_corpus(
        sources.list_videos(root), model_path, str(folder / "single.jsonl"), progress=False,
        **options,
    )  # fmt: skip
    beamed = beam.predict_corpus(
        root, model_path, str(folder / "beam" / "p.jsonl"), options=direct_options(), **options
    )
    return single, beamed


def _lines(path):
    return {record["video"]: record for record in map(json.loads, open(path))}


def test_predictions_equal_the_single_process_ones(predicted, corpus):
    single, beamed = predicted
    _, good, bad = corpus
    expected, found = _lines(single.output), _lines(beamed.output)
    assert sorted(found) == sorted(expected) == good
    for video, record in expected.items():
        got = found[video]
        assert [t["class"] for t in got["top"]] == [t["class"] for t in record["top"]]
        np.testing.assert_allclose(got["probabilities"], record["probabilities"], atol=1e-5)
        assert len(got["clips"]) == len(record["clips"]) >= 1
        for clip, want in zip(got["clips"], record["clips"], strict=True):
            assert (clip["start_frame"], clip["time"]) == (want["start_frame"], want["time"])
            np.testing.assert_allclose(
                [t["probability"] for t in clip["top"]],
                [t["probability"] for t in want["top"]],
                atol=1e-5,
            )
    assert [path for path, _ in beamed.skipped] == [path for path, _ in sorted(single.skipped)]
    assert [path for path, _ in beamed.skipped] == bad
    assert beamed.written == len(good)


@pytest.fixture(scope="module")
def evaluated(corpus, model_path, tmp_path_factory):
    root, _, _ = corpus
    model = load_model(model_path)
    convention = model_convention(model)
    views = pipeline.video_evaluation_dataset(
        root, num_clips=2, num_crops=3, class_names=CLASSES, on_error="skip",
        num_frames=convention.num_frames, model=convention,
    )  # fmt: skip
    single = evaluation.evaluate(model, evaluation.view_batches(views, 4))
    beamed, skipped = beam.evaluate_corpus(
        model_path, root, str(tmp_path_factory.mktemp("evaluated")), num_clips=2, num_crops=3,
        batch_size=4, options=direct_options(),
    )  # fmt: skip
    return single, beamed, skipped


def test_evaluation_equals_the_single_process_one(evaluated, corpus):
    single, beamed, skipped = evaluated
    _, good, bad = corpus
    assert beamed.num_videos == len(good) and beamed.num_clips == len(good) * 2 * 3
    for field in ("clip_top1", "clip_top5", "video_top1", "video_top5", "num_clips"):
        assert getattr(beamed, field) == getattr(single, field), field
    np.testing.assert_array_equal(beamed.confusion, single.confusion)
    assert list(beamed.video_ids) == list(single.video_ids) == [v.encode() for v in good]
    np.testing.assert_allclose(beamed.video_probabilities, single.video_probabilities, atol=1e-5)
    assert beamed.class_names == tuple(CLASSES)
    assert [path for path, _ in skipped] == bad
