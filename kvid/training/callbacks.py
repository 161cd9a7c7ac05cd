"""The callbacks every training run gets, and where each worker writes."""

from __future__ import annotations

import contextlib
import csv
import functools
import io
import json
import os
import shutil
import time
import warnings
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from kvid.io import atomic
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
    resume: bool = True,
) -> list[keras.callbacks.Callback]:
    """Checkpoint-and-resume, best-model checkpoint, CSV log and TensorBoard.

    Under a multi-worker strategy, `SyncMovingStatistics` runs first so every
    worker saves the same model. `Backup` comes next so a killed run
    restarted with the same `work_dir` resumes from the last finished epoch;
    each worker keeps its own backup directory. The CSV log and the best
    model follow the backup (see `Backup` for what a kill at any moment leaves).

    Args:
        work_dir: the run's directory.
        strategy: the distribution strategy (decides where each worker writes).
        monitor: the logged metric the best checkpoint is chosen by (higher is better).
        tensorboard: whether to write TensorBoard logs under `work_dir/logs`.
        resume: `False` discards the backup of an earlier run in `work_dir`
            and trains from the first epoch.

    Returns:
        The callbacks, to pass to `Model.fit` with
        `initial_epoch=restore_backup(callbacks, model)` (the epochs the backup holds).
    """
    out = worker_dir(work_dir, strategy)
    callbacks = []
    if strategy is not None and strategy_lib.is_multi_worker(strategy):
        callbacks.append(SyncMovingStatistics(strategy))
    backup = Backup(os.path.join(work_dir, "backup", strategy_lib.task_name()), resume=resume)
    log = EpochLog(os.path.join(out, TRAINING_LOG), backup)
    callbacks += [backup, log, BestModel(os.path.join(out, BEST_MODEL), monitor=monitor, log=log)]
    if tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(os.path.join(out, "logs")))
    return callbacks


class BackupError(RuntimeError):
    """A run cannot resume: no backup in its folder can be read."""


LATEST_WEIGHTS = "latest.weights.h5"
LATEST_METADATA = "training_metadata.json"
PREVIOUS_WEIGHTS = "previous.weights.h5"
PREVIOUS_METADATA = "previous_training_metadata.json"


