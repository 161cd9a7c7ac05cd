import threading
import time

import numpy as np
import pytest
import tensorflow as tf

from kvid.io import decode, stream
from kvid.io.encode import write_video
from tests.data.conftest import frame_number, numbered_frames
from tests.data.test_decode import BAD_FILES, FORMATS, _bad_files


def _streamed(path, fps=None):
    return np.stack(list(stream.iter_frames(path, fps=fps)))


@pytest.mark.parametrize("extension,codec,pix_fmt", FORMATS)
def test_streamed_frames_are_the_whole_decoded_video(tmp_path, extension, codec, pix_fmt):
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (40, 32, 48, 3), dtype=np.uint8)
    path = write_video(
        str(tmp_path / f"v.{extension}"),
        frames,
        codec=codec,
        pix_fmt=pix_fmt,
        keyframe_interval=10,
    )
    np.testing.assert_array_equal(_streamed(path), decode.read_video(path))


@pytest.mark.parametrize("fps", [7.0, 15.0, 29.97, 60.0, 1.0])
def test_resampled_stream_matches_frame_positions(tmp_path, fps):
    path = write_video(str(tmp_path / "v.mp4"), numbered_frames(31), fps=30)
    info = decode.probe(path)
    expected = decode.frame_positions(info, fps=fps) % 32
    np.testing.assert_array_equal(frame_number(_streamed(path, fps)), expected)
    times = [t for t, _ in stream.iter_timed_frames(path, fps)]
    np.testing.assert_allclose(times, np.arange(len(expected)) / fps)


def _short_video(tmp_path, kind):
    """A tiny video of each kind the readers tell apart (at most 7 frames)."""
    if kind == "folder":
        folder = tmp_path / "frames"
        folder.mkdir()
        for i, frame in enumerate(numbered_frames(6, first=2)):
            (folder / f"{i:05d}.png").write_bytes(tf.io.encode_png(frame).numpy())
        return str(folder)
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (7, 24, 32, 3), dtype=np.uint8)
    if kind == "vfr":
        times = [0.0, 0.1, 0.15, 0.5, 0.55, 1.0, 1.02]
        return write_video(str(tmp_path / "vfr.mkv"), frames, codec="ffv1", times=times)
    if kind == "raw":  # no timestamps: frames numbered at the nominal rate
        return write_video(str(tmp_path / "raw.h264"), frames, keyframe_interval=3)
    if kind == "one":  # one frame: its duration is the nominal rate's
        return write_video(str(tmp_path / "one.webm"), frames[:1], codec="libvpx-vp9", fps=12)
    return write_video(str(tmp_path / "v.mp4"), frames, fps=30, keyframe_interval=3)


@pytest.mark.parametrize("fps", [None, 7.0, 29.97, 60.0, 1.0])
@pytest.mark.parametrize("kind", ["mp4", "vfr", "raw", "one", "folder"])
def test_streamed_frames_and_times_are_the_whole_file_decodes(tmp_path, kind, fps):
    # One resampling rule: the streamed reader yields the whole-file decode's frames
    # (pixels) at its times, to the last bit, for every kind of source.
    path = _short_video(tmp_path, kind)
    info = decode.probe(path)
    times, positions = decode.timed_positions(info, fps)
    streamed = list(stream.iter_timed_frames(path, fps))
    np.testing.assert_array_equal([t for t, _ in streamed], times)
    np.testing.assert_array_equal(np.stack([f for _, f in streamed]), decode.read_video(path, fps))
    np.testing.assert_array_equal(decode.frame_positions(info, fps), positions)
    if fps is not None:
        np.testing.assert_array_equal(times, np.arange(len(times)) / fps)
        assert len(times) == max(1, int(np.ceil(info.duration * fps - 1e-6)))


