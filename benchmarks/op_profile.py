"""Where a kvid model's time goes: a TensorFlow profiler trace, summed per op and per layer.

    PYTHONPATH=. python benchmarks/op_profile.py --model=r3d_18 --mode=train
    PYTHONPATH=. python benchmarks/op_profile.py --model=mc3_18 --mode=forward --batch=1 --frames=16

Traces `--steps` forward passes (inference mode, a plain `tf.function`) or SGD
training steps (`train_on_batch`) after a warm-up and prints, per step, the
time of each op type and of each convolution layer's forward, input-gradient
and filter-gradient kernels. Op times overlap when TensorFlow runs independent
ops at once, so they can add up to more than the wall time. The raw trace is
kept under `--logdir` for TensorBoard's profile plugin.
"""

# kvid before TensorFlow: importing it turns oneDNN on (kvid/_onednn.py).
import kvid  # isort: skip

import collections
import pathlib
import re
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf
from absl import app, flags
from tensorflow.tsl.profiler.protobuf import xplane_pb2

_MODEL = flags.DEFINE_string("model", "r3d_18", "Registry key.")
_ALPHA = flags.DEFINE_float("alpha", None, "Width multiplier (the main job: s3dg at 0.25).")
_MODE = flags.DEFINE_enum("mode", "train", ["train", "forward"], "What to trace.")
_BATCH = flags.DEFINE_integer("batch", 4, "Clips per step.")
_FRAMES = flags.DEFINE_integer("frames", 8, "Frames per clip.")
_SIZE = flags.DEFINE_integer("size", 112, "Frame height and width.")
_STEPS = flags.DEFINE_integer("steps", 2, "Traced steps (after two untraced ones).")
_TOP = flags.DEFINE_integer("top", 12, "Op types listed.")
_LOGDIR = flags.DEFINE_string("logdir", None, "Where the trace goes (default: a temporary dir).")

# Op events are named "op/name:OpType"; executor spans ("ExecutorState::Process") are not.
OP_EVENT = re.compile(r"(?P<name>[\w/.-]+):(?P<type>\w+)")
# Convolution kernels as oneDNN-enabled TensorFlow names them, by role.
CONV_ROLES = {
    "Conv3D": "forward",
    "FusedConv3D": "forward",
    "Conv3DBackpropInputV2": "input grad",
    "Conv3DBackpropFilterV2": "filter grad",
}


def step_function(model, clips):
    """A callable running one forward pass or training step of `model` on `clips`."""
    if _MODE.value == "forward":
        forward = tf.function(lambda x: model(x, training=False))
        return lambda: forward(clips).numpy()
    model.compile(
        optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    labels = np.arange(len(clips)) % model.output_shape[-1]
    return lambda: model.train_on_batch(clips, labels)


def op_events(logdir):
    """`(op name, op type, seconds)` for every op the trace recorded."""
    (path,) = pathlib.Path(logdir).rglob("*.xplane.pb")
    space = xplane_pb2.XSpace.FromString(path.read_bytes())
    for plane in space.planes:
        for line in plane.lines:
            for event in line.events:
                op = OP_EVENT.fullmatch(plane.event_metadata[event.metadata_id].name)
                if op:  # the other events are executor and function spans
                    yield op["name"], op["type"], event.duration_ps / 1e12


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    kwargs = {} if _ALPHA.value is None else {"alpha": _ALPHA.value}
    model = kvid.get_model(_MODEL.value, classifier_activation=None, **kwargs)
    shape = (_BATCH.value, _FRAMES.value, _SIZE.value, _SIZE.value, 3)
    run = step_function(model, np.random.default_rng(0).random(shape, "float32"))
    run(), run()
    logdir = _LOGDIR.value or tempfile.mkdtemp(prefix="kvid_profile_")
    start = time.perf_counter()
    tf.profiler.experimental.start(logdir)
    for _ in range(_STEPS.value):
        run()
    tf.profiler.experimental.stop()
    wall = (time.perf_counter() - start) / _STEPS.value

    per_type, per_conv = collections.Counter(), collections.defaultdict(collections.Counter)
    for op, op_type, seconds in op_events(logdir):
        op_type = op_type.removeprefix("_MklNative").removeprefix("_Mkl")
        per_type[op_type] += seconds / _STEPS.value
        if op_type in CONV_ROLES:
            layer = re.search(rf"{model.name}_\d+/(\w+?)_\d+/convolution", op)
            per_conv[layer.group(1) if layer else op][CONV_ROLES[op_type]] += seconds / _STEPS.value

    print(f"{_MODEL.value} {_MODE.value} {shape}: {wall:.3f} s per step (wall, while tracing)")
    print("\nseconds per step by op type")
    for op_type, seconds in per_type.most_common(_TOP.value):
        print(f"  {seconds:8.4f}  {op_type}")
    print("\nconvolution ms per step:", " / ".join(dict.fromkeys(CONV_ROLES.values())))
    for layer, roles in per_conv.items():
        times = " ".join(f"{1000 * roles[r]:7.1f}" for r in dict.fromkeys(CONV_ROLES.values()))
        print(f"  {layer:32s} {times}")
    print(f"\ntrace: {logdir}")


if __name__ == "__main__":
    app.run(main)
