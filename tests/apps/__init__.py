"""Each app runs as its own process, as users run it: absl flags of different apps share names."""

import re

from tests.processes import run_python


def run_app(name, *args, **kwargs):
    """Runs `python -m apps.<name> *args`; returns the finished process."""
    return run_python("-m", f"apps.{name}", *args, **kwargs)


# What a user would have to learn to ignore: warnings, error-level log lines, info chatter.
NOISE = re.compile(r"^([IWEF]\d{4} |WARNING|INFO:|.*Warning: |Traceback)", flags=re.M)


def assert_quiet(stderr):
    """The app's stderr holds its progress and its own lines only."""
    noise = [line for line in stderr.splitlines() if NOISE.match(line)]
    assert not noise, "\n".join(noise)