class Backup(keras.callbacks.Callback):
    """Backs up the model and optimizer after every epoch; survives a kill at any moment.

    The files in `backup_dir` are those of Keras' `BackupAndRestore`
    (`latest.weights.h5`, `training_metadata.json`), which is read too, plus
    a previous pair; a save, at the end of an epoch:

    1. writes the weights (with the optimizer's state) and the metadata to
       temporary files; the metadata records the epoch, that epoch's logs
       and the weights' SHA-256;
    2. renames the last complete pair to `previous.weights.h5` and
       `previous_training_metadata.json`;
    3. renames the new weights, then the new metadata, to the latest names:
       the metadata's rename commits the epoch.

    A kill between any two steps leaves at least one complete pair. On
    restart the newest metadata whose weights match its checksum and load is
    restored: a torn or unreadable latest backup falls back to the previous
    one (one more epoch is redone) with a warning. If backups exist but none
    can be read, restoring raises `BackupError` naming the folder.
    The backup is kept when training ends (without the previous pair), so
    a finished run restarted with the same folder trains no more epochs.

    Resuming takes the caller's part: `restore` the model before `fit` and
    start `fit` after the restored epochs (`restore_backup` finds the
    `Backup` in a list of callbacks and restores it)::

        backup = Backup(folder)
        model.fit(x, y, epochs=10, initial_epoch=backup.restore(model), callbacks=[backup])

    A `fit` that was not preceded by `restore` restores in `on_train_begin`,
    and stops with a `ValueError` at its first epoch if it would train an
    epoch the backup already holds (it was not given `initial_epoch`).

    Args:
        backup_dir: the folder, used by this callback only.
        resume: `False` deletes the folder's backups first (start afresh).

    Attributes:
        backup_dir: the folder.
        restored_epoch: epochs done when `fit` started (0 for a fresh run).
        restored_logs: the logs of the last restored epoch (`None` if fresh).
    """

    def __init__(self, backup_dir: str | os.PathLike, *, resume: bool = True):
        super().__init__()
        self.backup_dir = os.fspath(backup_dir)
        if not self.backup_dir:
            raise ValueError("Backup needs a folder: `backup_dir` is empty.")
        self.resume = resume
        self.restored_epoch = 0
        self.restored_logs = None
        folder = functools.partial(os.path.join, self.backup_dir)
        self._latest = folder(LATEST_WEIGHTS), folder(LATEST_METADATA)
        self._previous = folder(PREVIOUS_WEIGHTS), folder(PREVIOUS_METADATA)
        self._committed = None  # the (weights, metadata) paths of the last complete pair
        self._restored_into = None  # the model `restore` restored, until its `fit` begins

    def restore(self, model: keras.Model) -> int:
        """Restores the newest readable backup into `model`; returns the epochs it had done.

        Call it before `fit` and pass what it returns as `fit(initial_epoch=...)`:
        `fit` then trains only the epochs left. With `resume=False` it deletes
        the backups instead and returns 0.

        Args:
            model: the built, compiled model of the run (its optimizer is built if not yet).

        Returns:
            The epochs done (`restored_epoch`): 0 for a fresh run.

        Raises:
            ValueError: the model is not built.
            BackupError: backups exist but none can be read.
        """
        if not model.built:
            raise ValueError(
                f"Backup restores into a built model, and {model} is unbuilt: build it (call it "
                "on a batch, or give it an `Input`) before `fit` and before `Backup.restore`."
            )
        self.restored_epoch, self.restored_logs, self._committed = 0, None, None
        self._restored_into = None
        if not self.resume:
            self._delete()
        self._restore(model)
        self._restored_into = model
        return self.restored_epoch

    def on_train_begin(self, logs=None):
        """Restores the newest readable backup, unless `restore` already did for this model."""
        if self._restored_into is not self.model:
            self.restore(self.model)
        self._restored_into = None  # a later `fit` restores again

    def on_epoch_begin(self, epoch, logs=None):
        """Refuses to train an epoch the backup holds (`fit` without `initial_epoch`)."""
        if epoch < self.restored_epoch:
            raise ValueError(
                f"The backup in {self.backup_dir!r} holds {self.restored_epoch} finished "
                f"epochs, and `fit` began at epoch {epoch}: pass "
                "`initial_epoch=backup.restore(model)` to `fit` (or "
                "`kvid.training.callbacks.restore_backup(callbacks, model)`)."
            )

    def _delete(self):
        # Metadata first: a kill part-way leaves nothing committed, not a broken backup.
        for path in (self._latest[1], self._previous[1], self._latest[0], self._previous[0]):
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)
        shutil.rmtree(self.backup_dir, ignore_errors=True)

    def _candidates(self, problems):
        """`(epoch, weights path, metadata path, metadata)` of every complete pair."""
        weights = [w for w, _ in (self._latest, self._previous) if os.path.isfile(w)]
        digests = {}
        found = []
        for slot_weights, path in (self._latest, self._previous):
            if not os.path.exists(path):
                continue
            try:
                with open(path) as f:
                    metadata = json.load(f)
                epoch = int(metadata["epoch"])
            except (OSError, ValueError, KeyError, TypeError) as error:
                problems.append(f"{path}: {type(error).__name__}: {error}")
                continue
            if "sha256" not in metadata:
                # Written by Keras' own BackupAndRestore: its pair is its slot's weights.
                match = [slot_weights] if slot_weights in weights else []
            else:
                for w in weights:
                    if w not in digests:
                        digests[w] = atomic.sha256(w)
                match = [w for w in weights if digests[w] == metadata["sha256"]]
            if not match:
                problems.append(f"{path}: no weights file matches it")
                continue
            found.append((epoch, match[0], path, metadata))
        return sorted(found, key=lambda candidate: -candidate[0])

    def _restore(self, model):
        problems = []
        candidates = self._candidates(problems)
        if not problems and not candidates:
            return  # nothing committed: a fresh run (or one killed in its first save)
        if model.optimizer is not None and not model.optimizer.built:
            # Its variables are the strategy's, as when `fit` builds it.
            strategy = getattr(model, "distribute_strategy", None)
            with strategy.scope() if strategy is not None else contextlib.nullcontext():
                model.optimizer.build(model.trainable_variables)
        for epoch, weights, metadata_path, metadata in candidates:
            try:
                model.load_weights(weights)
            except Exception as error:  # a torn file fails in many ways
                problems.append(f"{weights}: {type(error).__name__}: {error}")
                continue
            self.restored_epoch, self.restored_logs = epoch, metadata.get("logs")
            self._committed = (weights, metadata_path)
            if problems:
                logging.warning(
                    "Resumed after epoch %d from %s; newer backups could not be read: %s",
                    epoch,
                    weights,
                    "; ".join(problems),
                )
            return
        raise BackupError(
            f"Cannot resume: no backup in {self.backup_dir!r} can be read "
            f"({'; '.join(problems)}). To start the run afresh, pass --noresume to "
            "kvid-train (`resume=False` to `kvid.training.train`) or delete that folder."
        )

    def on_epoch_end(self, epoch, logs=None):
        """Backs up the model and the optimizer: `epoch + 1` epochs are done."""
        latest_weights, latest_metadata = self._latest
        os.makedirs(self.backup_dir, exist_ok=True)
        with atomic.atomic_file(latest_metadata) as metadata:
            with atomic.atomic_path(latest_weights, keep_extension=True) as weights:
                self.model.save_weights(weights)
                digest = atomic.sha256(weights)
                self._keep_as_previous()
            # "batch": 0 as Keras writes at an epoch's end (no batch of the next one done).
            json.dump(
                {"epoch": epoch + 1, "batch": 0, "logs": _loggable(logs), "sha256": digest},
                metadata,
            )
        self._committed = self._latest

    def _keep_as_previous(self):
        """Moves the last complete pair to the previous names (one rename each)."""
        if self._committed is None:
            return
        for current, previous in zip(self._committed, self._previous, strict=True):
            if current != previous:
                os.replace(current, previous)
        self._committed = self._previous

    def on_train_end(self, logs=None):
        """Keeps the latest backup only: a finished run restarted trains no more epochs."""
        if self._committed == self._latest:
            for path in reversed(self._previous):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(path)


