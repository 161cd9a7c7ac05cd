import csv
import json
import logging
import os
import shutil
import signal
import subprocess
import time

import keras
import numpy as np
import pytest

from kvid.training import callbacks
from tests import processes

RUN = """
import sys
import time
import keras
from kvid.training import train_lib
from tests.training import helpers

sys.stdin.readline()  # started up: wait for the go

class Probe(keras.callbacks.Callback):
    # Records the epochs this process runs; optionally hangs mid-epoch {hang}.
    epochs = []
    def on_epoch_begin(self, epoch, logs=None):
        self.epochs.append(epoch)
    def on_train_batch_end(self, batch, logs=None):
        if self.epochs[-1] == {hang} and batch == 1:
            open({mark!r}, "w").close()
            time.sleep(600)

train_lib.train(**helpers.TINY, data_dir={data!r}, work_dir={work!r}, epochs=3,
                callbacks=(Probe(),))
print("RAN", Probe.epochs)
"""


def test_a_killed_run_resumes_losing_at_most_the_current_epoch(tiny_data_dir, tmp_path):
    work, mark = str(tmp_path / "run"), str(tmp_path / "hanging")
    # The second process starts up while the first trains.
    runs = [RUN.format(hang=hang, mark=mark, data=tiny_data_dir, work=work) for hang in (2, -1)]
    first, second = (processes.python(code, stdin=subprocess.PIPE) for code in runs)
    try:
        processes.release(first)
        deadline = time.monotonic() + 240
        while not os.path.exists(mark):
            assert first.poll() is None, first.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "the first run never reached epoch 2"
            time.sleep(0.2)
        processes.kill(first)
        first.communicate(timeout=60)
        assert first.returncode == -signal.SIGKILL
        processes.release(second)
        ((out, err),) = processes.finish([second], timeout=240)
    finally:
        processes.stop(first, second)
    assert "RAN [2]" in out, err[-3000:]  # epochs 0 and 1 were not trained again
    with open(os.path.join(work, callbacks.TRAINING_LOG)) as f:
        assert [row["epoch"] for row in csv.DictReader(f)] == ["0", "1", "2"]


def test_time_budget_stops_before_the_next_epoch_would_overrun():
    # A clock read once at the start and once per epoch end: 0.3 s per epoch.
    ticks = iter(np.arange(0, 10, 0.3))
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    x = np.zeros((4, 1), "float32")
    # After 2 epochs (0.6 s) a third would end at 0.9 s <= 1 s; after 3 a fourth would overrun.
    budget = callbacks.TimeBudget(1.0, clock=lambda: next(ticks))
    history = model.fit(x, x, epochs=10, verbose=0, callbacks=[budget])
    assert len(history.epoch) == 3


def test_single_process_writes_into_the_work_dir(tmp_path):
    assert callbacks.worker_dir(tmp_path) == str(tmp_path)
    kinds = [type(c).__name__ for c in callbacks.default_callbacks(tmp_path)]
    assert kinds == ["Backup", "EpochLog", "BestModel", "TensorBoard"]


def test_each_worker_backs_up_into_its_own_folder(tmp_path, monkeypatch):
    tf_config = '{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 1}}'
    monkeypatch.setenv("TF_CONFIG", tf_config)
    (backup,) = [
        c for c in callbacks.default_callbacks(tmp_path) if isinstance(c, callbacks.Backup)
    ]
    assert backup.backup_dir == str(tmp_path / "backup" / "worker_1")


# In-process checks of what a kill at each moment of a save leaves (the subprocess torture test
# is tests/training/test_interruptions.py).

X = np.random.default_rng(0).random((32, 4)).astype("float32")
Y = keras.utils.to_categorical(np.arange(32) % 3, 3)


def _model():
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(3)]
    )
    loss = keras.losses.CategoricalCrossentropy(from_logits=True)
    model.compile("adam", loss, metrics=["accuracy"])
    return model