def test_variable_frame_rate_stream(tmp_path):
    times = [0.0, 0.1, 0.15, 0.5, 0.55, 1.0]
    path = write_video(str(tmp_path / "vfr.mkv"), numbered_frames(6), times=times)
    streamed = list(stream.iter_timed_frames(path))
    np.testing.assert_allclose([t for t, _ in streamed], times, atol=1e-3)
    info = decode.probe(path)
    for fps in (10.0, 3.0):
        np.testing.assert_array_equal(
            frame_number(_streamed(path, fps)), decode.frame_positions(info, fps=fps)
        )


def test_frame_folder_stream(tmp_path):
    folder = tmp_path / "clip"
    folder.mkdir()
    for i, frame in enumerate(numbered_frames(5, first=3)):
        (folder / f"{i:05d}.png").write_bytes(tf.io.encode_png(frame).numpy())
    np.testing.assert_array_equal(frame_number(_streamed(str(folder)), first=3), range(5))
    assert stream.stream_info(str(folder)).num_frames == 5


def test_stream_info_reads_the_headers(tmp_path):
    path = write_video(str(tmp_path / "v.mp4"), numbered_frames(45), fps=15)
    info = stream.stream_info(path)
    assert info.duration == pytest.approx(3.0, abs=0.1)
    assert info.nominal_fps == pytest.approx(15.0)
    assert (info.height, info.width) == (24, 32)
    assert info.num_frames == 45


def test_bad_files_name_the_file(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video at all" * 100)
    with pytest.raises(decode.VideoDecodeError, match="bad.mp4"):
        list(stream.iter_frames(str(bad)))
    with pytest.raises(decode.VideoDecodeError, match="missing.mp4"):
        stream.stream_info(str(tmp_path / "missing.mp4"))
    with pytest.raises(ValueError, match="fps=0"):
        list(stream.iter_frames(str(bad), fps=0))


@pytest.mark.parametrize("kind", [kind for kind in BAD_FILES if kind != "zero"])
def test_a_bad_file_raises_one_error_on_every_path(tmp_path, kind):
    # One opening rule: probing, the header read and the streamed reader say the same.
    # (A video stream without frames has headers: only reading its frames fails.)
    path, _ = _bad_files(tmp_path)[kind]
    messages = set()
    for read in (decode.probe, stream.stream_info, lambda p: list(stream.iter_frames(p))):
        with pytest.raises(decode.VideoDecodeError) as raised:
            read(path)
        messages.add(str(raised.value))
    assert len(messages) == 1 and path in messages.pop()


def test_a_file_that_breaks_after_probing_raises_the_probes_error(tmp_path):
    path = write_video(str(tmp_path / "v.mp4"), numbered_frames(4))
    info = decode.probe(path)
    open(path, "wb").close()
    with pytest.raises(decode.VideoDecodeError) as decoding:
        decode.decode_frames(info, [0])
    with pytest.raises(decode.VideoDecodeError) as probing:
        decode.probe(path)
    expected = f"Cannot read video {path!r}: the file is empty."
    assert str(decoding.value) == str(probing.value) == expected


def test_prefetch_runs_ahead_by_at_most_depth_items():
    produced = []

    def items():
        for i in range(10):
            produced.append(i)
            yield i

    seen = []
    for item in stream.prefetch(items(), depth=2):
        time.sleep(0.02)
        # The producer is at most `depth` queued items plus the one it holds ahead.
        assert len(produced) <= item + 1 + 3
        seen.append(item)
    assert seen == list(range(10))


def test_prefetch_raises_the_producers_error_and_stops_it_when_left_early():
    def failing():
        yield 1
        raise RuntimeError("decoder broke")

    with pytest.raises(RuntimeError, match="decoder broke"):
        list(stream.prefetch(failing()))

    def endless():
        i = 0
        while True:
            yield i
            i += 1

    def prefetchers():
        # Only the prefetch's own threads: others' (TF, earlier tests) come and go.
        return [t for t in threading.enumerate() if t.name == "kvid-prefetch"]

    for item in stream.prefetch(endless()):
        assert prefetchers()
        if item == 3:
            break
    assert not prefetchers()
