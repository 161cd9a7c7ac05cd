"""Shared by the training tests: a tiny model, a tiny dataset, subprocess runs."""

import os
import signal
import socket
import subprocess
import sys

from kvid.models import get_spec
from kvid.training import train_lib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY = dict(
    model="r3d_18",
    model_kwargs=get_spec("r3d_18").test_kwargs,
    num_frames=4,
    size=32,
    batch_size=4,
    verbose=0,
)
TINY_DATA = dict(train_per_class=2, validation_per_class=1)


def tiny_dataset(directory):
    """The built-in dataset at its smallest: 16 training and 8 validation videos."""
    return train_lib.builtin_dataset(
        num_frames=TINY["num_frames"], size=TINY["size"], directory=str(directory), **TINY_DATA
    )


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def python(code, env=None):
    """Starts `python -c code` from the repository root, in its own process group."""
    return subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def finish(processes, timeout):
    """Waits for every process; kills all of them (and their children) on timeout."""
    try:
        return [p.communicate(timeout=timeout) for p in processes]
    except subprocess.TimeoutExpired as error:
        for p in processes:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
        outputs = [p.communicate() for p in processes]
        errors = [e[-2000:] for _, e in outputs]
        raise AssertionError(f"timed out after {timeout}s: {errors}") from error
