import os

import numpy as np
import pytest
import tensorflow as tf

from kvid.io import decode
from kvid.io.encode import write_video
from tests.data.conftest import frame_number, numbered_frames

FORMATS = [
    ("mp4", "libx264", "yuv420p"),
    ("avi", "mpeg4", "yuv420p"),
    ("webm", "libvpx-vp9", "yuv420p"),
    ("mkv", "libx264", "yuv420p"),
    ("mkv", "ffv1", "yuv444p"),
]


@pytest.mark.parametrize("extension,codec,pix_fmt", FORMATS)
def test_every_container_decodes_the_wanted_frames(tmp_path, extension, codec, pix_fmt):
    path = write_video(
        str(tmp_path / f"v.{extension}"), numbered_frames(20), codec=codec, pix_fmt=pix_fmt
    )
    info = decode.probe(path)
    assert info.num_frames == 20
    assert info.fps == pytest.approx(30.0, rel=1e-3)
    frames = decode.decode_frames(info, [7, 3, 3, 19, 0])
    assert frames.dtype == np.uint8 and frames.shape == (5, 24, 32, 3)
    np.testing.assert_array_equal(frame_number(frames), [7, 3, 3, 19, 0])


def test_seeking_gives_the_same_frames_as_decoding_everything(tmp_path):
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (60, 32, 48, 3), dtype=np.uint8)
    path = write_video(str(tmp_path / "gop.mp4"), frames, keyframe_interval=10)
    info = decode.probe(path)
    everything = decode.read_video(path)
    assert everything.shape == (60, 32, 48, 3)
    wanted = [45, 46, 47, 33, 59, 12]
    np.testing.assert_array_equal(decode.decode_frames(info, wanted), everything[wanted])


def test_seek_decodes_only_from_the_keyframe(tmp_path, monkeypatch):
    path = write_video(str(tmp_path / "long.mp4"), numbered_frames(90), keyframe_interval=10)
    info = decode.probe(path)
    decoded = []
    original = decode._frames

    def counting(container, stream):
        for frame in original(container, stream):
            decoded.append(frame.pts)
            yield frame

    monkeypatch.setattr(decode, "_frames", counting)
    frames = decode.decode_frames(info, [71, 72, 73])
    # Frame values wrap every 32 frames (8 * i mod 256).
    np.testing.assert_array_equal(frame_number(frames), np.array([71, 72, 73]) % 32)
    import av

    with av.open(path) as container:
        keyframes = [p.pts for p in container.demux(video=0) if p.is_keyframe]
    seek_point = max(pts for pts in keyframes if pts <= info.pts[71])
    # From the keyframe before frame 71 to frame 73, and one more to know 73 is past.
    assert decoded[0] == seek_point
    assert (
        len(decoded)
        <= int(np.searchsorted(info.pts, info.pts[73]))
        - int(np.searchsorted(info.pts, seek_point))
        + 2
    )
    assert len(decoded) < 30


def test_variable_frame_rate_uses_timestamps(tmp_path):
    times = [0.0, 0.1, 0.15, 0.5, 0.55, 1.0]
    path = write_video(str(tmp_path / "vfr.mkv"), numbered_frames(6), times=times)
    info = decode.probe(path)
    np.testing.assert_allclose(info.times, times, atol=1e-3)
    # At 10 fps, frame k shows what is on screen at k / 10 s.
    positions = decode.frame_positions(info, fps=10.0)
    expected = [int(np.searchsorted(times, k / 10 + 1e-6, side="right")) - 1 for k in range(10)]
    np.testing.assert_array_equal(positions[:10], expected)
    np.testing.assert_array_equal(
        frame_number(decode.decode_frames(info, positions[:10])), expected
    )


def test_resampling_a_constant_rate_video(tmp_path):
    path = write_video(str(tmp_path / "v30.mp4"), numbered_frames(30), fps=30)
    info = decode.probe(path)
    np.testing.assert_array_equal(decode.frame_positions(info, fps=15.0), np.arange(0, 30, 2))
    np.testing.assert_array_equal(decode.frame_positions(info, fps=60.0)[:6], [0, 0, 1, 1, 2, 2])
    segment = decode.frame_positions(info, start=0.5, end=0.8)
    np.testing.assert_array_equal(segment, np.arange(15, 24))


def test_segment_outside_the_video_is_an_error(tmp_path):
    info = decode.probe(write_video(str(tmp_path / "s.mp4"), numbered_frames(10)))
    with pytest.raises(decode.VideoDecodeError, match="s.mp4.*segment"):
        decode.frame_positions(info, start=5.0, end=6.0)