def restore_backup(callbacks: Sequence[keras.callbacks.Callback], model: keras.Model) -> int:
    """Restores the `Backup` among `callbacks` into `model`; returns `fit`'s `initial_epoch`.

    0 when there is no `Backup` (or it holds no epoch). Call it before
    `model.fit(..., callbacks=callbacks, initial_epoch=...)`.
    """
    backups = [c for c in callbacks if isinstance(c, Backup)]
    if len(backups) > 1:
        raise ValueError(f"One `Backup` per `fit`, not {len(backups)}.")
    return backups[0].restore(model) if backups else 0


def _loggable(logs):
    """The scalar entries of `logs` as floats (JSON-safe)."""
    out = {}
    for key, value in (logs or {}).items():
        with contextlib.suppress(TypeError, ValueError):
            out[key] = float(value)
    return out


class EpochLog(keras.callbacks.Callback):
    """A CSV log (as Keras' `CSVLogger` writes) with one row per epoch the run has done.

    Rows are appended after the epoch's backup, each flushed whole. At the
    start of `fit` the log is repaired to match the restored backup: the rows
    of epochs that will be redone (and a row cut short by a kill) are
    dropped, and the last restored epoch's row, if a kill came before it,
    is written from the backup's metadata.

    Args:
        filename: the CSV file.
        backup: the run's `Backup` (it says which epochs are done).

    Attributes:
        filename: the CSV file.
        keys: its columns after `epoch` (`None` until known).
        rows: every row, as `{column: cell}`: the restored epochs', then this `fit`'s.
    """

    def __init__(self, filename: str | os.PathLike, backup: Backup):
        super().__init__()
        self.filename = os.fspath(filename)
        self.backup = backup
        self.keys: list[str] | None = None
        self.rows: list[dict[str, str]] = []
        self._file = None

    def on_train_begin(self, logs=None):
        """Rewrites the log to the restored epochs' rows, then opens it to append."""
        os.makedirs(os.path.dirname(self.filename) or ".", exist_ok=True)
        done = self.backup.restored_epoch
        text, header, rows = _read_text(self.filename)
        rows = [row for row in rows if int(row[0]) < done]
        last = self.backup.restored_logs
        if done and last is not None and not any(int(row[0]) == done - 1 for row in rows):
            header = header or ["epoch", *_columns(last)]
            rows.append([str(done - 1), *(_cell(last.get(key, "NA")) for key in header[1:])])
        if not rows:
            header = None
        repaired = _csv_text([header, *rows]) if header else ""
        if (text or "") != repaired:
            with atomic.atomic_file(self.filename, newline="") as f:
                f.write(repaired)
        self.keys = header[1:] if header else None
        self.rows = [dict(zip(header, row, strict=True)) for row in rows]
        self._close()
        self._file = open(self.filename, "a", newline="")  # noqa: SIM115 (closed on train end)

    def on_epoch_end(self, epoch, logs=None):
        """Appends the epoch's row (with the header first in a new file)."""
        logs = logs or {}
        lines = []
        if self.keys is None:
            self.keys = _columns(logs)
            lines.append(["epoch", *self.keys])
        row = [str(epoch), *(_cell(logs.get(key, "NA")) for key in self.keys)]
        lines.append(row)
        atomic.append_text(self._file, _csv_text(lines))
        self.rows.append(dict(zip(["epoch", *self.keys], row, strict=True)))

    def on_train_end(self, logs=None):
        """Closes the log."""
        self._close()

    def _close(self):
        if self._file is not None:
            self._file.close()
            self._file = None


