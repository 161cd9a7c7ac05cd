"""Child processes of the tests: every wait has a timeout, and a timed-out child is killed.

Apps and scripts run as their own processes, as users run them (absl flags of
different apps share names, and TensorFlow's start-up state is per process).
"""

import contextlib
import os
import queue
import signal
import socket
import subprocess
import sys
import threading

from tests import kill_in_write

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KILL_HOOK = os.path.join(ROOT, "tests", "kill_hook")


def _run(argv, cwd, env, timeout):
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def run_python(*argv, env=None, cwd=ROOT, check=True, timeout=240):
    """Runs `python *argv` with the repository importable; returns the finished process."""
    env = {**os.environ, "PYTHONPATH": ROOT, **(env or {})}
    done = _run([sys.executable, *argv], cwd, env, timeout)
    if check:
        assert done.returncode == 0, done.stderr[-3000:]
    return done


def run_installed(script, *args, cwd, timeout=240):
    """Runs the installed console script `script` in `cwd` with no `PYTHONPATH`: the kvid
    that `pip install` put in the environment, not the checkout."""
    env = {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}
    return _run([os.path.join(os.path.dirname(sys.executable), script), *args], cwd, env, timeout)


def python(code, env=None, stdin=None):
    """Starts `python -c code` from the repository root, in its own process group."""
    return subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": ROOT, **(env or {})},
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def kill_in_write_env(request):
    """The environment of a child that kills itself in the writes `request` names.

    `request` as in `tests/kill_in_write.py` (`"best.keras"`, `"latest.weights.h5@2"`,
    comma-separated); the hook folder's `sitecustomize` installs it when the child
    imports `kvid.io.atomic`. For `run_python` and `python`'s `env`.
    """
    return {kill_in_write.ENV: request, "PYTHONPATH": os.pathsep.join([KILL_HOOK, ROOT])}


def kill(process):
    """SIGKILLs `process`, and its children where it leads its own process group."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        process.kill()


def release(process):
    """Lets a process that started up and waits on its standard input go on."""
    process.stdin.write("go\n")
    process.stdin.flush()


def stop(*processes):
    """Kills the processes still running and reaps every one (a fixture's or test's cleanup)."""
    for process in processes:
        if process.poll() is None:
            kill(process)
        process.communicate()


def finish(processes, timeout):
    """Waits for every process; kills all of them (and their children) on timeout."""
    try:
        return [p.communicate(timeout=timeout) for p in processes]
    except subprocess.TimeoutExpired as error:
        for p in processes:
            if p.poll() is None:
                kill(p)
        outputs = [p.communicate() for p in processes]
        errors = [e[-2000:] for _, e in outputs if e]
        raise AssertionError(f"timed out after {timeout}s: {errors}") from error


def read_line(process, timeout):
    """The next line of `process.stdout`; kills the process if none comes within `timeout` s."""
    lines = queue.Queue()
    threading.Thread(target=lambda: lines.put(process.stdout.readline()), daemon=True).start()
    try:
        return lines.get(timeout=timeout)
    except queue.Empty:
        kill(process)
        raise AssertionError(f"no line from the child process within {timeout}s") from None


def free_ports(count):
    """`count` distinct ports on 127.0.0.1 that were free a moment ago (bound all at once)."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]


def unused_pid():
    """A process id no process can have: one above the kernel's largest (`pid_max`)."""
    with open("/proc/sys/kernel/pid_max") as f:
        return int(f.read()) + 1
