"""Each app runs as its own process, as users run it: absl flags of different apps share names."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_python(*argv, env=None, cwd=ROOT, check=True, timeout=300):
    """Runs `python *argv` with the repository importable; returns the finished process."""
    done = subprocess.run(
        [sys.executable, *argv],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": ROOT, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check:
        assert done.returncode == 0, done.stderr[-3000:]
    return done


def run_app(name, *args, **kwargs):
    """Runs `python -m apps.<name> *args`; returns the finished process."""
    return run_python("-m", f"apps.{name}", *args, **kwargs)