def _columns(logs):
    # Keras' CSVLogger columns: sorted, with val_ columns added when validation is off.
    keys = sorted(logs)
    if keys and not any(key.startswith("val_") for key in keys):
        keys += [f"val_{key}" for key in keys]
    return keys


def _cell(value):
    if isinstance(value, str):
        return value
    with contextlib.suppress(TypeError, ValueError):
        return str(float(value))
    return str(value)


def _csv_text(rows):
    text = io.StringIO()
    csv.writer(text, lineterminator="\r\n").writerows(rows)
    return text.getvalue()


def read_log(path: str | os.PathLike) -> tuple[list[str] | None, list[list[str]]]:
    """Reads an `EpochLog` CSV: `(header, rows)`, `(None, [])` if it is missing or empty.

    Only whole lines count: a last line without its line end (a write cut
    short) is left out, and so are rows without an integer epoch or with the
    wrong number of cells.
    """
    return _read_text(path)[1:]


def _read_text(path):
    try:
        with open(path, newline="") as f:
            text = f.read()
    except FileNotFoundError:
        return None, None, []
    *lines, _ = text.split("\n")
    parsed = list(csv.reader(line.rstrip("\r") for line in lines))
    if not parsed:
        return text, None, []
    header = parsed[0]
    return text, header, [row for row in parsed[1:] if len(row) == len(header) and row[0].isdigit()]


class BestModel(keras.callbacks.Callback):
    """Saves the model of the best epoch so far (by `monitor`, higher is better), atomically.

    The file is written to a temporary name and renamed, so it is always a
    complete model. On a resumed run the best value so far comes from the
    log's rows; when the best epoch is the last one restored, whose save a
    kill may have stopped, the restored model (that epoch's) is saved again.
    An epoch whose logs lack `monitor` is saved, with a warning (as Keras'
    `ModelCheckpoint(save_best_only=True)` does).

    Args:
        filepath: the `.keras` file.
        monitor: the logged metric.
        log: the run's `EpochLog`.

    Attributes:
        best: the best value of `monitor` so far (`None` before the first).
    """

    def __init__(self, filepath: str | os.PathLike, *, monitor: str, log: EpochLog):
        super().__init__()
        self.filepath = os.fspath(filepath)
        if not self.filepath.endswith(".keras"):
            raise ValueError(f"BestModel saves a `.keras` file, not {self.filepath!r}.")
        self.monitor = monitor
        self.log = log
        self.best = None

    def on_train_begin(self, logs=None):
        """Takes the best value from the restored epochs' rows."""
        self.best = None
        scored = []
        for row in self.log.rows:
            with contextlib.suppress(KeyError, ValueError):
                scored.append((float(row[self.monitor]), -int(row["epoch"])))
        if not scored:
            return
        best, negative_epoch = max(scored)
        self.best = best
        if -negative_epoch == self.log.backup.restored_epoch - 1:
            self._write()

    def on_epoch_end(self, epoch, logs=None):
        """Saves the model if the epoch's `monitor` is the best so far."""
        current = (logs or {}).get(self.monitor)
        if current is None:
            warnings.warn(
                f"BestModel monitors `{self.monitor}`, which is not logged: saving every epoch.",
                stacklevel=2,
            )
        else:
            current = float(current)
            if self.best is not None and not current > self.best:
                return
            self.best = current
        self._write()

    def _write(self):
        with atomic.atomic_path(self.filepath, keep_extension=True) as temporary:
            self.model.save(temporary)


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
