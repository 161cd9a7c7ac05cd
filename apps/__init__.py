"""absl programs: each parses flags and calls one kvid function."""

from . import _console

with _console.quiet_start():
    # kvid first: it imports TensorFlow with oneDNN's kernels on (`kvid._onednn`); imported
    # after TensorFlow, it warns, and training is several times slower on an AVX2 CPU.
    import kvid  # noqa: F401, I001

    import tensorflow as tf

    tf.constant(0)  # TensorFlow finds its devices (and says it has no GPU) here

_console.quiet_logging()
