import os
import signal
import subprocess
import sys

import pytest

from kvid.io import atomic
from tests import processes

ROOT = processes.ROOT
# The module alone, without kvid's (TensorFlow) imports, and the kill hook installed in it
# directly: a killed writer in a fraction of a second.
LOAD = """
import importlib.util
def load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
atomic = load("atomic", {atomic!r})
load("kill_in_write", {hook!r}).install(atomic, {request!r})
"""


def _run(code, request=None, env=None):
    """Runs `python -c code`, after LOAD of the kill hook for `request` unless it is `None`."""
    if request is not None:
        atomic_path = os.path.join(ROOT, "kvid", "io", "atomic.py")
        hook = os.path.join(ROOT, "tests", "kill_in_write.py")
        code = LOAD.format(atomic=atomic_path, hook=hook, request=request) + code
    return subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


def _partials(directory):
    return sorted(name for name in os.listdir(directory) if atomic.is_partial(name))


def test_a_file_appears_complete(tmp_path):
    path = tmp_path / "sub" / "model.keras"
    with atomic.atomic_path(path, keep_extension=True) as temporary:
        assert temporary.endswith("model.keras") and os.path.dirname(temporary) == str(path.parent)
        assert atomic.is_partial(temporary) and not path.exists()
        with open(temporary, "w") as f:
            f.write("new")
    assert path.read_text() == "new" and _partials(path.parent) == []
    # By default a glob for the extension does not find the temporary file.
    with atomic.atomic_path(tmp_path / "a.tfrecord") as temporary:
        assert temporary.endswith(".partial") and atomic.is_partial(temporary)
        open(temporary, "w").close()
    with atomic.atomic_file(path) as f:
        f.write("newer")
    assert path.read_text() == "newer"


def test_a_failed_write_leaves_the_old_file_and_no_leftover(tmp_path):
    path = tmp_path / "names.txt"
    path.write_text("old")
    with pytest.raises(RuntimeError), atomic.atomic_file(path) as f:
        f.write("half")
        raise RuntimeError("disk full")
    assert path.read_text() == "old" and _partials(tmp_path) == []


def test_a_folder_appears_complete_and_never_merges(tmp_path):
    path = tmp_path / "export" / "3"
    with atomic.atomic_folder(path) as temporary:
        os.makedirs(os.path.join(temporary, "variables"))
        open(os.path.join(temporary, "saved_model.pb"), "w").close()
        assert not path.exists()
    assert sorted(os.listdir(path)) == ["saved_model.pb", "variables"]
    with pytest.raises(FileExistsError), atomic.atomic_folder(path) as temporary:
        os.makedirs(temporary)
    assert _partials(path.parent) == []


def test_the_kill_hook_leaves_a_torn_temporary_and_the_old_file(tmp_path):
    path = tmp_path / "latest.weights.h5"
    path.write_text("old")
    code = f"""
for text in ("first", "second" * 100):
    with atomic.atomic_file({str(path)!r}) as f:
        f.write(text)
    print("wrote", text[:6], flush=True)
"""
    run = _run(code, "other.txt,latest.weights.h5@2")
    assert run.returncode == -signal.SIGKILL, run.stderr
    assert run.stdout == "wrote first\n" and path.read_text() == "first"
    (leftover,) = _partials(tmp_path)
    assert leftover.endswith("-latest.weights.h5.partial")
    assert (tmp_path / leftover).read_text() == "second" * 50
    # The next write removes the dead writer's leftover.
    with atomic.atomic_file(path) as f:
        f.write("third")
    assert _partials(tmp_path) == [] and path.read_text() == "third"


def test_the_kill_hook_in_a_folder_and_in_an_append(tmp_path):
    code = f"""
import os
with open({str(tmp_path / "log.csv")!r}, "a") as log:
    atomic.append_text(log, "epoch,loss\\r\\n")
    atomic.append_text(log, "0,0.25\\r\\n")
    with atomic.atomic_folder({str(tmp_path / "1")!r}) as temporary:
        os.makedirs(temporary)
        with open(os.path.join(temporary, "saved_model.pb"), "w") as f:
            f.write("graph")
    atomic.append_text(log, "1,0.125\\r\\n")
"""
    run = _run(code, "1")
    assert run.returncode == -signal.SIGKILL, run.stderr
    assert not (tmp_path / "1").exists()
    (leftover,) = _partials(tmp_path)
    assert os.listdir(tmp_path / leftover) == ["saved_model.pb"]
    assert (tmp_path / leftover / "saved_model.pb").read_text() == "gr"
    # Again, killed in the third append, after the folder was published.
    run = _run(code, "log.csv@3")
    assert run.returncode == -signal.SIGKILL, run.stderr
    assert os.listdir(tmp_path / "1") == ["saved_model.pb"] and _partials(tmp_path) == []
    with open(tmp_path / "log.csv", newline="") as f:
        assert f.read() == "epoch,loss\r\n0,0.25\r\nepoch,loss\r\n0,0.25\r\n1,0."


def test_the_kill_hook_installs_itself_when_a_child_imports_the_module(tmp_path):
    # The hook folder's sitecustomize that tests.processes.kill_in_write_env arms, with stand-ins
    # for the kvid and kvid.io packages (theirs import TensorFlow): the module is patched as it is
    # imported, and the hook imported nothing of kvid, TensorFlow or Keras before.
    path = tmp_path / "names.txt"
    code = f"""
import os, sys, types
print(sorted(m for m in sys.modules if m.split(".")[0] in ("kvid", "tensorflow", "keras")))
for name in ("kvid", "kvid.io"):
    package = types.ModuleType(name)
    package.__path__ = [os.path.join({ROOT!r}, *name.split("."))]
    sys.modules[name] = package
from kvid.io import atomic
for text in ("new", "newer"):
    with atomic.atomic_file({str(path)!r}) as f:
        f.write(text)
    print("wrote", text, flush=True)
"""
    run = _run(code, env=processes.kill_in_write_env("names.txt@2"))
    assert run.returncode == -signal.SIGKILL, run.stderr
    assert run.stdout == "[]\nwrote new\n" and path.read_text() == "new"
    (leftover,) = _partials(tmp_path)
    assert (tmp_path / leftover).read_text() == "ne"
    # Without the variable the hook folder changes nothing.
    run = _run(code, env=processes.kill_in_write_env(""))
    assert run.returncode == 0 and path.read_text() == "newer", run.stderr


def test_leftovers_of_live_writers_and_other_hosts_are_kept(tmp_path):
    mine = tmp_path / atomic._temporary_name("x")
    other_host = tmp_path / ".partial-abcdef-1-000000-x"
    gone = tmp_path / f".partial-{atomic._HOST}-{processes.unused_pid()}-000000-x"
    for path in (mine, other_host, gone):
        path.write_text("")
    assert atomic.remove_leftovers(tmp_path, "y") == []
    assert atomic.remove_leftovers(tmp_path) == [str(gone)]
    assert sorted(os.listdir(tmp_path)) == sorted([mine.name, other_host.name])
