"""Live sources (kvid.io.sources, kvid.live) fed from pipes, FIFOs and an HTTP server on 127.0.0.1.

Every source is a small MPEG-TS file's bytes (`kvid.io.encode.timed_chunks`),
so what the live path gives is checked against `kvid.inference.predict_video`
on a file of the same bytes.
"""

import http.server
import io
import os
import socketserver
import threading
import time

import av
import keras
import numpy as np
import pytest

import kvid
from kvid import live
from kvid.data import synthetic
from kvid.inference import predict_video, sliding_clips
from kvid.io import VideoDecodeError, sources, stream
from kvid.io.encode import timed_chunks, write_video

FPS = 10
NUM_FRAMES, STRIDE = 4, 2
NAMES = synthetic.CLASS_NAMES


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    return kvid.R3D18(alpha=1 / 16, input_shape=(NUM_FRAMES, 32, 32, 3), classes=len(NAMES))


@pytest.fixture(scope="module")
def feed(tmp_path_factory):
    """A 6 s, 10 fps, 32x32 MPEG-TS with a keyframe every 5 frames."""
    path = str(tmp_path_factory.mktemp("feed") / "feed.ts")
    return write_video(path, synthetic.make_clip(3, 0, 60, size=32), fps=FPS, keyframe_interval=5)


@pytest.fixture(scope="module")
def feed_clips(model, feed):
    """`predict_video`'s clips of the whole feed: `({start: probs}, timeline)`."""
    return _file_clips(model, feed)


def _file(path, data):
    with open(path, "wb") as f:
        f.write(data)
    return str(path)


def _pipe(data):
    """The read end of a pipe another thread writes `data` to, then closes."""
    read, write = os.pipe()

    def send():
        with os.fdopen(write, "wb") as f:
            f.write(data)

    threading.Thread(target=send, daemon=True).start()
    return os.fdopen(read, "rb")


def _file_clips(model, path):
    # One forward pass (one trace): the clips' probabilities do not depend on the batching.
    timeline = predict_video(model, path, class_names=NAMES, stride=STRIDE, batch_size=64)
    return dict(zip(timeline.starts.tolist(), timeline.probs, strict=True)), timeline


def _assert_equal_clips(results, expected, offset=0):
    for result in results:
        np.testing.assert_allclose(result.probs, expected[result.start_frame - offset], atol=1e-5)


def test_live_sources_are_urls_devices_pipes_and_file_objects(tmp_path, feed):
    os.mkfifo(tmp_path / "fifo")
    for source in ("-", "rtsp://camera/1", "http://127.0.0.1:8000/a.ts", str(tmp_path / "fifo")):
        assert sources.is_live_source(source), source
    assert sources.is_live_source(io.BytesIO(b""))
    assert sources.is_live_source("/dev/null")  # a character device, as /dev/video0
    for source in (feed, str(tmp_path), str(tmp_path / "missing.mp4")):
        assert not sources.is_live_source(source), source
    assert sources.is_network_source("rtsp://camera/1") and sources.is_network_source("srt://h:1")
    assert not sources.is_network_source("-") and not sources.is_network_source("file:///v.ts")


def test_live_sliding_clips_come_as_soon_as_their_last_frame_is_read():
    read = []

    def frames():
        for i in range(11):
            read.append(i)
            yield i / FPS, np.full((2, 2, 3), i, np.uint8)

    seen = [
        (int(batch.starts[0]), len(read))
        for batch in sliding_clips(
            frames(), np.float32, num_frames=4, stride=3, batch_size=1, workers=1, live=True
        )
    ]
    # Clip k ends with frame 3k + 3: it is yielded with nothing read after that frame.
    assert seen == [(0, 4), (3, 7), (6, 10)]