class _Weights(keras.callbacks.Callback):
    """Records the model's and optimizer's variables after each epoch (before the backup)."""

    def __init__(self, record_from=None):
        super().__init__()
        self.after = {}
        self.record_from = record_from
        self.recording = False

    def on_epoch_end(self, epoch, logs=None):
        self.after[epoch + 1] = _state(self.model)
        self.recording = epoch + 1 == self.record_from


def _state(model):
    return [v.numpy().copy() for v in model.weights + model.optimizer.variables]


def _fit(work, epochs, *extra, resume=True, model=None):
    model = model or _model()
    run = callbacks.default_callbacks(work, tensorboard=False, resume=resume)
    history = model.fit(
        X,
        Y,
        validation_data=(X, Y),
        epochs=epochs,
        initial_epoch=callbacks.restore_backup(run, model),
        batch_size=8,
        verbose=0,
        callbacks=[*extra, *run],
    )
    return model, history, run


def _restore(backup_dir):
    """A new model restored by `Backup` from `backup_dir`: (restored epoch, model)."""
    model = _model()
    model.optimizer.build(model.trainable_variables)
    backup = callbacks.Backup(backup_dir)
    epoch = backup.restore(model)
    assert epoch == backup.restored_epoch
    return epoch, model


def _epochs(work):
    with open(os.path.join(work, callbacks.TRAINING_LOG), newline="") as f:
        return [int(row["epoch"]) for row in csv.DictReader(f)]


def test_every_moment_of_a_backup_leaves_a_complete_backup(tmp_path, monkeypatch):
    work = str(tmp_path / "run")
    backup_dir = os.path.join(work, "backup", "worker_0")
    weights = _Weights(record_from=3)
    _fit(work, 2, weights)
    # The third epoch's save, stopped before each rename it makes (where a kill may land).
    snapshots, replace = [], os.replace

    def snapshot():
        target = str(tmp_path / f"state{len(snapshots)}")
        shutil.copytree(backup_dir, target)
        snapshots.append(target)

    def replacing(*args):
        if weights.recording:
            snapshot()
        return replace(*args)

    monkeypatch.setattr(os, "replace", replacing)
    _fit(work, 3, weights)
    monkeypatch.setattr(os, "replace", replace)
    snapshot()
    restored = [_restore(path) for path in snapshots]
    # Before: keeping the last pair as the previous one (2 renames), publishing the new weights,
    # publishing the new metadata (the commit); after it, and after training ends.
    assert [epoch for epoch, _ in restored][:4] == [2, 2, 2, 2]
    assert [epoch for epoch, _ in restored][4:] in ([3, 3], [3])  # [3, 3]: best.keras saved
    for epoch, net in restored:
        for got, want in zip(_state(net), weights.after[epoch], strict=True):
            np.testing.assert_array_equal(got, want)


