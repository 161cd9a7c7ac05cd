"""A console with nothing to ignore: TensorFlow's start-up chatter stays below warnings.

Importing TensorFlow prints info lines (oneDNN is on, no CUDA driver, the CPU's
instructions) and, on a machine without a GPU, an error-level `failed call to
cuInit`, none of which a user can act on. The apps start TensorFlow inside
`quiet_start`, which keeps these lines from the console and passes every other
line through; `--verbosity` (or `-v`) on the command line shows them all.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from collections.abc import Iterator

CHATTER = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called"
    r"|[IW]\d{4} "
    r"|To enable the following instructions"
    r"|E\d{4} .*cuda_platform\.cc:\d+\] failed call to cuInit)"
)


def verbose(argv) -> bool:
    """Whether the command line asks for absl's verbosity."""
    return any(arg.startswith(("--verbosity", "-v")) for arg in argv[1:])


@contextlib.contextmanager
def quiet_start(argv=sys.argv) -> Iterator[None]:
    """Keeps TensorFlow's start-up chatter (see `CHATTER`) off stderr while the block runs."""
    if verbose(argv):
        yield
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")  # later C++ info lines too
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            lines = captured.read().decode(errors="replace").splitlines(keepends=True)
            sys.stderr.write("".join(line for line in lines if not CHATTER.match(line)))
            sys.stderr.flush()


def quiet_logging(argv=sys.argv) -> None:
    """Absl's (and TensorFlow's Python) info lines off unless `--verbosity` is given."""
    from absl import app, logging

    if not verbose(argv):
        # After absl has parsed the flags (and set its verbosity from them), before `main`.
        app.call_after_init(lambda: logging.set_verbosity(logging.WARNING))
