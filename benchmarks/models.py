"""Forward and training-step speed of kvid models, side by side with torchvision.

Run from the repository root, in an environment with kvid's dependencies (add
`torch==2.14.1 torchvision==0.29.1` to compare; never a kvid dependency):

    python benchmarks/models.py                      # every registered model
    python benchmarks/models.py --models=r3d_18,s3d --repeats=5
    python benchmarks/models.py --backend=jax        # + the forward pass under JAX (XLA)

Each model runs at its registry input (frames x crop x crop) for every batch
size, plus a training step (SGD with momentum, `--train_batch` clips of
`--train_frames` x 112 x 112). kvid and torchvision runs alternate, and the
medians after a warm-up are reported with their ratio. Results go to
`benchmarks/results/models.json`; a Markdown table is printed.
"""

from __future__ import annotations

# kvid before TensorFlow: importing it turns oneDNN on (kvid/_onednn.py).
import kvid  # isort: skip

import contextlib
import datetime
import importlib.util
import json
import os
import pathlib
import platform
import re
import subprocess
import sys
import time

import keras
import numpy as np
import tables  # noqa: E402  (benchmarks/tables.py, beside this script)
import tensorflow as tf
from absl import app, flags

from kvid.models import flops

_MODELS = flags.DEFINE_list("models", None, "Registry keys; default: all.")
_BATCHES = flags.DEFINE_list("batch_sizes", ["1", "8"], "Forward batch sizes.")
_FRAMES = flags.DEFINE_integer(
    "frames", None, "Frames per forward clip; default: the registry's clip length."
)
_REPEATS = flags.DEFINE_integer("repeats", 7, "Timed runs per measurement (median).")
_WARMUP = flags.DEFINE_integer("warmup", 2, "Untimed runs first.")
_ALPHA = flags.DEFINE_float(
    "alpha", None, "Width multiplier; default: full width. torchvision has none: no torch column."
)
_TRAIN_BATCH = flags.DEFINE_integer("train_batch", 4, "Clips per training step.")
_TRAIN_FRAMES = flags.DEFINE_integer("train_frames", 8, "Frames per training clip (112x112).")
_BACKEND = flags.DEFINE_enum(
    "backend",
    "tensorflow",
    ["tensorflow", "jax"],
    "jax: also time each kvid forward pass under KERAS_BACKEND=jax (jitted, XLA) in a worker.",
)
_OUTPUT = flags.DEFINE_string(
    "output", "benchmarks/results/models.json", "Where the JSON results are written."
)
_TORCH_PYTHON = flags.DEFINE_string(
    "torch_python",
    None,
    "A Python with torch and torchvision for the comparison (e.g. a separate venv's "
    "bin/python); default: this one, if it has them.",
)
_ISA = flags.DEFINE_string(
    "isa",
    None,
    "A note on the instruction set, recorded with what oneDNN and torch report (e.g. "
    "'AVX-512 capped to AVX2 with ONEDNN_MAX_CPU_ISA').",
)

# kvid registry key -> torchvision.models.video builder with the same network.
TORCHVISION = {"r3d_18": "r3d_18", "mc3_18": "mc3_18", "r2plus1d_18": "r2plus1d_18", "s3d": "s3d"}
ROOT = pathlib.Path(__file__).resolve().parents[1]
# torchvision's s3d head needs clips of 13 frames or more.
MIN_TRAIN_FRAMES = {"s3d": 16}


def median_seconds(run, repeats, warmup):
    """Median wall time of `run()` over `repeats` calls after `warmup` calls."""
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def timed(run):
    """Seconds `run()` took: what it returns if it timed itself (a worker), else wall time."""
    start = time.perf_counter()
    seconds = run()
    return seconds if isinstance(seconds, float) else time.perf_counter() - start


def alternate(runs, repeats, warmup):
    """Times several callables in turn, so machine noise hits them alike."""
    for run in runs:
        for _ in range(warmup):
            run()
    times = [[timed(run) for run in runs] for _ in range(repeats)]
    return [float(np.median(column)) for column in zip(*times, strict=True)]


