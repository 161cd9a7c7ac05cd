"""Throughput of the video input pipelines: PyAV decoding vs TFRecords, one thread vs all cores.

Generates its own videos (320x240, 30 fps, H.264, a keyframe every 30 frames,
10 s each), converts them to TFRecords (short side 128, JPEG), and measures
augmented training clips per second (16 frames, frame step 2, scale jitter +
random 112x112 crop + horizontal flip), next to a plain Python loop decoding
the same clips with PyAV on one thread. Writes benchmarks/results/data_pipeline.json.

    PYTHONPATH=. python benchmarks/data_pipeline.py [--num_videos=16] [--clips=400]
"""

# kvid before TensorFlow: importing it turns oneDNN on (kvid/_onednn.py).
import kvid  # noqa: F401  # isort: skip

import json
import os
import platform
import tempfile
import threading
import time

import numpy as np
import tensorflow as tf
from absl import app, flags

import kvid.data as kd

_NUM_VIDEOS = flags.DEFINE_integer("num_videos", 16, "Benchmark videos to generate.")
_CLIPS = flags.DEFINE_integer("clips", 400, "Clips timed per measurement (after warm-up).")
_WORKDIR = flags.DEFINE_string("workdir", None, "Where videos go (default: a temporary dir).")
_OUTPUT = flags.DEFINE_string(
    "output",
    os.path.join(os.path.dirname(__file__), "results", "data_pipeline.json"),
    "Results file.",
)

NUM_FRAMES, FRAME_STEP, CROP, BATCH = 16, 2, 112, 8


def make_videos(root, count):
    """Writes `count` 10 s videos in two class folders: moving noise, so H.264 has work to do."""
    rng = np.random.default_rng(0)
    for i in range(count):
        folder = os.path.join(root, "videos", f"class_{i % 2}")
        os.makedirs(folder, exist_ok=True)
        base = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
        # Smooth the noise so the encoder sees image-like content, then pan it.
        base = ((base.astype(np.uint16) + np.roll(base, 1, 0) + np.roll(base, 1, 1)) // 3).astype(
            np.uint8
        )
        frames = np.stack([np.roll(base, (2 * t, 3 * t), (0, 1)) for t in range(300)])
        kd.write_video(os.path.join(folder, f"video_{i:03d}.mp4"), frames, 30, keyframe_interval=30)
    return os.path.join(root, "videos")


def clips_per_second(dataset, clips):
    """Clips per wall-clock second and per CPU-second of this process, after a warm-up batch.

    The CPU rate does not depend on how busy the machine's other users keep
    the cores: times the core count, it is what dedicated cores would give
    if the pipeline scales.
    """
    iterator = iter(dataset.repeat())
    next(iterator)
    start, cpu_start, seen = time.perf_counter(), time.process_time(), 0
    while seen < clips:
        seen += int(next(iterator)[0].shape[0])
    return seen / (time.perf_counter() - start), seen / (time.process_time() - cpu_start)


def single_thread(dataset):
    options = tf.data.Options()
    options.threading.private_threadpool_size = 1
    return dataset.with_options(options)


def python_decode_rate(directory, clips, threads=1):
    """Plain Python threads decoding the same clips with PyAV, no augmentation.

    With 2 threads this shows whether PyAV decodes on both cores (it releases
    the GIL while decoding a packet).
    """
    examples, _ = kd.index_directory(directory)
    probed = kd.sources.probe_examples(examples)

    def decode(worker):
        rng = np.random.default_rng(worker)
        for i in range(clips // threads):
            entry = probed[(i + worker) % len(probed)]
            first = rng.integers(0, len(entry.positions) - NUM_FRAMES * FRAME_STEP)
            span = entry.positions[first : first + NUM_FRAMES * FRAME_STEP]
            kd.decode_frames(entry.info, span[::FRAME_STEP])

    workers = [threading.Thread(target=decode, args=(k,)) for k in range(threads)]
    start, cpu_start = time.perf_counter(), time.process_time()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    done = clips // threads * threads
    return done / (time.perf_counter() - start), done / (time.process_time() - cpu_start)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    root = _WORKDIR.value or tempfile.mkdtemp(prefix="kvid_bench_")
    load_start = os.getloadavg()
    directory = make_videos(root, _NUM_VIDEOS.value)
    t0 = time.perf_counter()
    kd.convert_directory(directory, os.path.join(root, "tfrecords"), num_shards=4, short_side=128)
    convert_seconds = time.perf_counter() - t0
    common = dict(
        batch_size=BATCH, image_size=(CROP, CROP), seed=0, num_frames=NUM_FRAMES,
        frame_step=FRAME_STEP,
    )  # fmt: skip
    pyav = kd.video_dataset_from_directory(directory, **common)
    records = kd.video_dataset_from_tfrecords(
        os.path.join(root, "tfrecords", "*.tfrecord"), **common
    )
    clips = _CLIPS.value
    results = {
        "python_loop_pyav_decode_1_thread": python_decode_rate(directory, clips // 2),
        "python_loop_pyav_decode_2_threads": python_decode_rate(directory, clips // 2, threads=2),
        "pyav_tf_data_1_thread": clips_per_second(single_thread(pyav), clips // 2),
        "pyav_tf_data_all_cores": clips_per_second(pyav, clips),
        "pyav_tf_data_all_cores_frame_step_1": clips_per_second(
            kd.video_dataset_from_directory(directory, **{**common, "frame_step": 1}), clips
        ),
        "tfrecord_tf_data_1_thread": clips_per_second(single_thread(records), clips // 2),
        "tfrecord_tf_data_all_cores": clips_per_second(records, clips),
    }
    report = {
        "clips_per_second": {k: round(wall, 1) for k, (wall, _) in results.items()},
        "clips_per_cpu_second": {k: round(cpu, 1) for k, (_, cpu) in results.items()},
        # CPU-seconds per wall-second of this process: how many cores it actually got.
        "cores_used": {k: round(wall / cpu, 2) for k, (wall, cpu) in results.items()},
        "clip": f"{NUM_FRAMES}x{CROP}x{CROP}, frame_step {FRAME_STEP}, scale jitter + crop + flip",
        "videos": f"{_NUM_VIDEOS.value} x 10 s, 320x240, 30 fps, H.264, keyframe every 30 frames",
        "tfrecords": f"JPEG frames, short side 128, converted in {convert_seconds:.1f} s",
        "cores": os.cpu_count(),
        "load_average_1min_before_after": [round(load_start[0], 2), round(os.getloadavg()[0], 2)],
        "machine": platform.processor() or platform.machine(),
        "tensorflow": tf.__version__,
    }
    os.makedirs(os.path.dirname(_OUTPUT.value), exist_ok=True)
    with open(_OUTPUT.value, "w") as f:
        json.dump(report, f, indent=2)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    app.run(main)
