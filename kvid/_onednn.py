"""Turns on TensorFlow's oneDNN kernels on every x86 CPU, before TensorFlow loads.

TensorFlow enables its oneDNN custom ops by default only on x86 CPUs with
AVX512_VNNI-class features. Elsewhere (e.g. an AVX2-only AMD EPYC) it runs
Eigen's kernels, and a kvid training step is up to 6x slower: S3D-G (alpha 0.25)
on 16 clips of 16x64x64 took 1.54 s a step with Eigen and 0.25 s with oneDNN
on a 2-core AVX2 EPYC. TensorFlow reads `TF_ENABLE_ONEDNN_OPTS` once, while it
is imported, so `kvid/__init__.py` imports TensorFlow through `import_tensorflow()`
first: the variable is set for that import only, and the environment is left
as the user had it (child processes import kvid and choose again).

This module imports nothing heavy: only the standard library.
"""

from __future__ import annotations

import os
import platform
import sys
import warnings
from collections.abc import Callable, Mapping, MutableMapping

ENV = "TF_ENABLE_ONEDNN_OPTS"
_X86 = ("x86_64", "amd64", "i386", "i686", "x86")
_warned = False


def _tensorflow_onednn_enabled() -> bool | None:
    """Whether the imported TensorFlow runs oneDNN's ops; None if it cannot tell."""
    try:
        from tensorflow.python.util import _pywrap_util_port
    except ImportError:  # a private module: a future TensorFlow may move it
        return None
    return bool(_pywrap_util_port.IsMklEnabled())


def configure(
    environ: MutableMapping[str, str] = os.environ,
    modules: Mapping[str, object] = sys.modules,
    machine: str | None = None,
    onednn_enabled: Callable[[], bool | None] = _tensorflow_onednn_enabled,
) -> str:
    """Sets `TF_ENABLE_ONEDNN_OPTS=1` if it is still in time and the user has not chosen.

    Args:
        environ: the environment to read and update.
        modules: the loaded modules, to tell whether TensorFlow is imported.
        machine: the CPU architecture; default `platform.machine()`.
        onednn_enabled: tells whether the loaded TensorFlow runs oneDNN's ops.

    Returns:
        What was done: `"enabled"`, `"user"` (the variable was set already, kept),
        `"not_x86"`, `"already_on"` or `"too_late"` (TensorFlow was imported
        first with oneDNN off; a warning says how to fix it, once per process).
    """
    global _warned
    if (machine or platform.machine()).lower() not in _X86:
        return "not_x86"
    if ENV in environ:
        return "user"
    if "tensorflow" not in modules:
        environ[ENV] = "1"
        return "enabled"
    if onednn_enabled() is not False:
        return "already_on"
    if not _warned:
        _warned = True
        warnings.warn(
            "TensorFlow was imported before kvid, with its oneDNN kernels off on this CPU: "
            "kvid's models train up to 6x slower. Set TF_ENABLE_ONEDNN_OPTS=1 in the "
            "environment, or import kvid before tensorflow and keras.",
            RuntimeWarning,
            stacklevel=3,
        )
    return "too_late"


def import_tensorflow(environ: MutableMapping[str, str] = os.environ) -> str:
    """Imports TensorFlow with oneDNN on (see `configure`), then restores `environ`.

    TensorFlow reads `TF_ENABLE_ONEDNN_OPTS` while it is imported, so the
    variable `configure` sets is removed again afterwards. Returns what
    `configure` did.
    """
    done = configure(environ)
    try:
        import tensorflow  # noqa: F401  (reads the variable, once)
    finally:
        if done == "enabled":
            environ.pop(ENV, None)
    return done