def matmul_peak_gflops():
    """The float32 matmul rate of this machine through TensorFlow, GFLOP/s."""
    a = tf.random.uniform((2048, 2048))
    matmul = tf.function(lambda a: tf.linalg.matmul(a, a))
    seconds = median_seconds(lambda: matmul(a).numpy(), repeats=10, warmup=3)
    return 2 * 2048**3 / seconds / 1e9


def width():
    """The `alpha` argument of every kvid build, if `--alpha` is set."""
    return {} if _ALPHA.value is None else {"alpha": _ALPHA.value}


def kvid_runs(key, clip, batch, train_clip):
    """Callables for a kvid forward and training step."""
    model = kvid.get_model(key, **width())
    forward = tf.function(lambda x: model(x, training=False))
    x = tf.random.uniform((batch, *clip))
    trainer = kvid.get_model(key, classifier_activation=None, **width())
    trainer.compile(
        optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    xt = np.random.rand(_TRAIN_BATCH.value, *train_clip).astype("float32")
    yt = np.arange(_TRAIN_BATCH.value) % 400

    def forward_run():
        forward(x).numpy()

    def train_run():
        trainer.train_on_batch(xt, yt)

    return model, forward_run, train_run


def cpu_info():
    """The CPU, its vector extensions, and the ISA oneDNN dispatches to (from its own log)."""
    flags_line = model = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key.strip() == "model name" and not model:
                model = value.strip()
            if key.strip() == "flags" and not flags_line:
                flags_line = value
    present = set(flags_line.split())
    extensions = [
        name
        for name in ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile")
        if name in present
    ]
    # oneDNN names the ISA it runs on in its verbose log; TensorFlow has no other way to ask.
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import kvid, tensorflow as tf; "
            "tf.nn.conv2d(tf.ones((1, 8, 8, 8)), tf.ones((3, 3, 8, 8)), 1, 'SAME').numpy()",
        ],
        env={**os.environ, "ONEDNN_VERBOSE": "1", "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    isa = re.search(r"onednn_verbose,[^\n]*,cpu,isa:([^\n]+)", probe.stdout)
    return {
        "cpu": model or platform.processor() or platform.machine(),
        "extensions": extensions,
        "onednn_isa": isa and isa.group(1).strip(),
        "onednn_max_cpu_isa": os.environ.get("ONEDNN_MAX_CPU_ISA"),
        "tf_enable_onednn_opts": os.environ.get("TF_ENABLE_ONEDNN_OPTS"),
        "note": _ISA.value,
    }


class TorchWorker:
    """A torchvision process (benchmarks/torch_worker.py) timing one model at a time."""

    def __init__(self, python):
        self.process = subprocess.Popen(
            [python, str(pathlib.Path(__file__).with_name("torch_worker.py"))],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.version = self.cpu_capability = None

    def ask(self, request):
        """Sends one request line and returns the worker's answer."""
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        return json.loads(self.process.stdout.readline())

    def runs(self, key, clip, batch, train_clip):
        """Callables timing the counterpart of `key`'s forward and training step."""
        answer = self.ask(
            {
                "build": TORCHVISION[key],
                "batch": batch,
                "clip": list(clip),
                "train_clip": list(train_clip),
                "train_batch": _TRAIN_BATCH.value,
            }
        )
        self.version, self.cpu_capability = answer["torch"], answer.get("cpu_capability")
        return tuple(
            lambda run=run: self.ask({"run": run})["seconds"] for run in ("forward", "train")
        )


class KerasWorker:
    """A kvid process on another Keras backend (benchmarks/keras_worker.py), forward only."""

    def __init__(self, backend):
        root = str(pathlib.Path(__file__).resolve().parents[1])
        path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
        self.process = subprocess.Popen(
            [sys.executable, str(pathlib.Path(__file__).with_name("keras_worker.py"))],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": path},
        )
        self.backend, self.version = backend, None

    ask = TorchWorker.ask

    def forward(self, key, clip, batch):
        """A callable timing `key`'s forward pass on this backend."""
        request = {"build": key, "batch": batch, "clip": list(clip), "kwargs": width()}
        self.version = self.ask(request)["version"]
        return lambda: self.ask({"run": "forward"})["seconds"]


def torch_worker():
    """A `TorchWorker`, or None where torch and torchvision are not installed."""
    if _TORCH_PYTHON.value:
        return TorchWorker(_TORCH_PYTHON.value)
    if importlib.util.find_spec("torch") is None or importlib.util.find_spec("torchvision") is None:
        return None
    return TorchWorker(sys.executable)


def benchmark(key, batches, peak, worker, keras_worker=None):
    """All measurements of one registered model."""
    spec = kvid.models.get_spec(key)
    pre = spec.preprocessing
    clip = (_FRAMES.value or pre.num_frames, pre.crop_size, pre.crop_size, 3)
    train_size = 112 if pre.crop_size <= 112 else pre.crop_size
    train_frames = max(_TRAIN_FRAMES.value, MIN_TRAIN_FRAMES.get(key, 1))
    train_clip = (train_frames, train_size, train_size, 3)
    result = {"model": key, "clip": list(clip), "train_clip": list(train_clip), "runs": []}
    for batch in batches:
        model, forward, train_step = kvid_runs(key, clip, batch, train_clip)
        gflops = batch * flops.count_flops(model, clip) / 1e9
        row = {"batch": batch, "gflops": gflops}
        torch_pair = (
            worker.runs(key, clip, batch, train_clip)
            if worker and key in TORCHVISION and not width()
            else None
        )
        runs = [forward] + ([torch_pair[0]] if torch_pair else [])
        if keras_worker:
            runs.append(keras_worker.forward(key, clip, batch))
        times = alternate(runs, _REPEATS.value, _WARMUP.value)
        if keras_worker:
            row[f"{keras_worker.backend}_forward_s"] = times.pop()
            row[f"{keras_worker.backend}_forward_ratio"] = (
                row[f"{keras_worker.backend}_forward_s"] / times[0]
            )
        row["kvid_forward_s"] = times[0]
        row["kvid_gflops_per_s"] = gflops / times[0]
        row["kvid_fraction_of_peak"] = gflops / times[0] / peak
        if torch_pair:
            row["torch_forward_s"] = times[1]
            row["forward_ratio"] = times[0] / times[1]
        if batch == batches[0]:
            runs = [train_step] + ([torch_pair[1]] if torch_pair else [])
            times = alternate(runs, max(3, _REPEATS.value // 2), _WARMUP.value)
            row["kvid_train_step_s"] = times[0]
            if torch_pair:
                row["torch_train_step_s"] = times[1]
                row["train_ratio"] = times[0] / times[1]
        result["runs"].append(row)
        print(json.dumps({"model": key, **row}), flush=True)
    return result


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    keys = _MODELS.value or kvid.models.list_models()
    batches = [int(b) for b in _BATCHES.value]
    load_at_start = os.getloadavg()
    cpu = cpu_info()
    print(f"CPU: {json.dumps(cpu)}; load average {load_at_start}", flush=True)
    peak = matmul_peak_gflops()
    print(f"float32 matmul peak: {peak:.0f} GFLOP/s", flush=True)
    worker = torch_worker()
    keras_worker = KerasWorker(_BACKEND.value) if _BACKEND.value != "tensorflow" else None
    results = []
    for key in keys:
        results.append(benchmark(key, batches, peak, worker, keras_worker))
        # Written after every model, so a run cut short keeps what it measured.
        report = {
            "date": datetime.date.today().isoformat(),
            "command": " ".join(["python", "benchmarks/models.py", *sys.argv[1:]]),
            "machine": {
                **cpu,
                "torch_cpu_capability": worker and worker.cpu_capability,
                "cores": os.cpu_count(),
                "load_average_at_start": load_at_start,
                "load_average_at_end": os.getloadavg(),
            },
            "versions": {
                "tensorflow": tf.__version__,
                "keras": keras.__version__,
                "torch": worker and worker.version,
                **({keras_worker.backend: keras_worker.version} if keras_worker else {}),
            },
            "matmul_peak_gflops": peak,
            "complete": len(results) == len(keys),
            "results": results,
        }
        output = pathlib.Path(_OUTPUT.value)
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(report, indent=1))
    print(tables.markdown(results))
    if keras_worker:
        print(tables.backend_markdown(results, keras_worker.backend))


if __name__ == "__main__":
    app.run(main)
