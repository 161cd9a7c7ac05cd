"""Test-only: kills a kvid writer with SIGKILL in the middle of a chosen write.

`install(atomic, request)` wraps `_commit` and `append_text` of a loaded
`kvid.io.atomic` module. Its callers look both up in the module at call time
(`atomic.append_text`, and the context managers' `_commit`), so every kvid
writer goes through the wrappers. `request` names the writes to kill,
comma-separated: `"best.keras"` (the first write of a file or folder of that
name) or `"latest.weights.h5@2"` (the second). The killed write of a file (or
folder) cuts the temporary file (or every file of the temporary folder) to
half its size and kills the process right before the rename; an append writes
half the text, flushes it and kills the process, as a kill in the middle of
the write would leave them.

Child processes get it through `tests/kill_hook/sitecustomize.py`
(`tests.processes.kill_in_write_env`). This module imports nothing of kvid.
"""

import collections
import functools
import os
import signal

ENV = "KVID_TEST_KILL_IN_WRITE"


def _parse(request):
    """`{name: the count of its write to kill}` of a request."""
    kills = collections.defaultdict(set)
    for item in request.split(","):
        target, _, count = item.strip().partition("@")
        if target:
            kills[target].add(int(count or 1))
    return kills


def _tear(path):
    """Cuts a file, or every file under a folder, to half its size."""
    files = [path]
    if os.path.isdir(path):
        files = [os.path.join(root, f) for root, _, names in os.walk(path) for f in names]
    for file in files:
        os.truncate(file, os.path.getsize(file) // 2)


def _die():
    os.kill(os.getpid(), signal.SIGKILL)


def install(atomic, request):
    """Wraps `atomic._commit` and `atomic.append_text` to kill the writes `request` names."""
    kills = _parse(request)
    writes = collections.Counter()
    commit, append_text = atomic._commit, atomic.append_text

    def requested(path):
        name = os.path.basename(path)
        writes[name] += 1
        return writes[name] in kills.get(name, ())

    @functools.wraps(commit)
    def killing_commit(temporary, path, *, folder, durable):
        if requested(path):
            _tear(temporary)
            _die()
        return commit(temporary, path, folder=folder, durable=durable)

    @functools.wraps(append_text)
    def killing_append_text(file, text, *, durable=True):
        if requested(file.name):
            file.write(text[: len(text) // 2])
            file.flush()
            _die()
        return append_text(file, text, durable=durable)

    atomic._commit = killing_commit
    atomic.append_text = killing_append_text
