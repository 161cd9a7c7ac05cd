"""Latency and sustained rate of `kvid-predict` on a live 25 fps 640x360 stream.

Writes a synthetic H.264 MPEG-TS (`kvid.io.encode.write_long_video`) and, for
each model (a randomly initialised 400-class `.keras` file: speed does not
depend on the weights), runs `kvid-predict --video=-` twice, feeding the
stream into its standard input (`kvid.io.encode.timed_chunks`):

- `paced`: at the stream's own pace, as a camera sends it, with clips dropped
  when the model lags: the latency of each result (kvid's own figure: from
  the decoder giving the clip's last frame to the result line) as median and
  95th percentile, and the clips classified and dropped;
- `flat out`: as fast as kvid reads it, with `--nodrop_clips`: every clip is
  classified, and the video frames per second is the fastest stream this
  model follows without dropping a clip (decoding, transform and model).

Times are wall-clock from the moment the child says it reads the source, so
TensorFlow's start-up and the model's loading are not in them. Writes
benchmarks/results/live.json and prints a table.

    .venv/bin/python -m benchmarks.live [--seconds=20] [--models=r3d_18,s3dg]
"""

from __future__ import annotations

import datetime
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import threading
import time

from absl import app, flags

import kvid  # noqa: F401  (before TensorFlow: it turns oneDNN's kernels on)
from benchmarks import tables

ROOT = pathlib.Path(__file__).resolve().parents[1]

_SECONDS = flags.DEFINE_float("seconds", 20.0, "Length of the paced stream, in seconds.")
_FLAT_OUT_SECONDS = flags.DEFINE_float("flat_out_seconds", 10.0, "Length of the unpaced one.")
_MODELS = flags.DEFINE_list("models", ["r3d_18", "s3dg"], "Registry keys to run.")
_FPS = flags.DEFINE_float("fps", 15.0, "Rate the stream is resampled to for the models.")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 1, "--batch_size of the paced runs.")
_HEIGHT = flags.DEFINE_integer("height", 360, "Frame height.")
_WIDTH = flags.DEFINE_integer("width", 640, "Frame width.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Where the stream and models go (default: temp).")
_OUTPUT = flags.DEFINE_string(
    "output", str(ROOT / "benchmarks" / "results" / "live.json"), "Results file."
)

STREAM_FPS = 25
# As benchmarks/long_video.py: S3D-G at the width `kvid-train` trains, torchvision's r3d_18.
MODELS = {"r3d_18": {}, "s3dg": {"alpha": 0.25}}


def machine() -> dict:
    """The CPU, its vector extensions, the cores and the load, as the tables print them."""
    cpu, flags_line = "", ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key.strip() == "model name" and not cpu:
                cpu = value.strip()
            if key.strip() == "flags" and not flags_line:
                flags_line = value
    present = set(flags_line.split())
    return {
        "cpu": cpu,
        "extensions": [name for name in ("avx2", "fma", "avx512f") if name in present],
        "cores": os.cpu_count(),
        "load_average_at_start": os.getloadavg(),
    }


def model_file(workdir: pathlib.Path, name: str) -> str:
    path = workdir / f"{name}.keras"
    if not path.exists():
        import kvid

        kvid.get_model(name, **MODELS[name]).save(path)
    return str(path)


def run(model_path: str, chunks, paced: bool) -> dict:
    """One `kvid-predict --video=-` fed `chunks`; its summary and the wall time it read for."""
    argv = [
        sys.executable,
        "-m",
        "apps.predict",
        "--video=-",
        f"--model_path={model_path}",
        f"--fps={_FPS.value}",
        f"--batch_size={_BATCH_SIZE.value if paced else 8}",
        f"--drop_clips={paced}",
    ]
    child = subprocess.Popen(
        argv,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=False,
    )
    ready = threading.Event()
    errors = []

    def watch():
        for line in child.stderr:
            errors.append(line.decode())
            if b" live: " in line:
                ready.set()

    threading.Thread(target=watch, daemon=True).start()
    ready.wait(300)
    start = time.monotonic()

    def feed():
        for seconds, chunk in chunks:
            if paced:
                time.sleep(max(0.0, start + seconds - time.monotonic()))
            child.stdin.write(chunk)
        child.stdin.close()

    threading.Thread(target=feed, daemon=True).start()
    summary = None
    for line in child.stdout:
        if line.startswith(b'{"summary"'):
            summary = json.loads(line)["summary"]
            wall = time.monotonic() - start
    if child.wait() or summary is None:
        raise RuntimeError(f"{' '.join(argv)} failed:\n{''.join(errors)[-3000:]}")
    return {**summary, "wall_seconds": round(wall, 2)}


def measure(workdir: pathlib.Path, name: str, paced_chunks, flat_chunks) -> dict:
    from kvid.models import get_preprocessing

    convention = get_preprocessing(name)
    path = model_file(workdir, name)
    paced = run(path, paced_chunks, paced=True)
    flat = run(path, flat_chunks, paced=False)
    video_frames = round(flat["duration"] * STREAM_FPS)
    return {
        "model": name,
        **MODELS[name],
        "clip": [convention.num_frames, *convention.crop_shape],
        "stride": convention.num_frames // 2,
        "batch_size": _BATCH_SIZE.value,
        "paced": {
            key: paced[key]
            for key in ("latency_median", "latency_p95", "clips", "clips_cut", "dropped")
        }
        | {"wall_seconds": paced["wall_seconds"], "stream_seconds": paced["duration"]},
        "flat_out": {
            "clips": flat["clips"],
            "dropped": flat["dropped"],
            "wall_seconds": flat["wall_seconds"],
            "video_frames_per_s": round(video_frames / flat["wall_seconds"], 1),
        },
    }


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    import av
    import keras
    import tensorflow as tf

    from kvid.io.encode import timed_chunks, write_long_video

    workdir = pathlib.Path(_WORKDIR.value or tempfile.mkdtemp(prefix="kvid_live_"))
    workdir.mkdir(parents=True, exist_ok=True)
    size = (_HEIGHT.value, _WIDTH.value)
    streams = {}
    for key, seconds in (("paced", _SECONDS.value), ("flat", _FLAT_OUT_SECONDS.value)):
        path = str(workdir / f"{key}_{size[1]}x{size[0]}.ts")
        write_long_video(path, seconds, *size, STREAM_FPS, segment_seconds=2)
        streams[key] = timed_chunks(path)
    report = {
        "date": datetime.date.today().isoformat(),
        "command": " ".join(["python -m benchmarks.live", *sys.argv[1:]]),
        "machine": machine(),
        "versions": {
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "av": av.__version__,
        },
        "stream": f"{size[1]}x{size[0]} H.264 MPEG-TS at {STREAM_FPS} fps, resampled to "
        f"{_FPS.value:g} fps; paced {_SECONDS.value:g} s at --batch_size={_BATCH_SIZE.value}, "
        f"flat out {_FLAT_OUT_SECONDS.value:g} s at --batch_size=8 --nodrop_clips",
        "results": [],
    }
    for name in _MODELS.value:
        result = measure(workdir, name, streams["paced"], streams["flat"])
        print(json.dumps(result), flush=True)
        report["results"].append(result)
        report["machine"]["load_average_at_end"] = os.getloadavg()
        output = pathlib.Path(_OUTPUT.value)
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(report, indent=1) + "\n")
    print(tables.live_markdown(report["results"]))


if __name__ == "__main__":
    app.run(main)
