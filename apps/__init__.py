"""absl programs: each parses flags and calls one kvid function."""

# Before the apps import TensorFlow: oneDNN's kernels on every x86 CPU (kvid/_onednn.py).
from kvid import _onednn

_onednn.configure()
