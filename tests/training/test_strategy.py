import json

import numpy as np
import pytest
import tensorflow as tf

from kvid.training import strategy
from tests.training import helpers

MIRRORED_RUN = """
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from kvid.training import train_lib
from tests.training import helpers
result = train_lib.train(**helpers.TINY, data_dir={data!r}, work_dir={work!r}, epochs=1,
                         strategy="mirrored")
print("REPLICAS", result.model.distribute_strategy.num_replicas_in_sync)
print("VAL", result.val_accuracy)
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


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return helpers.tiny_dataset(tmp_path_factory.mktemp("data"))


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


def test_mirrored_training_on_two_logical_cpus(data_dir, tmp_path):
    code = MIRRORED_RUN.format(data=data_dir, work=str(tmp_path / "run"))
    ((out, err),) = helpers.finish([helpers.python(code)], timeout=300)
    assert "REPLICAS 2" in out, err[-3000:]
    assert "VAL" in out


def test_two_workers_end_with_the_same_weights(data_dir, tmp_path):
    ports = [helpers.free_port(), helpers.free_port()]
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    processes = []
    for index in range(2):
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        code = WORKER_RUN.format(
            data=data_dir, work=str(tmp_path / "run"), out=str(tmp_path / f"weights{index}.npz")
        )
        processes.append(helpers.python(code, env={"TF_CONFIG": tf_config}))
    outputs = helpers.finish(processes, timeout=420)
    for out, err in outputs:
        assert "EPOCHS 2" in out, err[-3000:]
    chief, other = (np.load(tmp_path / f"weights{i}.npz") for i in range(2))
    assert len(chief.files) > 10
    for name in chief.files:
        np.testing.assert_array_equal(chief[name], other[name])
    # The chief writes the run's files, the other worker its own (backups are
    # deleted after a finished run; their per-worker folders are tested in test_callbacks).
    assert (tmp_path / "run" / "best.keras").exists()
    assert (tmp_path / "run" / "workers" / "worker_1" / "best.keras").exists()
