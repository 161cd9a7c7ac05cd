"""Torture test: a training run killed with SIGKILL again and again, restarted until it finishes.

Kills land inside each kind of save (`tests/kill_in_write.py`, armed in the
child by `processes.kill_in_write_env`, cuts the file being written and kills
the process), at seeded random moments, and once the latest backup is torn on
disk. The run is a
tiny dense model on random numbers with the real callbacks. Each process
imports TensorFlow, then waits for its turn: the next restart starts up while
the current one trains, as a supervisor with a warm spare would.
"""

import csv
import os
import signal
import subprocess
import time

import keras
import numpy as np

from kvid.io import atomic
from kvid.training import callbacks
from tests import processes

EPOCHS = 10
RUN = """
import sys
import time
import keras
import numpy as np
from kvid.training import callbacks

sys.stdin.readline()  # started up: wait for the previous process to end

class Progress(keras.callbacks.Callback):
    # Records each epoch this process begins; a short sleep per batch makes an epoch ~0.5 s.
    def on_epoch_begin(self, epoch, logs=None):
        with open({progress!r}, "a") as f:
            f.write(f"{{epoch}}\\n")
    def on_train_batch_end(self, batch, logs=None):
        time.sleep(0.05)

keras.utils.set_random_seed(0)
rng = np.random.default_rng(0)
x, y = rng.random((64, 8), "float32"), keras.utils.to_categorical(np.arange(64) % 4, 4)
model = keras.Sequential(
    [keras.Input((8,)), keras.layers.Dense(64, activation="relu"), keras.layers.Dense(4)]
)
loss = keras.losses.CategoricalCrossentropy(from_logits=True)
model.compile("adam", loss, metrics=["accuracy"])
run = [Progress(), *callbacks.default_callbacks({work!r})]
model.fit(x, y, validation_data=(x, y), epochs={epochs}, batch_size=8, verbose=0,
          initial_epoch=callbacks.restore_backup(run, model), callbacks=run)
keras.saving.load_model({best!r})  # as kvid.training.train does after fit
print("FINISHED")
"""


class Run:
    """One process of the run: started, optionally killed after a delay, then reaped."""

    def __init__(self, tmp_path, index, kill_in_write=None):
        """Starts the process; it trains once `begin` is called."""
        self.progress = str(tmp_path / f"progress{index}.txt")
        work = str(tmp_path / "run")
        code = RUN.format(
            progress=self.progress,
            epochs=EPOCHS,
            work=work,
            best=os.path.join(work, callbacks.BEST_MODEL),
        )
        self.kill_in_write = kill_in_write
        env = processes.kill_in_write_env(kill_in_write) if kill_in_write else {}
        self.process = processes.python(code, env=env, stdin=subprocess.PIPE)

    def begin(self):
        processes.release(self.process)

    def begun(self):
        """The epochs this process began."""
        if not os.path.exists(self.progress):
            return []
        with open(self.progress) as f:
            return [int(line) for line in f.read().split("\n")[:-1]]

    def finish(self, kill_after=None, timeout=240):
        """Waits for the process, killing it `kill_after` seconds after its first epoch began."""
        if kill_after is not None:
            deadline = time.monotonic() + timeout
            while not self.begun() and self.process.poll() is None:
                assert time.monotonic() < deadline, "no epoch began"
                time.sleep(0.05)
            time.sleep(kill_after)
            if self.process.poll() is None:
                processes.kill(self.process)
        ((self.out, self.err),) = processes.finish([self.process], timeout=timeout)
        return self.process.returncode


def _log_epochs(work):
    with open(os.path.join(work, callbacks.TRAINING_LOG), newline="") as f:
        return [int(row["epoch"]) for row in csv.DictReader(f)]


def test_a_run_killed_at_any_moment_finishes_with_each_epoch_logged_once(tmp_path):
    work = tmp_path / "run"
    backup = work / "backup" / "worker_0"
    hooks = ["best.keras", "latest.weights.h5@2", "training_metadata.json", "training_log.csv@2"]
    # The processes in order: one per hook, then the torn backup's restart, three random kills,
    # and at most two restarts to finish (the last spare may go unused).
    planned = iter([*hooks, *[None] * 6])
    runs = []
    spare = Run(tmp_path, 0, next(planned))
    in_progress = 0  # the epoch the last kill interrupted

    def restart(kill_in_write=None, kill_after=None, may_lose=0):
        """Runs one process and checks its restart lost at most the interrupted epoch."""
        nonlocal in_progress, spare
        run, spare = spare, Run(tmp_path, len(runs) + 1, next(planned, None))
        assert run.kill_in_write == kill_in_write
        run.begin()
        code = run.finish(kill_after)
        runs.append(run)
        begun = run.begun()
        if begun:
            # Resumed: epochs finished before the interrupted one are not trained again.
            assert begun[0] >= in_progress - may_lose, (begun, in_progress, run.err[-3000:])
            in_progress = begun[-1]
        return code

    try:
        # A kill inside each kind of save: the best model (its first save), the backup's
        # weights and metadata, a row of the CSV log (the first append, or the log's repair).
        for hook in hooks:
            code = restart(kill_in_write=hook)
            assert code == -signal.SIGKILL, (hook, runs[-1].err[-3000:])
        # The cut temporary file of the first kill was removed by the next save of best.keras.
        assert not [name for name in os.listdir(work) if atomic.is_partial(name)]
        # A torn latest backup (a disk fault, or Keras' in-place save cut short): the restart
        # falls back to the previous one, redoing one finished epoch too. It is killed: the
        # epochs left take at least 8 x 0.4 s (the sleeps), the kill comes within 1.5 s.
        assert (backup / "previous.weights.h5").exists()
        latest = backup / "latest.weights.h5"
        os.truncate(latest, os.path.getsize(latest) // 2)
        rng = np.random.default_rng(15)
        assert restart(kill_after=rng.uniform(0.2, 1.5), may_lose=1) == -signal.SIGKILL
        assert "newer backups could not be read" in runs[-1].err
        # Kills at seeded random moments (within about three epochs: some are left for each),
        # then restarts until the run finishes.
        for _ in range(3):
            restart(kill_after=rng.uniform(0.2, 1.5))
        for _ in range(2):
            if runs[-1].process.returncode == 0:
                break
            restart()
    finally:
        processes.stop(spare.process)
    assert runs[-1].process.returncode == 0, runs[-1].err[-3000:]
    assert "FINISHED" in runs[-1].out
    assert _log_epochs(work) == list(range(EPOCHS))
    assert keras.saving.load_model(work / callbacks.BEST_MODEL).count_params() == 836
    print(
        "return codes and epochs begun:",
        [(run.process.returncode, run.begun()) for run in runs],
    )
