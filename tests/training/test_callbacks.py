import csv
import os
import signal
import time

import keras
import numpy as np
import pytest

from kvid.training import callbacks
from tests.training import helpers

RUN = """
import time
import keras
from kvid.training import train_lib
from tests.training import helpers

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


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return helpers.tiny_dataset(tmp_path_factory.mktemp("data"))


def test_a_killed_run_resumes_losing_at_most_the_current_epoch(data_dir, tmp_path):
    work, mark = str(tmp_path / "run"), str(tmp_path / "hanging")
    first = helpers.python(RUN.format(hang=2, mark=mark, data=data_dir, work=work))
    deadline = time.monotonic() + 300
    while not os.path.exists(mark):
        assert first.poll() is None, first.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "the first run never reached epoch 2"
        time.sleep(0.5)
    os.killpg(first.pid, signal.SIGKILL)
    first.communicate()
    assert first.returncode == -signal.SIGKILL

    ((out, err),) = helpers.finish(
        [helpers.python(RUN.format(hang=-1, mark=mark, data=data_dir, work=work))], timeout=300
    )
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
    assert kinds == ["BackupAndRestore", "ModelCheckpoint", "CSVLogger", "TensorBoard"]


def test_each_worker_backs_up_into_its_own_folder(tmp_path, monkeypatch):
    tf_config = '{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 1}}'
    monkeypatch.setenv("TF_CONFIG", tf_config)
    (backup,) = [
        c
        for c in callbacks.default_callbacks(tmp_path)
        if isinstance(c, keras.callbacks.BackupAndRestore)
    ]
    assert backup.backup_dir == str(tmp_path / "backup" / "worker_1")