def test_a_torn_latest_backup_falls_back_to_the_previous_one(tmp_path, caplog):
    work = str(tmp_path / "run")
    backup_dir = os.path.join(work, "backup", "worker_0")
    weights = _Weights()
    _fit(work, 2, weights)
    second = tmp_path / "second"
    shutil.copytree(backup_dir, second)
    _fit(work, 3, weights)
    assert sorted(os.listdir(backup_dir)) == ["latest.weights.h5", "training_metadata.json"]
    # Both pairs, the latest one torn (an in-place save cut short, or a disk fault).
    state = tmp_path / "state"
    shutil.copytree(backup_dir, state)
    shutil.copy(second / "latest.weights.h5", state / "previous.weights.h5")
    shutil.copy(second / "training_metadata.json", state / "previous_training_metadata.json")
    os.truncate(state / "latest.weights.h5", os.path.getsize(state / "latest.weights.h5") // 2)
    with caplog.at_level(logging.WARNING):
        epoch, net = _restore(str(state))
    assert epoch == 2 and "newer backups could not be read" in caplog.text
    for got, want in zip(_state(net), weights.after[2], strict=True):
        np.testing.assert_array_equal(got, want)
    # Garbage in the latest metadata instead: the same fallback.
    shutil.copy(os.path.join(backup_dir, "latest.weights.h5"), state / "latest.weights.h5")
    assert _restore(str(state))[0] == 3
    (state / "training_metadata.json").write_text('{"epoch": 3, "sha')
    assert _restore(str(state))[0] == 2


def test_no_readable_backup_is_one_error_naming_the_folder_and_the_flag(tmp_path):
    work = str(tmp_path / "run")
    backup_dir = os.path.join(work, "backup", "worker_0")
    _fit(work, 1)
    weights = os.path.join(backup_dir, "latest.weights.h5")
    os.truncate(weights, os.path.getsize(weights) // 2)
    with pytest.raises(callbacks.BackupError, match="--noresume") as error:
        _fit(work, 2)
    assert backup_dir in str(error.value)
    _, history, _ = _fit(work, 2, resume=False)  # starts afresh
    assert history.epoch == [0, 1] and _epochs(work) == [0, 1]


def test_a_finished_run_restarted_trains_no_more_epochs(tmp_path):
    work = str(tmp_path / "run")
    _fit(work, 2)
    _, history, _ = _fit(work, 2)
    assert history.epoch == [] and _epochs(work) == [0, 1]
    _, history, _ = _fit(work, 3)  # more epochs continue the run
    assert history.epoch == [2] and _epochs(work) == [0, 1, 2]


def test_a_backup_written_by_keras_resumes(tmp_path):
    work = str(tmp_path / "run")
    backup_dir = os.path.join(work, "backup", "worker_0")
    model = _model()
    keras_backup = keras.callbacks.BackupAndRestore(backup_dir, delete_checkpoint=False)
    model.fit(X, Y, epochs=2, batch_size=8, verbose=0, callbacks=[keras_backup])
    epoch, net = _restore(backup_dir)
    assert epoch == 2
    for got, want in zip(_state(net), _state(model), strict=True):
        np.testing.assert_array_equal(got, want)


def test_restore_then_fit_from_initial_epoch_trains_only_the_epochs_left(tmp_path, monkeypatch):
    backup_dir = str(tmp_path / "backup")
    x, y = X[:4], Y[:4]
    first = _model()
    backup = callbacks.Backup(backup_dir)
    assert backup.restore(first) == 0  # a fresh run
    first.fit(x, y, epochs=2, initial_epoch=0, verbose=0, callbacks=[backup])
    loads = []
    load_weights = keras.Model.load_weights

    def counting(model, *args, **kwargs):
        loads.append(args)
        return load_weights(model, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "load_weights", counting)
    model, backup = _model(), callbacks.Backup(backup_dir)
    done = backup.restore(model)
    assert done == 2 and backup.restored_epoch == 2 and "loss" in backup.restored_logs
    for got, want in zip(_state(model), _state(first), strict=True):
        np.testing.assert_array_equal(got, want)
    history = model.fit(x, y, epochs=5, initial_epoch=done, verbose=0, callbacks=[backup])
    assert history.epoch == [2, 3, 4]
    assert len(loads) == 1  # `on_train_begin` did not restore again
    with open(os.path.join(backup_dir, "training_metadata.json")) as f:
        assert json.load(f)["epoch"] == 5
    # A `fit` that would train the restored epochs again is stopped at its first one.
    model, backup = _model(), callbacks.Backup(backup_dir)
    with pytest.raises(ValueError, match="initial_epoch"):
        model.fit(x, y, epochs=6, verbose=0, callbacks=[backup])
    assert backup.restored_epoch == 5  # `on_train_begin` restored (no `restore` before)
    # An unbuilt model cannot be restored into.
    unbuilt = keras.Sequential([keras.layers.Dense(3)])
    unbuilt.compile("adam", "mse")
    with pytest.raises(ValueError, match="unbuilt"):
        callbacks.Backup(backup_dir).restore(unbuilt)


def test_the_log_is_repaired_to_the_restored_epochs(tmp_path):
    work = str(tmp_path / "run")
    log = os.path.join(work, callbacks.TRAINING_LOG)
    _fit(work, 2)
    with open(log, newline="") as f:
        text = f.read()
    header, *rows = text.splitlines(keepends=True)
    assert header.startswith("epoch,accuracy,loss,val_accuracy,val_loss") and len(rows) == 2
    # A kill after the backup of epoch 1 but before its row, with a row of a redone epoch and a
    # torn row after it (as after a fallback): rows 0 and 1 only, row 1 from the backup.
    with open(log, "w", newline="") as f:
        f.write(header + rows[0] + rows[1].replace("1,", "2,", 1) + "3,0.5,0.")
    _, history, _ = _fit(work, 2)
    assert history.epoch == []
    with open(log, newline="") as f:
        assert f.read() == text
    # A log torn in its header, a fresh run: one header.
    with open(log, "w") as f:
        f.write("epo")
    _fit(work, 1, resume=False)
    assert _epochs(work) == [0]


def test_the_best_model_survives_a_resume(tmp_path):
    work = str(tmp_path / "run")
    best, log = os.path.join(work, callbacks.BEST_MODEL), os.path.join(work, callbacks.TRAINING_LOG)
    _fit(work, 2)

    def resume_with_scores(scores):
        with open(log, newline="") as f:
            rows = list(csv.DictReader(f))
        with open(log, "w", newline="") as f:
            writer = csv.DictWriter(f, rows[0].keys(), lineterminator="\r\n")
            writer.writeheader()
            writer.writerows(
                dict(row, val_accuracy=score) for row, score in zip(rows, scores, strict=True)
            )
        os.remove(best)
        _, _, run = _fit(work, 2)
        (best_model,) = [c for c in run if isinstance(c, callbacks.BestModel)]
        return best_model.best

    # The best epoch is the last one restored, whose save a kill may have stopped: saved again.
    assert resume_with_scores([0.5, 0.75]) == 0.75
    assert keras.saving.load_model(best).count_params() == 67
    assert not [name for name in os.listdir(work) if name.startswith(".partial-")]
    # An earlier best epoch: its model was saved before the last backup; the score is kept.
    assert resume_with_scores([0.75, 0.5]) == 0.75 and not os.path.exists(best)


def test_the_best_model_is_saved_on_improvement_only(tmp_path):
    best = tmp_path / "best.keras"

    class Scores(keras.callbacks.Callback):
        """Logs a scripted score and marks the weights with the epoch."""

        def on_epoch_end(self, epoch, logs):
            self.model.layers[-1].bias.assign([float(epoch)])
            logs["score"] = [0.5, 0.25, 0.75, 0.75][epoch]

    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    log = callbacks.EpochLog(tmp_path / callbacks.TRAINING_LOG, callbacks.Backup(tmp_path / "b"))
    saving = callbacks.BestModel(best, monitor="score", log=log)
    x = np.zeros((2, 1), "float32")
    model.fit(x, x, epochs=4, verbose=0, callbacks=[Scores(), log.backup, log, saving])
    assert saving.best == 0.75  # epoch 2's: epoch 3 ties, it is not better
    assert keras.saving.load_model(best).layers[-1].bias.numpy().tolist() == [2.0]
    unlogged = callbacks.BestModel(best, monitor="x", log=log)
    with pytest.warns(UserWarning, match="not logged"):
        model.fit(x, x, epochs=1, verbose=0, callbacks=[unlogged])


def test_read_log_keeps_whole_rows_only(tmp_path):
    path = tmp_path / callbacks.TRAINING_LOG
    assert callbacks.read_log(path) == (None, [])
    path.write_text("")
    assert callbacks.read_log(path) == (None, [])
    # A row with a cell too few, one without an integer epoch, and a last line cut short.
    path.write_text("epoch,loss,val_accuracy\r\n0,1.5,0.25\r\n1,1.2\r\nx,1,2\n2,0.9,0.5\n3,0.8,0.")
    header, rows = callbacks.read_log(path)
    assert header == ["epoch", "loss", "val_accuracy"]
    assert rows == [["0", "1.5", "0.25"], ["2", "0.9", "0.5"]]
