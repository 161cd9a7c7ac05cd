"""Each app runs as its own process, as users run it: absl flags of different apps share names."""

from tests.processes import run_python


def run_app(name, *args, **kwargs):
    """Runs `python -m apps.<name> *args`; returns the finished process."""
    return run_python("-m", f"apps.{name}", *args, **kwargs)
