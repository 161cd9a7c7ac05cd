import csv
import io
import json

import keras
import numpy as np
import pytest
import tensorflow as tf

import kvid
from kvid import inference as prediction
from kvid import preprocessing as preprocessing_lib
from kvid.io import decode
from kvid.io.encode import write_video
from tests.data.conftest import frame_number, numbered_frames
from tests.export.test_saved_model import reference_inputs


def _numbered(count):
    """`(seconds, frame)` pairs of 2x2 frames whose value is 8 * their index."""
    return [(i / 10, frame) for i, frame in enumerate(numbered_frames(count, height=2, width=2))]


@pytest.fixture(autouse=True)
def _small_chunks(monkeypatch):
    # Three 2x2 frames per transform call, so chunks split clips in every way.
    monkeypatch.setattr(prediction, "TRANSFORM_PIXELS", 3 * 2 * 2)


def _cut(count, num_frames, stride, batch_size=2, workers=1):
    transformed = []

    def transform(frames):
        transformed.extend(frame_number(frames))
        return frames.astype(np.float32)

    batches = list(
        prediction.sliding_clips(
            _numbered(count),
            transform,
            num_frames=num_frames,
            stride=stride,
            batch_size=batch_size,
            workers=workers,
        )
    )
    return batches, transformed


@pytest.mark.parametrize(
    ("count", "num_frames", "stride", "starts"),
    [
        (12, 4, 2, [0, 2, 4, 6, 8]),
        (12, 4, 4, [0, 4, 8]),
        (13, 4, 6, [0, 6]),
        (12, 5, 3, [0, 3, 6]),
        (4, 4, 1, [0]),
    ],
)
@pytest.mark.parametrize("workers", [1, 3])
def test_sliding_clips_start_every_stride_while_a_clip_fits(
    count, num_frames, stride, starts, workers
):
    batches, transformed = _cut(count, num_frames, stride, workers=workers)
    assert [len(b.starts) for b in batches] == [2] * (len(starts) // 2) + [1] * (len(starts) % 2)
    np.testing.assert_array_equal(np.concatenate([b.starts for b in batches]), starts)
    clips = np.concatenate([b.clips for b in batches])
    for start, clip in zip(starts, clips, strict=True):
        np.testing.assert_array_equal(frame_number(clip), start + np.arange(num_frames))
    centres = np.concatenate([b.times for b in batches])
    np.testing.assert_allclose(centres, (np.asarray(starts) + (num_frames - 1) / 2) / 10)
    # Each needed frame is transformed once; frames between clips never are (the
    # start of a clip the video ends in may be).
    needed = {s + i for s in starts for i in range(num_frames)}
    assert sorted(transformed) == sorted(set(transformed))
    assert needed <= set(transformed) <= needed | set(range(starts[-1] + stride, count))
    assert batches[-1].frames_read == count


def test_a_video_shorter_than_a_clip_loops():
    batches, _ = _cut(3, 5, 2)
    assert len(batches) == 1
    np.testing.assert_array_equal(batches[0].starts, [0])
    np.testing.assert_array_equal(frame_number(batches[0].clips[0]), [0, 1, 2, 0, 1])
    np.testing.assert_allclose(batches[0].times, [0.1])


@pytest.mark.parametrize(
    ("count", "num_frames", "stride"), [(1, 4, 2), (2, 5, 1), (3, 8, 9), (6, 7, 3)]
)
def test_a_video_shorter_than_a_clip_gives_the_samplers_clip(count, num_frames, stride):
    # One short-video rule: the sliding window's clip is the evaluation samplers' clip.
    batches = list(
        prediction.sliding_clips(
            _numbered(count), np.asarray, num_frames=num_frames, stride=stride, batch_size=2
        )
    )
    assert len(batches) == 1 and len(batches[0].clips) == 1
    clip = frame_number(batches[0].clips[0])
    np.testing.assert_array_equal(clip, preprocessing_lib.sample_indices(count, num_frames))
    np.testing.assert_array_equal(clip, preprocessing_lib.multi_clip_indices(count, num_frames)[0])


@pytest.mark.parametrize("fps", [None, 12.0])
def test_a_short_videos_predicted_clip_is_its_evaluation_clip(tmp_path, fps):
    # The same video (5 frames, shorter than the clip) through the streamed prediction
    # path and the evaluation dataset (probe, resample, sample, decode) gives one clip.
    convention = kvid.Preprocessing(num_frames=8, crop_size=8, resize=10)
    (tmp_path / "a").mkdir()
    path = write_video(str(tmp_path / "a" / "short.mp4"), numbered_frames(5, first=3), fps=30)
    (batch,) = prediction.sliding_clips(
        kvid.io.iter_timed_frames(path, fps),
        lambda frames: preprocessing_lib.preprocess_frames(frames, convention).numpy(),
        num_frames=8,
        stride=4,
        batch_size=2,
    )
    dataset = kvid.data.video_evaluation_dataset(
        str(tmp_path), num_clips=1, num_frames=8, fps=fps, model=convention
    )
    ((views, _, _),) = list(dataset)
    np.testing.assert_array_equal(batch.clips, views.numpy())
    # And the whole-file decode, looped by the sampler: 5 frames, or 2 (1/6 s at 12 fps).
    frames = decode.read_video(path, fps)
    assert len(frames) == (5 if fps is None else 2)
    looped = frames[preprocessing_lib.sample_indices(len(frames), 8).numpy()]
    expected = preprocessing_lib.preprocess_frames(looped, convention).numpy()
    np.testing.assert_array_equal(batch.clips[0], expected)


def test_sliding_clips_rejects_bad_sizes():
    with pytest.raises(ValueError, match="stride=0"):
        list(
            prediction.sliding_clips(_numbered(4), np.float32, num_frames=2, stride=0, batch_size=1)
        )


@pytest.fixture(scope="module")
def tiny_model():
    keras.utils.set_random_seed(0)
    return kvid.R3D18(alpha=0.0625, classes=3, input_shape=(4, 32, 32, 3))


@pytest.fixture(scope="module")
def short_video(tmp_path_factory):
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (23, 40, 56, 3), dtype=np.uint8)
    # Smooth enough that H.264 keeps the frames apart, with a keyframe mid-way.
    frames = np.asarray(tf.image.resize(frames, (40, 56), "area"), np.uint8)
    path = tmp_path_factory.mktemp("videos") / "short.mp4"
    return write_video(str(path), frames, fps=25, keyframe_interval=10)


