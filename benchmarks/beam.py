"""Videos per second of dataset preparation and corpus prediction: one process, and Beam.

Writes a corpus of synthetic 10-second 320x240 25 fps H.264 videos, then times
each path end to end (Beam's runs include starting their worker processes):

- preparation: `kvid.data.tfrecord.convert_directory` (one process) and
  `kvid.beam.prepare_dataset` on DirectRunner with 1 and 2 worker processes
  (`multi_processing`), JPEG frames at short side 128;
- prediction: `kvid.inference.predict_corpus` and `kvid.beam.predict_corpus`,
  a 1/16-width R3D-18 on 8x112x112 clips, a clip every 8 frames.

At this size a Beam run's wall time is mostly its workers' start-up (each
imports TensorFlow): the figures bound the start-up, and the per-video cost
that scales is the one-process CPU time.

The one-process runs' CPU-seconds per video give the per-video cost behind the
Kinetics-400 estimate of docs/beam.md. Writes benchmarks/results/beam.json.

    .venv/bin/python -m benchmarks.beam [--videos=12]
"""

import json
import os
import platform
import resource
import sys
import tempfile
import time
from importlib import metadata

import numpy as np
from absl import app, flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

_VIDEOS = flags.DEFINE_integer("videos", 12, "Videos in the corpus.")
_OUTPUT = flags.DEFINE_string(
    "output", os.path.join(ROOT, "benchmarks", "results", "beam.json"), "The results file."
)
SECONDS, FPS, HEIGHT, WIDTH = 10, 25, 240, 320
KINETICS_TRAIN_VIDEOS = 240_000
DATAFLOW_WORKERS = (10, 50, 200)
CORES_PER_WORKER = 4  # n1-standard-4


def _cpu_seconds():
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return sum(u.ru_utime + u.ru_stime for u in usage)


def _timed(run):
    wall, cpu = time.perf_counter(), _cpu_seconds()
    run()
    return time.perf_counter() - wall, _cpu_seconds() - cpu


def _corpus(root, count):
    from kvid.io.encode import write_video

    rng = np.random.default_rng(0)
    for i in range(count):
        folder = os.path.join(root, f"class_{i % 2}")
        os.makedirs(folder, exist_ok=True)
        base = rng.integers(0, 256, (HEIGHT, WIDTH, 3))
        frames = np.stack([np.roll(base, 4 * t, axis=1) for t in range(SECONDS * FPS)])
        write_video(os.path.join(folder, f"v{i}.mp4"), frames.astype(np.uint8), fps=FPS)


def _cpu_model():
    with open("/proc/cpuinfo") as f:
        lines = f.read().splitlines()
    model = next((line.split(":", 1)[1].strip() for line in lines if "model name" in line), "")
    present = set(next((line for line in lines if line.startswith("flags")), "").split())
    return model or platform.processor(), [e for e in ("avx2", "avx512f") if e in present]


def main(argv):
    del argv
    import kvid  # it imports TensorFlow, with oneDNN on
    from kvid import beam, inference
    from kvid.data import sources, tfrecord

    count = _VIDEOS.value
    work = tempfile.mkdtemp(prefix="kvid-beam-bench-")
    root = os.path.join(work, "corpus")
    _corpus(root, count)
    model = kvid.R3D18(alpha=1 / 16, input_shape=(8, 112, 112, 3), classes=2)
    model_path = os.path.join(work, "model.keras")
    model.save(model_path)
    videos = sources.list_videos(root)

    def options(workers):
        return beam.pipeline_options(
            ["--direct_running_mode=multi_processing", f"--direct_num_workers={workers}"],
            runner="DirectRunner",
        )

    runs = {
        "prepare_one_process": lambda: tfrecord.convert_directory(
            root, os.path.join(work, "p0"), short_side=128, verbose=False
        ),
        "predict_one_process": lambda: inference.predict_corpus(
            videos, model_path, os.path.join(work, "p0.jsonl"), stride=8, progress=False
        ),
    }
    for workers in (1, 2):
        name = f"beam_{workers}_workers"
        runs[f"prepare_{name}"] = lambda w=workers, n=name: beam.prepare_dataset(
            root, os.path.join(work, f"p_{n}"), short_side=128, options=options(w)
        )
        runs[f"predict_{name}"] = lambda w=workers, n=name: beam.predict_corpus(
            root, model_path, os.path.join(work, f"q_{n}", "p.jsonl"), stride=8,
            options=options(w),
        )  # fmt: skip
    load = os.getloadavg()[0]
    timings = {name: _timed(run) for name, run in runs.items()}
    cpu, extensions = _cpu_model()
    per_video_cpu = {
        step: timings[f"{step}_one_process"][1] / count for step in ("prepare", "predict")
    }
    estimate = {
        step: {
            str(n): round(KINETICS_TRAIN_VIDEOS * seconds / (n * CORES_PER_WORKER) / 3600, 2)
            for n in DATAFLOW_WORKERS
        }
        for step, seconds in per_video_cpu.items()
    }
    report = {
        "videos_per_second": {k: round(count / wall, 2) for k, (wall, _) in timings.items()},
        "wall_seconds": {k: round(wall, 1) for k, (wall, _) in timings.items()},
        "cpu_seconds_per_video_one_process": {k: round(v, 3) for k, v in per_video_cpu.items()},
        "kinetics400_train_hours_on_n_workers": estimate,
        "estimate": f"{KINETICS_TRAIN_VIDEOS} videos x CPU-seconds per video / (N workers x "
        f"{CORES_PER_WORKER} cores)",
        "corpus": f"{count} x {SECONDS} s, {WIDTH}x{HEIGHT}, {FPS} fps, H.264",
        "model": "R3D-18 at 1/16 width, 8x112x112 clips, stride 8",
        "cpu": cpu,
        "extensions": extensions,
        "cores": os.cpu_count(),
        "load_average_1min_before": round(load, 2),
        "versions": {name: metadata.version(name) for name in ("tensorflow", "apache-beam")},
        "command": ".venv/bin/python -m benchmarks.beam",
    }
    os.makedirs(os.path.dirname(_OUTPUT.value), exist_ok=True)
    with open(_OUTPUT.value, "w") as f:
        json.dump(report, f, indent=2)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    app.run(main)
