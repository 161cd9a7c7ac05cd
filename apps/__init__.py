"""absl programs: each parses flags and calls one kvid function."""

from . import _console

with _console.quiet_start():
    # isort: off
    import kvid  # noqa: F401  (first: it imports TensorFlow with its oneDNN kernels on)
    import tensorflow as tf

    # isort: on
    tf.constant(0)  # TensorFlow finds its devices (and says it has no GPU) here

_console.quiet_logging()