def test_gray_and_alpha_sources_become_rgb(tmp_path):
    gray = write_video(
        str(tmp_path / "g.mkv"), numbered_frames(4, channels=1), codec="ffv1", pix_fmt="gray"
    )
    frames = decode.read_video(gray)
    assert frames.shape == (4, 24, 32, 3)
    np.testing.assert_array_equal(frames[:, 0, 0], np.repeat([[0], [8], [16], [24]], 3, axis=1))
    rgba = np.concatenate([numbered_frames(3, first=5), np.full((3, 24, 32, 1), 9, np.uint8)], -1)
    alpha = write_video(str(tmp_path / "a.mov"), rgba, codec="png", pix_fmt="rgba")
    np.testing.assert_array_equal(decode.read_video(alpha), rgba[..., :3])


def test_frame_folders(tmp_path):
    folder = tmp_path / "clip"
    folder.mkdir()
    frames = numbered_frames(5, first=3)
    for i, frame in enumerate(frames):
        encoder = tf.io.encode_png if i % 2 else tf.io.encode_jpeg
        (folder / f"{i:05d}.{'png' if i % 2 else 'jpg'}").write_bytes(encoder(frame).numpy())
    (folder / "notes.txt").write_text("not a frame")
    info = decode.probe(str(folder))
    assert info.num_frames == 5
    np.testing.assert_array_equal(
        frame_number(decode.decode_frames(info, [4, 0, 2]), first=3), [4, 0, 2]
    )


def _mux_silence(container):
    """Adds a mono audio stream of 0.1 s of silence to an open output container."""
    import av

    audio = container.add_stream("pcm_s16le", rate=8000)
    audio.layout = "mono"
    samples = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
    samples.sample_rate = 8000
    for packet in [*audio.encode(samples), *audio.encode()]:
        container.mux(packet)


def _zero_frame_video(path):
    """A video stream without a single frame (next to an audio stream that has samples)."""
    import av

    with av.open(path, "w") as container:
        video = container.add_stream("ffv1", rate=30)
        video.width, video.height = 32, 24
        _mux_silence(container)
    return path


def _audio_only(path):
    """A file with an audio stream and no video stream."""
    import av

    with av.open(path, "w") as container:
        _mux_silence(container)
    return path


def _bad_files(tmp_path):
    good = write_video(str(tmp_path / "good.mp4"), numbered_frames(30))
    data = open(good, "rb").read()
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "truncated.mp4").write_bytes(data[: len(data) // 2])
    (tmp_path / "text.mp4").write_text("this is not a video\n" * 50)
    os.symlink(str(tmp_path / "missing.mp4"), str(tmp_path / "unreadable.mp4"))
    return {
        "empty": (str(tmp_path / "empty.mp4"), "empty"),
        "truncated": (str(tmp_path / "truncated.mp4"), "Error"),
        "text": (str(tmp_path / "text.mp4"), "Error"),
        "zero": (_zero_frame_video(str(tmp_path / "zero.mkv")), "no video frames"),
        "unreadable": (str(tmp_path / "unreadable.mp4"), "Error"),
        "audio": (_audio_only(str(tmp_path / "audio.wav")), "no video stream"),
    }


BAD_FILES = ["empty", "truncated", "text", "zero", "unreadable", "audio"]


@pytest.mark.parametrize("kind", BAD_FILES)
def test_bad_files_raise_an_error_naming_the_file(tmp_path, kind):
    path, problem = _bad_files(tmp_path)[kind]
    with pytest.raises(decode.VideoDecodeError) as raised:
        decode.probe(path)
    message = str(raised.value)
    assert os.path.basename(path) in message and problem in message


def test_a_folder_without_frames_is_an_error(tmp_path):
    with pytest.raises(decode.VideoDecodeError, match="no frame images"):
        decode.probe(str(tmp_path))


def test_truncated_tail_keeps_the_frames_that_decode(tmp_path):
    # Matroska without its index still plays: frames past the cut repeat the last good one.
    path = write_video(str(tmp_path / "t.mkv"), numbered_frames(30), codec="ffv1")
    info = decode.probe(path)
    data = open(path, "rb").read()
    with open(path, "wb") as f:
        f.write(data[: len(data) * 2 // 3])
    frames = decode.decode_frames(info, [0, 5, 29])
    numbers = frame_number(frames)
    assert numbers[0] == 0 and numbers[1] == 5 and 5 < numbers[2] < 29


def test_streams_without_timestamps_are_numbered_and_decoded_from_the_start(tmp_path):
    path = write_video(str(tmp_path / "raw.h264"), numbered_frames(20))
    info = decode.probe(path)
    assert not info.timestamped and info.num_frames == 20
    np.testing.assert_array_equal(
        frame_number(decode.decode_frames(info, [15, 3, 19])), [15, 3, 19]
    )
