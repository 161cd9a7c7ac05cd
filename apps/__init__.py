"""absl programs: each parses flags and calls one kvid function."""

from . import _console

with _console.quiet_start():
    import tensorflow as tf

    import kvid  # noqa: F401

    tf.constant(0)  # TensorFlow finds its devices (and says it has no GPU) here

_console.quiet_logging()