def reference_timeline(model, path, *, stride=None, stride_seconds=None, fps=None):
    """The timeline written out: the whole video decoded, clips cut, the transform by hand."""
    num_frames = model.inputs[0].shape[1]
    info = decode.probe(path)
    times, positions = decode.timed_positions(info, fps=fps)
    frames = decode.decode_frames(info, positions)
    if stride_seconds is not None:
        stride = round(stride_seconds * fps)
    stride = stride or num_frames // 2
    starts = np.arange(0, len(frames) - num_frames + 1, stride)
    clips = np.stack([frames[s : s + num_frames] for s in starts])
    convention = kvid.models.model_convention(model)
    probs = model.predict(reference_inputs(clips, convention), verbose=0)
    centres = (times[starts] + times[starts + num_frames - 1]) / 2
    return starts, centres, probs


@pytest.mark.parametrize(
    "options",
    [{}, {"stride": 3}, {"stride": 7, "fps": 12.0}, {"stride_seconds": 0.2, "fps": 40.0}],
)
def test_the_streamed_timeline_is_the_whole_videos_written_out(tiny_model, short_video, options):
    names = ("a", "b", "c")
    streamed = prediction.predict_video(
        tiny_model, short_video, class_names=names, batch_size=3, **options
    )
    starts, centres, probs = reference_timeline(tiny_model, short_video, **options)
    np.testing.assert_array_equal(streamed.starts, starts)
    np.testing.assert_allclose(streamed.times, centres, rtol=0, atol=1e-9)
    np.testing.assert_allclose(streamed.probs, probs, rtol=1e-4, atol=1e-5)
    assert len(streamed.starts) > 1 and streamed.class_names == names
    assert streamed.duration == pytest.approx(23 / 25)
    if "stride_seconds" in options:
        np.testing.assert_array_equal(np.diff(streamed.starts), 8)  # 0.2 s at 40 fps


