"""Exports killed with SIGKILL part-way: the highest version stays the last complete one.

TF Serving loads the highest integer version folder of a model as soon as it
appears, so a version folder must appear only complete.
"""

import os
import signal
import time

import numpy as np
import tensorflow as tf

from kvid.export import saved_model
from kvid.io import atomic
from tests import processes

EXPORT = """
import kvid
from kvid.export import export_saved_model

spec = kvid.models.get_spec("r3d_18")
model = kvid.get_model("r3d_18", **spec.test_kwargs, classes=3, classifier_activation=None)
for _ in range({count}):
    print("exported", export_saved_model(model, {export_dir!r}), flush=True)
"""


def _export(export_dir, count, kill_in_write=None, kill_after=None, timeout=240):
    """Runs `count` exports in a fresh process; returns (code, stdout, stderr).

    With `kill_after`, the process is killed that many seconds after its first
    export was printed.
    """
    env = processes.kill_in_write_env(kill_in_write) if kill_in_write else {}
    process = processes.python(EXPORT.format(count=count, export_dir=str(export_dir)), env=env)
    first = ""
    if kill_after is not None:
        first = processes.read_line(process, timeout)
        assert first.startswith("exported"), process.communicate()[1][-3000:]
        time.sleep(kill_after)
        processes.kill(process)
    ((out, err),) = processes.finish([process], timeout)
    return process.returncode, first + out, err


def _versions(export_dir):
    return sorted(int(name) for name in os.listdir(export_dir) if name.isdigit())


def _serves(path):
    """Whether the export at `path` loads and answers a request, as TF Serving would."""
    serve = tf.saved_model.load(str(path)).signatures["serving_default"]
    frames = np.zeros((1, 4, 40, 48, 3), np.uint8)
    return serve(frames=tf.constant(frames))["probabilities"].shape == (1, 3)


def test_an_export_killed_part_way_never_becomes_a_version(tmp_path):
    export_dir = tmp_path / "r3d_18"
    # Killed inside the second export, after its files were written, before the rename.
    code, out, err = _export(export_dir, 2, kill_in_write="2")
    assert code == -signal.SIGKILL, err[-3000:]
    assert out.count("exported") == 1 and _versions(export_dir) == [1]
    (leftover,) = [name for name in os.listdir(export_dir) if atomic.is_partial(name)]
    assert os.path.exists(export_dir / leftover / "saved_model.pb")  # cut to half its size
    assert saved_model.next_version(export_dir) == 2
    # Killed at a seeded random moment of the exports after the first (there are more of them
    # than can finish by then): every version there is complete.
    rng = np.random.default_rng(15)
    code, out, err = _export(export_dir, 100, kill_after=rng.uniform(0, 3))
    assert code == -signal.SIGKILL, err[-3000:]
    versions = _versions(export_dir)
    assert versions == list(range(1, len(versions) + 1))
    # Each printed export, and maybe one renamed right before the kill.
    assert len(versions) - 1 - out.count("exported") in (0, 1), (versions, out)
    for version in versions:
        assert (export_dir / str(version) / "saved_model.pb").is_file()
        assert (export_dir / str(version) / "variables" / "variables.index").is_file()
    assert _serves(export_dir / str(versions[-1]))
    # The next export removes every leftover and adds the next version.
    code, out, err = _export(export_dir, 1)
    assert code == 0, err[-3000:]
    assert _versions(export_dir) == [*versions, versions[-1] + 1]
    assert not [name for name in os.listdir(export_dir) if atomic.is_partial(name)]
    assert _serves(export_dir / str(versions[-1] + 1))
