"""Distribution strategies: one device, several local devices, several workers.

Keras 3 up to 3.15 cannot `fit` under `MultiWorkerMirroredStrategy`
(keras-team/keras#20585): the symbolic build hands a per-replica batch to an
eager cross-worker `reduce`, and the per-step logs (scalars) are reduced along
axis 0. `patch_keras_multi_worker()` fixes both for the affected versions only.
"""

from __future__ import annotations

import functools
import json
import os

import keras
import tensorflow as tf

STRATEGIES = ("auto", "default", "mirrored", "multi_worker")

# The first Keras release that is not known to need the workaround; raise it
# only after checking the 2-worker test fails without the patch.
_FIXED_IN = (3, 16)


def _keras_version() -> tuple[int, int]:
    major, minor = keras.version().split(".")[:2]
    return int(major), int(minor)


def get_strategy(name: str = "auto") -> tf.distribute.Strategy:
    """Returns the distribution strategy called `name`.

    Args:
        name: `"default"` (one device), `"mirrored"` (every local device),
            `"multi_worker"` (the cluster described by the `TF_CONFIG`
            environment variable) or `"auto"`: multi-worker when `TF_CONFIG`
            lists more than one worker, mirrored when there are several local
            GPUs, otherwise the default strategy.

    Raises:
        ValueError: for an unknown `name`, or `"multi_worker"` without `TF_CONFIG`.
    """
    if name not in STRATEGIES:
        raise ValueError(f"`strategy` must be one of {STRATEGIES}. Received: strategy={name!r}")
    if name == "auto":
        if _num_workers() > 1:
            name = "multi_worker"
        elif len(tf.config.list_logical_devices("GPU")) > 1:
            name = "mirrored"
        else:
            name = "default"
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if "TF_CONFIG" not in os.environ:
        raise ValueError(
            "`strategy='multi_worker'` needs the cluster in the TF_CONFIG environment variable. "
            "Received: TF_CONFIG unset"
        )
    patch_keras_multi_worker()
    return tf.distribute.MultiWorkerMirroredStrategy()


def _num_workers() -> int:
    config = json.loads(os.environ.get("TF_CONFIG", "{}"))
    cluster = config.get("cluster", {})
    return len(cluster.get("worker", ())) + len(cluster.get("chief", ()))


def task_name() -> str:
    """This process's task in `TF_CONFIG`, e.g. `"worker_1"` (`"worker_0"` without a cluster)."""
    task = json.loads(os.environ.get("TF_CONFIG", "{}")).get("task", {})
    return f"{task.get('type', 'worker')}_{int(task.get('index', 0))}"


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes the shared outputs (checkpoints, exports, logs)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().as_dict():
        return True
    return resolver.task_type in ("chief", None) or (
        resolver.task_type == "worker"
        and resolver.task_id == 0
        and "chief" not in resolver.cluster_spec().as_dict()
    )


def is_multi_worker(strategy: tf.distribute.Strategy) -> bool:
    """Whether `strategy` spans several worker processes."""
    return (
        isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
        and strategy.extended._in_multi_worker_mode()
    )


@functools.cache
def patch_keras_multi_worker() -> bool:
    """Lets `Model.fit` run under `MultiWorkerMirroredStrategy` (keras#20585).

    Only Keras versions before `_FIXED_IN` are patched, and only the
    multi-worker path changes: the symbolic build uses this worker's first
    local batch (only its shapes matter), and scalar logs are averaged across
    workers element-wise instead of along an axis they do not have.

    Returns:
        Whether the patch was applied.
    """
    if _keras_version() >= _FIXED_IN:
        return False
    from keras.src.backend.tensorflow import trainer

    build = trainer.TensorFlowTrainer._maybe_symbolic_build
    reduce_per_replica = trainer.reduce_per_replica

    def first_local(value, strategy):
        if isinstance(value, tf.distribute.DistributedValues):
            return strategy.experimental_local_results(value)[0]
        return value

    def maybe_symbolic_build(self, iterator=None, data_batch=None):
        strategy = self.distribute_strategy
        if iterator is not None and is_multi_worker(strategy):
            for _, _, it in iterator:
                batch = next(it)
                data_batch = keras.tree.map_structure(lambda v: first_local(v, strategy), batch)
                break
            iterator = None
        return build(self, iterator=iterator, data_batch=data_batch)

    def reduce(values, strategy, reduction):
        if reduction in ("auto", "mean") and is_multi_worker(strategy):
            return keras.tree.map_structure(lambda v: strategy.reduce("MEAN", v, axis=None), values)
        return reduce_per_replica(values, strategy, reduction)

    trainer.TensorFlowTrainer._maybe_symbolic_build = maybe_symbolic_build
    trainer.reduce_per_replica = reduce
    return True