def test_clip_queue_drops_the_oldest_whole_clips_and_keeps_order():
    queue = live.ClipQueue(2)
    for clip in range(5):
        queue.put(clip)
    assert queue.take() == [3, 4] and queue.dropped == 3
    queue.put(5)
    queue.close()
    assert queue.take() == [5] and queue.take() is None

    waiting = live.ClipQueue(1, drop=False)
    waiting.put("a")
    put = threading.Thread(target=waiting.put, args=("b",))
    put.start()
    put.join(0.3)
    assert put.is_alive()  # no room: the decoder waits for the model
    assert waiting.take() == ["a"]
    put.join(5)
    assert waiting.take() == ["b"] and waiting.dropped == 0


def test_a_pipe_gives_the_clips_of_the_file_and_a_cut_one_what_it_had(
    tmp_path, model, feed, feed_clips
):
    expected, timeline = feed_clips
    with _pipe(open(feed, "rb").read()) as pipe:
        run = live.predict_stream(
            model,
            pipe,
            class_names=NAMES,
            stride=STRIDE,
            batch_size=1,
            drop_clips=False,
            format="mpegts",
        )
    assert [r.start_frame for r in run.results] == timeline.starts.tolist()
    _assert_equal_clips(run.results, expected)
    np.testing.assert_allclose(run.timeline.times, timeline.times, atol=1e-9)
    assert run.dropped == 0 and run.frames == 60 and run.faults.errors == []
    assert run.timeline.duration == pytest.approx(timeline.duration)

    # Cut after 40 frames' packets: the clips of a file of those bytes, and no error.
    chunks = timed_chunks(feed)
    cut = b"".join(chunk for _, chunk in chunks[:40])
    expected, timeline = _file_clips(model, _file(tmp_path / "cut.ts", cut))
    with _pipe(cut) as pipe:
        run = live.predict_stream(
            model, pipe, class_names=NAMES, stride=STRIDE, batch_size=1, drop_clips=False
        )
    assert [r.start_frame for r in run.results] == timeline.starts.tolist()
    assert len(run.results) >= 15 and run.faults.errors == []
    _assert_equal_clips(run.results, expected)


def test_an_overloaded_model_drops_whole_clips_in_order(monkeypatch, model, feed, feed_clips):
    pass_seconds = 0.2

    def slow(model):
        forward = kvid.inference.model_forward(model)

        def call(clips):
            time.sleep(pass_seconds)
            return forward(clips)

        return call

    monkeypatch.setattr(live, "model_forward", slow)
    expected, timeline = feed_clips
    # The whole stream at once: clips complete far faster than one per pass.
    with _pipe(open(feed, "rb").read()) as pipe:
        run = live.predict_stream(model, pipe, class_names=NAMES, stride=STRIDE, batch_size=2)
    starts = [r.start_frame for r in run.results]
    assert run.clips_cut == len(timeline.starts) == 29
    assert run.dropped >= 10 and len(starts) + run.dropped == run.clips_cut
    assert starts == sorted(set(starts)) and set(starts) <= set(timeline.starts.tolist())
    _assert_equal_clips(run.results, expected)  # whole clips: the file's probabilities
    # At most 2 clips wait: a result comes within the pass in progress and its own, not
    # after the 29 clips' 3 s of queued passes.
    assert max(r.latency for r in run.results) < 4 * pass_seconds + 0.5
    assert run.timeline.starts.tolist() == starts


