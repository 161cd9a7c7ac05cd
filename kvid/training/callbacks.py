"""The callbacks every training run gets, and where each worker writes."""

from __future__ import annotations

import os
import time

import keras
import numpy as np
import tensorflow as tf

from kvid.training import strategy as strategy_lib

BEST_MODEL = "best.keras"
TRAINING_LOG = "training_log.csv"


def worker_dir(work_dir: str | os.PathLike, strategy: tf.distribute.Strategy | None = None) -> str:
    """Where this process writes: `work_dir` on the chief, a private folder on other workers.

    Every worker of a multi-worker run must save (saving may synchronise), but
    only the chief's files are the run's results.
    """
    work_dir = os.fspath(work_dir)
    if strategy is None or strategy_lib.is_chief(strategy):
        return work_dir
    return os.path.join(work_dir, "workers", strategy_lib.task_name())


def default_callbacks(
    work_dir: str | os.PathLike,
    *,
    strategy: tf.distribute.Strategy | None = None,
    monitor: str = "val_accuracy",
    tensorboard: bool = True,
) -> list[keras.callbacks.Callback]:
    """Checkpoint-and-resume, best-model checkpoint, CSV log and TensorBoard.

    Under a multi-worker strategy, `SyncMovingStatistics` runs first so every
    worker saves the same model. `BackupAndRestore` comes next so a killed run
    restarted with the same `work_dir` resumes from the last finished epoch;
    each worker keeps its own backup directory.

    Args:
        work_dir: the run's directory.
        strategy: the distribution strategy (decides where each worker writes).
        monitor: the logged metric the best checkpoint is chosen by (higher is better).
        tensorboard: whether to write TensorBoard logs under `work_dir/logs`.

    Returns:
        The callbacks, to pass to `Model.fit`.
    """
    out = worker_dir(work_dir, strategy)
    callbacks = []
    if strategy is not None and strategy_lib.is_multi_worker(strategy):
        callbacks.append(SyncMovingStatistics(strategy))
    backup = os.path.join(work_dir, "backup", strategy_lib.task_name())
    callbacks += [
        keras.callbacks.BackupAndRestore(backup),
        keras.callbacks.ModelCheckpoint(
            os.path.join(out, BEST_MODEL), monitor=monitor, mode="max", save_best_only=True
        ),
        keras.callbacks.CSVLogger(os.path.join(out, TRAINING_LOG), append=True),
    ]
    if tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(os.path.join(out, "logs")))
    return callbacks


class TimeBudget(keras.callbacks.Callback):
    """Stops training after the epoch that would make the next one overrun `seconds`.

    Args:
        seconds: the wall-clock budget for `fit`, counted from `on_train_begin`.
        clock: returns the current time in seconds.
    """

    def __init__(self, seconds: float, clock=time.monotonic):
        super().__init__()
        self.seconds = float(seconds)
        self.clock = clock

    def on_train_begin(self, logs=None):
        """Starts the clock."""
        self._start = self.clock()
        self._epochs = 0

    def on_epoch_end(self, epoch, logs=None):
        """Stops when the mean epoch so far would not fit in the time left."""
        self._epochs += 1
        elapsed = self.clock() - self._start
        if elapsed + elapsed / self._epochs > self.seconds:
            self.model.stop_training = True


class SyncMovingStatistics(keras.callbacks.Callback):
    """Averages the float non-trainable variables (BatchNorm moving statistics) over workers.

    Keras 3 updates moving statistics locally, so under
    `MultiWorkerMirroredStrategy` every worker would keep its own estimate
    (from its shard) and the workers' models would differ. Averaging them
    before each validation and at each epoch end keeps every worker's model,
    checkpoint and backup identical.

    Args:
        strategy: the `MultiWorkerMirroredStrategy` of the run.
    """

    def __init__(self, strategy: tf.distribute.Strategy):
        super().__init__()
        self.strategy = strategy

    def _sync(self):
        variables = [v for v in self.model.non_trainable_variables if "float" in str(v.dtype)]
        if not variables:
            return

        def local_values():
            return tf.concat([tf.reshape(v.value, [-1]) for v in variables], 0)

        @tf.function
        def means():
            # One collective for all of them: a flat vector of every value.
            return self.strategy.reduce("MEAN", self.strategy.run(local_values), axis=None)

        averaged = means()
        offset = 0
        for variable in variables:
            size = int(np.prod(variable.shape))
            variable.assign(tf.reshape(averaged[offset : offset + size], variable.shape))
            offset += size

    def on_test_begin(self, logs=None):
        """Validation sees the averaged statistics."""
        self._sync()

    def on_epoch_end(self, epoch, logs=None):
        """Checkpoints and backups see the averaged statistics."""
        self._sync()
