"""Peak memory and speed of `kvid-predict` on long 1080p videos.

Writes synthetic 1920x1080 30 fps H.264 videos of the given lengths
(`kvid.io.encode.write_long_video`: a 2-second segment encoded once, its
packets repeated, so an hour is written in seconds), then runs each
measurement in a fresh process and reads that process's peak resident memory
(`ru_maxrss` from `os.wait4`):

- `decode`: the decode-only ceiling, every frame decoded and converted to
  RGB (`kvid.io.stream.iter_frames`), nothing else;
- `transform`: decoding plus the clip transform of the frames a model's
  clips need (`kvid.preprocessing.preprocess_frames`), no model;
- `predict`: `apps/predict.py` itself (the `kvid-predict` command) with a
  randomly initialised `.keras` model (speed does not depend on the weights).

Frames per second are frames of video (at its own 30 fps) per wall-clock
second, and per CPU-second of the process (less sensitive to other users of
the machine). Writes benchmarks/results/long_video.json and prints a table.

    PYTHONPATH=. python benchmarks/long_video.py [--minutes=1,10,60] [--workdir=/tmp/lv]
"""

import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import tables  # benchmarks/tables.py, beside this script
from absl import app, flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

_MINUTES = flags.DEFINE_list("minutes", ["1", "10", "60"], "Video lengths in minutes.")
_HEIGHT = flags.DEFINE_integer("height", 1080, "Frame height.")
_WIDTH = flags.DEFINE_integer("width", 1920, "Frame width.")
_RUNS = flags.DEFINE_list(
    "runs",
    [
        "1:decode",
        "1:transform:r3d_18",
        "1:predict:r3d_18",
        "1:predict:s3dg",
        "1:predict:r3d_18:30",
        "10:predict:r3d_18:30",
        "60:predict:r3d_18:30",
    ],
    "Measurements as minutes:mode[:model[:stride_seconds]]; mode is decode, transform or "
    "predict. Predictions default to a stride of half a clip; a longer stride makes long "
    "videos decode-bound (memory does not depend on it).",
)
_FPS = flags.DEFINE_float("fps", 15.0, "Rate videos are resampled to for the models.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Where videos and models go (default: temp).")
_OUTPUT = flags.DEFINE_string(
    "output", os.path.join(ROOT, "benchmarks", "results", "long_video.json"), "Results file."
)
_APPEND = flags.DEFINE_bool(
    "append", False, "Add to the results already in --output instead of replacing them."
)
_CHILD = flags.DEFINE_string("child", None, "Internal: run one measurement (JSON arguments).")

FPS = 30
# The models as `kvid-train` trains them by default (S3D-G at alpha 0.25) and torchvision's r3d_18.
MODELS = {"r3d_18": {}, "s3dg": {"alpha": 0.25}}


def model_file(workdir, name):
    """A randomly initialised 400-class `.keras` model of the registry's `name`."""
    path = os.path.join(workdir, f"{name}.keras")
    if not os.path.exists(path):
        import kvid

        kvid.get_model(name, **MODELS[name]).save(path)
    return path


def video_file(workdir, minutes):
    from kvid.io.encode import write_long_video

    path = os.path.join(workdir, f"video_{minutes}min_{_HEIGHT.value}p.mp4")
    if not os.path.exists(path):
        start = time.perf_counter()
        write_long_video(path, 60 * minutes, _HEIGHT.value, _WIDTH.value, FPS, segment_seconds=2)
        print(f"wrote {path} in {time.perf_counter() - start:.0f} s", flush=True)
    return path


def child(spec):
    """One measurement in this (fresh) process; prints its JSON result."""
    import numpy as np

    from kvid import inference as prediction
    from kvid import preprocessing as preprocessing_lib
    from kvid.io import stream
    from kvid.models import get_preprocessing

    frames = 0
    if spec["mode"] == "decode":
        for _ in stream.iter_frames(spec["video"]):
            frames += 1
    else:
        convention = get_preprocessing(spec["model"])
        stride = max(convention.num_frames // 2, 1)
        clips = prediction.sliding_clips(
            stream.iter_timed_frames(spec["video"], spec["fps"]),
            lambda x: np.asarray(preprocessing_lib.preprocess_frames(x, convention)),
            num_frames=convention.num_frames,
            stride=stride,
            batch_size=8,
            workers=2,
        )
        for batch in clips:
            frames = batch.frames_read
    print(json.dumps({"sampled_frames": frames}))


def run(workdir, minutes, mode, model=None, stride_seconds=None):
    video = video_file(workdir, minutes)
    if mode == "predict":
        argv = [
            sys.executable,
            "-m",
            "apps.predict",
            f"--video={video}",
            f"--model_path={model_file(workdir, model)}",
            f"--fps={_FPS.value}",
            "--progress=false",
        ]
        if stride_seconds:
            argv.append(f"--stride_seconds={stride_seconds}")
    else:
        spec = {"mode": mode, "video": video, "model": model, "fps": _FPS.value}
        argv = [sys.executable, os.path.abspath(__file__), f"--child={json.dumps(spec)}"]
    before = os.getloadavg()
    wall, cpu, peak = _timed(argv)
    video_frames = 60 * minutes * FPS
    return {
        "minutes": minutes,
        "resolution": f"{_WIDTH.value}x{_HEIGHT.value}",
        "mode": mode,
        "model": model,
        "fps": None if mode == "decode" else _FPS.value,
        "stride_seconds": stride_seconds,
        "seconds": round(wall, 1),
        "cpu_seconds": round(cpu, 1),
        "video_frames_per_s": round(video_frames / wall, 1),
        "video_frames_per_cpu_s": round(video_frames / cpu, 1),
        "peak_rss_mb": round(peak / 1024),
        "loadavg_before": before,
        "loadavg_after": os.getloadavg(),
    }


def _timed(argv):
    """Wall time, CPU time (user + system) and peak RSS in KiB of one child process."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(
            argv,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": ROOT},
            stdout=subprocess.DEVNULL,
            stderr=errors,
        )
        # wait4 gives this child's own peak memory (RUSAGE_CHILDREN would be the max of all).
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
        if os.waitstatus_to_exitcode(status):
            errors.seek(0)
            message = errors.read().decode(errors="replace")[-3000:]
            raise RuntimeError(f"{' '.join(argv)} failed:\n{message}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def write_report(results):
    report = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "tf_enable_onednn_opts": os.environ.get("TF_ENABLE_ONEDNN_OPTS"),
        "results": results,
    }
    os.makedirs(os.path.dirname(_OUTPUT.value), exist_ok=True)
    with open(_OUTPUT.value, "w") as f:
        json.dump(report, f, indent=1)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    if _CHILD.value:
        child(json.loads(_CHILD.value))
        return
    workdir = _WORKDIR.value or tempfile.mkdtemp(prefix="kvid_long_video_")
    os.makedirs(workdir, exist_ok=True)
    wanted = {int(m) for m in _MINUTES.value}
    results = []
    if _APPEND.value and os.path.exists(_OUTPUT.value):
        with open(_OUTPUT.value) as f:
            results = json.load(f)["results"]
    for entry in _RUNS.value:
        minutes, mode, *rest = entry.split(":")
        if int(minutes) not in wanted:
            continue
        model = rest[0] if rest else None
        stride = float(rest[1]) if len(rest) > 1 else None
        result = run(workdir, int(minutes), mode, model, stride)
        print(json.dumps(result), flush=True)
        results.append(result)
        # Written after every run: the long ones take a while.
        write_report(results)
    print(tables.long_video_markdown(results))


if __name__ == "__main__":
    app.run(main)