def test_corrupt_packets_are_skipped_counted_and_the_stream_goes_on(tmp_path, model, feed):
    data = open(feed, "rb").read()
    packets = [data[i : i + 188] for i in range(0, len(data), 188)]
    video = [i for i, p in enumerate(packets) if ((p[1] & 0x1F) << 8 | p[2]) == 0x100]
    lost = {video[len(video) // 3], video[2 * len(video) // 3]}  # two TS packets
    damaged = _file(
        tmp_path / "damaged.ts", b"".join(p for i, p in enumerate(packets) if i not in lost)
    )
    # What the spec says, in PyAV: packets the demuxer flags are not decoded.
    flagged, decoded = 0, 0
    with av.open(damaged) as container:
        for packet in container.demux(video=0):
            flagged += packet.is_corrupt
            decoded += 0 if packet.is_corrupt else len(packet.decode())
    assert flagged >= 2 and decoded < 60
    with open(damaged, "rb") as f:
        run = live.predict_stream(
            model, f, class_names=NAMES, stride=STRIDE, batch_size=1, drop_clips=False
        )
    assert run.faults.corrupt_packets == flagged and run.frames == decoded
    # The clips run on past the damage, to the end of the stream.
    assert run.results[-1].start_frame == (decoded - NUM_FRAMES) // STRIDE * STRIDE


class _Feed(http.server.BaseHTTPRequestHandler):
    """First request: the first part, then nothing (a stall); second: the rest; then 404."""

    parts: list
    requests = 0

    def do_GET(self):
        type(self).requests += 1
        if self.requests > len(self.parts):
            self.send_error(404)
            return
        part, stall = self.parts[self.requests - 1]
        self.send_response(200)
        self.send_header("Content-Type", "video/mp2t")
        if not stall:
            self.send_header("Content-Length", str(len(part)))
        self.end_headers()
        self.wfile.write(part)
        self.wfile.flush()
        if stall:
            time.sleep(2)

    def log_message(self, *args):
        pass


def test_a_stalled_http_source_times_out_and_reconnects(tmp_path, model, feed):
    chunks = timed_chunks(feed)
    first, rest = (b"".join(c for _, c in part) for part in (chunks[:45], chunks[45:]))
    handler = type("Feed", (_Feed,), {"parts": [(first, True), (rest, False)], "requests": 0})
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/feed.ts"
    messages = []
    try:
        run = live.predict_stream(
            model,
            url,
            class_names=NAMES,
            stride=STRIDE,
            batch_size=1,
            drop_clips=False,
            timeout=0.5,
            reconnect_delay=0.05,
            report=messages.append,
        )
    finally:
        server.shutdown()
        server.server_close()
    assert run.faults.reconnects == 1 and handler.requests == 2
    (error,) = run.faults.errors
    assert error == f"Cannot read video {url!r}: TimeoutError: no data for 0.5 s"
    assert f"{error}; reconnecting (1 of 3)." in messages
    # Each connection is cut on its own, as a file of its bytes (the stalled one ends with the
    # frames its decoder held); the second's frames and times follow the first's.
    first_frames = list(stream.iter_timed_frames(_file(tmp_path / "first.ts", first)))
    expected_first, _ = _file_clips(model, str(tmp_path / "first.ts"))
    expected_rest, rest_timeline = _file_clips(model, _file(tmp_path / "rest.ts", rest))
    offset = len(first_frames)
    before = [r for r in run.results if r.start_frame < offset]
    after = [r for r in run.results if r.start_frame >= offset]
    assert [r.start_frame for r in before] == sorted(expected_first)
    assert [r.start_frame - offset for r in after] == rest_timeline.starts.tolist()
    _assert_equal_clips(before, expected_first)
    _assert_equal_clips(after, expected_rest, offset)
    resumed = first_frames[-1][0] + 1 / FPS
    np.testing.assert_allclose([r.time - resumed for r in after], rest_timeline.times, atol=1e-9)


def test_a_source_that_gives_nothing_fails_naming_itself_and_the_error(tmp_path, model):
    fifo = str(tmp_path / "camera.fifo")
    os.mkfifo(fifo)

    def silent_writer():
        with open(fifo, "wb"):
            time.sleep(1.5)

    threading.Thread(target=silent_writer, daemon=True).start()
    with pytest.raises(VideoDecodeError) as failed:
        live.predict_stream(model, fifo, class_names=NAMES, batch_size=1, timeout=0.3)
    assert str(failed.value) == (
        f"Nothing was classified from {fifo!r}: "
        f"Cannot read video {fifo!r}: TimeoutError: no data for 0.3 s"
    )
