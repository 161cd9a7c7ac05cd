"""Video-level evaluation decodes one clip at a time, however many clips a video has."""

import os

import numpy as np

import kvid
from kvid.data import pipeline
from kvid.io import decode
from kvid.io.encode import write_video
from tests.data.conftest import frame_number, numbered_frames


def test_evaluation_views_decode_one_clip_at_a_time(tmp_path, monkeypatch):
    os.makedirs(tmp_path / "a")
    path = write_video(str(tmp_path / "a" / "long.mp4"), numbered_frames(60), keyframe_interval=8)
    calls = []
    original = pipeline.decode_frames

    def recording(info, indices, *args, **kwargs):
        calls.append(len(indices))
        return original(info, indices, *args, **kwargs)

    monkeypatch.setattr(pipeline, "decode_frames", recording)
    ds = kvid.data.video_evaluation_dataset(
        str(tmp_path), num_clips=6, num_crops=3, num_frames=4, image_size=(8, 8)
    )
    ((views, label, video_id),) = list(ds)
    assert calls == [4] * 6  # six clips of 4 frames, never the 24 frames at once
    assert views.shape == (18, 4, 8, 8, 3) and int(label) == 0
    assert video_id.numpy().decode() == path
    # The views are those of decoding every clip at once, as before.
    info = decode.probe(path)
    indices = kvid.preprocessing.multi_clip_indices(60, 4, 1, "consecutive", 6).numpy()
    config = pipeline.ClipConfig(num_frames=4, image_size=(8, 8), augment=False)
    expected = pipeline.finish_eval_views(
        original(info, indices.reshape(-1)).reshape(6, 4, 24, 32, 3), config, 3
    )
    np.testing.assert_array_equal(views.numpy(), expected.numpy())
    np.testing.assert_array_equal(frame_number(views.numpy()[::3]) % 32, indices % 32)


def test_tfrecord_conversion_decodes_a_stretch_at_a_time(tmp_path, monkeypatch):
    from kvid.data import tfrecord
    from kvid.data.sources import VideoExample

    path = write_video(str(tmp_path / "v.mp4"), numbered_frames(30), keyframe_interval=8)
    example = VideoExample(path=path, label=0)
    whole = tfrecord.encode_video(example, short_side=16)
    calls = []
    original = tfrecord.decode_frames

    def recording(info, indices, *args, **kwargs):
        calls.append(len(indices))
        return original(info, indices, *args, **kwargs)

    monkeypatch.setattr(tfrecord, "decode_frames", recording)
    monkeypatch.setattr(tfrecord, "DECODE_STRETCH", 8)
    assert tfrecord.encode_video(example, short_side=16) == whole
    assert sorted(calls) == [6, 8, 8, 8]  # 30 frames by 8, each stretch resized as it comes