def test_clips_are_what_the_exported_serving_graph_computes(tmp_path, short_video):
    keras.utils.set_random_seed(1)
    model = kvid.R3D18(alpha=0.0625, classes=3, input_shape=(4, None, None, 3))
    timeline = prediction.predict_video(model, short_video, class_names="abc", stride=5)
    assert kvid.models.get_preprocessing("r3d_18").crop_shape == (112, 112)
    export = kvid.export.export_saved_model(model, str(tmp_path / "export"), class_names="abc")
    serve = tf.saved_model.load(export).signatures["serving_default"]
    video = decode.read_video(short_video)
    for start, probs in zip(timeline.starts, timeline.probs, strict=True):
        served = serve(frames=tf.constant(video[None, start : start + 4]))["probabilities"]
        np.testing.assert_allclose(probs, served.numpy()[0], rtol=1e-5, atol=1e-6)


def test_timeline_as_json_and_csv(tmp_path, tiny_model, short_video):
    timeline = prediction.predict_video(tiny_model, short_video, class_names=("a", "b", "c"))
    data = json.loads(open(timeline.save(tmp_path / "t.json", k=2)).read())
    assert data["num_frames"] == 4 and data["stride"] == 2 and data["video"] == short_video
    assert [c["time"] for c in data["clips"]] == pytest.approx(timeline.times)
    first = data["clips"][0]["top"]
    best = np.argsort(-timeline.probs[0])[:2]
    assert [t["class"] for t in first] == [timeline.class_names[i] for i in best]
    assert [t["probability"] for t in first] == pytest.approx(timeline.probs[0][best])
    rows = list(csv.DictReader(io.StringIO(open(timeline.save(tmp_path / "t.csv")).read())))
    assert len(rows) == len(timeline.times)
    assert list(rows[0]) == ["time", "start_frame"] + [
        f"{c}_{r}" for r in (1, 2, 3) for c in ("class", "probability")
    ]
    assert float(rows[-1]["time"]) == pytest.approx(timeline.times[-1], abs=1e-3)
    with pytest.raises(ValueError, match="t.txt"):
        timeline.save(tmp_path / "t.txt")


def test_stride_in_frames_or_seconds_not_both(tiny_model, short_video):
    with pytest.raises(ValueError, match="stride=2, stride_seconds=1"):
        prediction.predict_video(
            tiny_model, short_video, class_names="abc", stride=2, stride_seconds=1
        )


def test_a_corpus_line_is_the_videos_record_as_json_or_csv():
    timeline = prediction.Timeline(
        times=np.array([0.5, 1.5]),
        probs=np.array([[0.2, 0.7, 0.1], [0.4, 0.5, 0.1]]),
        class_names=("a", "b", "c"),
        starts=np.array([0, 8]),
        video="v, 1.mp4",
    )
    record = timeline.record(k=2)
    # The mean over the clips, best first: b 0.6, a 0.3.
    assert [t["class"] for t in record["top"]] == ["b", "a"]
    np.testing.assert_allclose([t["probability"] for t in record["top"]], [0.6, 0.3])
    np.testing.assert_allclose(record["probabilities"], [0.3, 0.6, 0.1])
    assert "clips" not in record and len(timeline.record(k=2, clips=True)["clips"]) == 2
    assert json.loads(prediction.corpus_line(record, "out.jsonl")) == record
    header = prediction.corpus_header("out.csv", 2)
    assert header == "video,class_1,probability_1,class_2,probability_2"
    assert prediction.corpus_header("out.jsonl", 2) is None
    row = next(csv.reader([prediction.corpus_line(record, "out.csv")]))
    assert row[:2] == ["v, 1.mp4", "b"] and row[3] == "a"
    assert abs(float(row[2]) - 0.6) < 1e-12 and abs(float(row[4]) - 0.3) < 1e-12
    with pytest.raises(ValueError, match="out.txt"):
        prediction.corpus_line(record, "out.txt")
