"""Test-only: arms `tests/kill_in_write.py` in a child process that the variable names writes for.

Python imports `sitecustomize` at start-up from the first folder of `sys.path`
that has one: `tests.processes.kill_in_write_env` puts this folder first in
`PYTHONPATH`. With `KVID_TEST_KILL_IN_WRITE` set, a finder at the front of
`sys.meta_path` waits for `kvid.io.atomic` and installs the wrappers as soon as
the module has executed, before any kvid writer can use it. Nothing of kvid or
TensorFlow is imported here. A `sitecustomize` further down `sys.path`, which
this one hides, is run too.
"""

import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
_TARGET = "kvid.io.atomic"


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _InstallingLoader(importlib.abc.Loader):
    """Executes the module with its own loader, then installs the wrappers in it."""

    def __init__(self, loader, install):
        self._loader, self._install = loader, install

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        self._install(module)

    def __getattr__(self, name):  # get_source, get_filename, ... for tracebacks
        return getattr(self._loader, name)


class _Finder(importlib.abc.MetaPathFinder):
    """Finds `kvid.io.atomic` as the other finders do, with the installing loader; once."""

    def __init__(self, install):
        self._install = install

    def find_spec(self, fullname, path, target=None):
        if fullname != _TARGET:
            return None
        sys.meta_path.remove(self)
        for finder in sys.meta_path:
            spec = getattr(finder, "find_spec", lambda *_: None)(fullname, path, target)
            if spec is not None:
                spec.loader = _InstallingLoader(spec.loader, self._install)
                return spec
        return None


def _arm():
    kill_in_write = _load("_kvid_kill_in_write", os.path.join(_HERE, "..", "kill_in_write.py"))
    request = os.environ.get(kill_in_write.ENV)
    if not request:
        return
    sys.meta_path.insert(0, _Finder(lambda atomic: kill_in_write.install(atomic, request)))


def _run_hidden_sitecustomize():
    others = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", others)
    if spec is not None and spec.loader is not None:
        spec.loader.exec_module(importlib.util.module_from_spec(spec))


_arm()
_run_hidden_sitecustomize()
