import json
import re

import numpy as np
import pytest
import tensorflow as tf

from kvid.training import strategy
from tests import processes

MIRRORED_RUN = """
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from kvid.training import train_lib
from tests.training import helpers
result = train_lib.train(**helpers.TINY, data_dir={data!r}, work_dir={work!r}, epochs=1,
                         strategy="mirrored")
print("REPLICAS", result.model.distribute_strategy.num_replicas_in_sync)
print("EPOCHS", len(result.history["loss"]), "VAL", result.val_accuracy)
"""

WORKER_RUN = """
import numpy as np
from kvid.training import train_lib
from tests.training import helpers
result = train_lib.train(**helpers.TINY, data_dir={data!r}, work_dir={work!r}, epochs=2,
                         strategy="multi_worker")
np.savez({out!r}, *result.model.get_weights())
print("EPOCHS", len(result.history["loss"]))
"""


def test_default_strategy_without_cluster(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert strategy.get_strategy("auto") is tf.distribute.get_strategy()
    assert strategy.is_chief(strategy.get_strategy("default"))
    with pytest.raises(ValueError, match="strategy='tpu'"):
        strategy.get_strategy("tpu")
    with pytest.raises(ValueError, match="TF_CONFIG unset"):
        strategy.get_strategy("multi_worker")


def test_the_workaround_is_gated_on_the_keras_version(monkeypatch):
    strategy.patch_keras_multi_worker.cache_clear()
    monkeypatch.setattr(strategy, "_keras_version", lambda: (3, 16))
    assert strategy.patch_keras_multi_worker() is False
    strategy.patch_keras_multi_worker.cache_clear()


@pytest.fixture(scope="module")
def runs(tiny_data_dir, tmp_path_factory):
    """The mirrored run and the two workers, started at once: they overlap their start-ups."""
    root = tmp_path_factory.mktemp("strategy")
    started = {"root": root}
    code = MIRRORED_RUN.format(data=tiny_data_dir, work=str(root / "mirrored"))
    started["mirrored"] = processes.python(code)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in processes.free_ports(2)]}
    started["workers"] = []
    for index in range(2):
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        code = WORKER_RUN.format(
            data=tiny_data_dir, work=str(root / "run"), out=str(root / f"weights{index}.npz")
        )
        started["workers"].append(processes.python(code, env={"TF_CONFIG": tf_config}))
    yield started
    processes.stop(started["mirrored"], *started["workers"])


def test_mirrored_training_on_two_logical_cpus(runs):
    ((out, err),) = processes.finish([runs["mirrored"]], timeout=240)
    assert "REPLICAS 2" in out, err[-3000:]
    epochs, accuracy = re.search(r"^EPOCHS (\d+) VAL (\S+)$", out, flags=re.M).groups()
    assert int(epochs) == 1 and 0 <= float(accuracy) <= 1
    assert (runs["root"] / "mirrored" / "best.keras").exists()


def test_two_workers_end_with_the_same_weights(runs):
    outputs = processes.finish(runs["workers"], timeout=240)
    for out, err in outputs:
        assert "EPOCHS 2" in out, err[-3000:]
    root = runs["root"]
    chief, other = (np.load(root / f"weights{i}.npz") for i in range(2))
    assert len(chief.files) > 10
    for name in chief.files:
        np.testing.assert_array_equal(chief[name], other[name])
    # The chief writes the run's files, the other worker its own (backups are
    # deleted after a finished run; their per-worker folders are tested in test_callbacks).
    assert (root / "run" / "best.keras").exists()
    assert (root / "run" / "workers" / "worker_1" / "best.keras").exists()
