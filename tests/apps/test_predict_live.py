"""`kvid-predict --video=-` on a stream written into its standard input in real time."""

import json
import os
import signal
import subprocess
import sys
import threading
import time

import keras
import numpy as np
import pytest

import kvid
from kvid.data import synthetic
from kvid.inference import predict_video
from kvid.io import write_class_names, write_video
from kvid.io.encode import timed_chunks
from tests.apps import assert_quiet
from tests.processes import ROOT, kill

NUM_FRAMES, FRAMES, FPS = 4, 50, 10


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    folder = tmp_path_factory.mktemp("model")
    keras.utils.set_random_seed(0)
    model = kvid.R3D18(
        alpha=0.0625, classes=len(synthetic.CLASS_NAMES), input_shape=(NUM_FRAMES, 32, 32, 3)
    )
    model.save(folder / "best.keras")
    write_class_names(str(folder), synthetic.CLASS_NAMES)
    return folder / "best.keras"


def _predict(*args):
    return subprocess.Popen(
        [sys.executable, "-m", "apps.predict", *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": ROOT},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def _lines(stream, into, clock=None):
    """Collects a child's output lines (with the time each came, given a clock) in a thread."""

    def read():
        for line in stream:
            into.append((line.decode(), clock() if clock else None))

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread


def _wait(condition, seconds, child, messages, what):
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline or child.poll() is not None:
            kill(child)
            stderr = "".join(m for m, _ in messages)
            raise AssertionError(f"no {what} within {seconds} s: {stderr[-2000:]}")
        time.sleep(0.02)


def test_predict_prints_each_clip_while_the_pipe_is_written_and_saves_on_sigterm(
    tmp_path, model_path
):
    # Beside it (each start costs seconds): a stream with nothing to classify fails.
    failing = _predict("--video=-", f"--model_path={model_path}", "--format=mpegts")
    failed = []
    failure = threading.Thread(target=lambda: failed.extend(failing.communicate(b"not a video")))
    failure.start()
    video = write_video(
        str(tmp_path / "feed.ts"),
        synthetic.make_clip(2, 0, FRAMES, size=32),
        fps=FPS,
        keyframe_interval=5,
    )
    output = tmp_path / "timeline.json"
    # Every clip kept: FFmpeg's probe hands over the first 24 frames at once, a burst that
    # could otherwise drop clips the comparison below wants.
    child = _predict(
        "--video=-", f"--model_path={model_path}", f"--output={output}", "--nodrop_clips"
    )
    written = threading.Event()
    lines, messages = [], []
    readers = [_lines(child.stdout, lines, written.is_set), _lines(child.stderr, messages)]
    try:
        _wait(lambda: any("live" in m for m, _ in messages), 120, child, messages, "start")
        # The file's packets at their own pace; the pipe then stays open, as a stalled camera's.
        start = time.monotonic()
        for seconds, chunk in timed_chunks(video):
            time.sleep(max(0.0, start + seconds - time.monotonic()))
            child.stdin.write(chunk)
            child.stdin.flush()
        written.set()
        # Without more data the decoder holds the last few frames: clips up to frame 40 come.
        clip_36 = lambda: any('"start_frame": 36,' in line for line, _ in lines)  # noqa: E731
        _wait(clip_36, 30, child, messages, "clip 36")
        child.send_signal(signal.SIGTERM)
        child.wait(30)
        failure.join(120)
    finally:
        for process in (child, failing):
            if process.poll() is None:
                kill(process)
        for reader in readers:
            reader.join(10)
    # Nothing classified: exit status 1 and a message naming the source and the error.
    assert failing.returncode == 1
    message = failed[1].decode()
    assert_quiet(message)
    assert "kvid-predict: Nothing was classified from '-': Cannot read video '-':" in message
    stderr = "".join(m for m, _ in messages)
    assert child.returncode == 0, stderr[-3000:]
    assert_quiet(stderr)
    *clips, (last, _) = lines
    # The first results came while the stream was still being written.
    assert not clips[0][1], "the first result came only after the whole stream was written"
    summary = json.loads(last)["summary"]
    results = [json.loads(line) for line, _ in clips]
    assert summary["interrupted"] and summary["clips"] == len(results) >= 19
    assert summary["dropped"] == 0 and summary["timeline"] == str(output)
    # The same clips and probabilities as the file gives, for every clip classified.
    model = keras.saving.load_model(model_path)
    timeline = predict_video(model, video, class_names=synthetic.CLASS_NAMES)
    expected = dict(zip(timeline.starts.tolist(), timeline.clip_top(), strict=True))
    starts = [r["start_frame"] for r in results]
    assert starts == timeline.starts.tolist()[: len(starts)]
    for result in results:
        names, probabilities = zip(*expected[result["start_frame"]], strict=True)
        assert [t["class"] for t in result["top"]] == list(names)
        np.testing.assert_allclose(
            [t["probability"] for t in result["top"]], probabilities, atol=1e-5
        )
    # The timeline file, written whole on SIGTERM, holds every clip printed.
    saved = json.loads(output.read_text())
    assert [c["start_frame"] for c in saved["clips"]] == starts
    assert [c["top"] for c in saved["clips"]] == [r["top"] for r in results]
    assert f"{len(results)} clips classified, 0 dropped" in stderr
