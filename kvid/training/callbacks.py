"""The callbacks every training run gets, and where each worker writes."""

from __future__ import annotations

import os
import time

import keras
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
    return os.path.join(work_dir, "workers", f"worker_{strategy.cluster_resolver.task_id}")


def default_callbacks(
    work_dir: str | os.PathLike,
    *,
    strategy: tf.distribute.Strategy | None = None,
    monitor: str = "val_accuracy",
    tensorboard: bool = True,
) -> list[keras.callbacks.Callback]:
    """Checkpoint-and-resume, best-model checkpoint, CSV log and TensorBoard.

    `BackupAndRestore` comes first so a killed run restarted with the same
    `work_dir` resumes from the last finished epoch; each worker keeps its own
    backup directory.

    Args:
        work_dir: the run's directory.
        strategy: the distribution strategy (decides where each worker writes).
        monitor: the logged metric the best checkpoint is chosen by (higher is better).
        tensorboard: whether to write TensorBoard logs under `work_dir/logs`.

    Returns:
        The callbacks, to pass to `Model.fit`.
    """
    out = worker_dir(work_dir, strategy)
    task = 0 if strategy is None else strategy_lib.task_index()
    callbacks = [
        keras.callbacks.BackupAndRestore(os.path.join(work_dir, "backup", f"worker_{task}")),
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
    """

    def __init__(self, seconds: float):
        super().__init__()
        self.seconds = float(seconds)

    def on_train_begin(self, logs=None):
        """Starts the clock."""
        self._start = time.monotonic()
        self._epochs = 0

    def on_epoch_end(self, epoch, logs=None):
        """Stops when the mean epoch so far would not fit in the time left."""
        self._epochs += 1
        elapsed = time.monotonic() - self._start
        if elapsed + elapsed / self._epochs > self.seconds:
            self.model.stop_training = True
