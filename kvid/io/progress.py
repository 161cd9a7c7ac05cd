"""One progress reporter for kvid's long work: a `keras.utils.Progbar` on stderr.

Downloads of named weights, TFRecord conversion, writing the built-in dataset,
evaluation over a directory and video prediction all report through
`progress_bar`, so every bar looks the same, goes to the same place and is
turned off the same way (`enabled=False`, what the library functions'
`progress=` or `verbose=` arguments pass).

The bar is drawn on stderr: what an app prints on stdout is its result (a
report, a summary) and stays clean when redirected to a file. With Keras'
interactive logging off (`keras.config.disable_interactive_logging()`) the
bar goes to absl logging instead, as Keras' own bars do.

This module imports nothing of kvid.
"""

from __future__ import annotations

import contextlib
import sys

import keras
from absl import logging


class ProgressBar:
    """A `keras.utils.Progbar` drawn on stderr; made by `progress_bar`.

    Attributes:
        total: the units of work expected, `None` if unknown.
        unit_name: what one unit is (`"video"`, `"frame"`, `"B"`).
        enabled: whether anything is shown.
        current: the units done so far.
    """

    def __init__(
        self,
        total: float | None,
        unit_name: str,
        *,
        enabled: bool = True,
        title: str | None = None,
        interval: float | None = None,
    ):
        self.total = total
        self.unit_name = unit_name
        self.enabled = enabled
        self.current = 0
        if interval is None:
            # A terminal gets a lively bar; a log file fewer redrawn lines.
            interval = 0.1 if getattr(sys.stderr, "isatty", lambda: False)() else 1.0
        # Every value is shown as it is passed (a count), not averaged over the steps.
        self._bar = keras.utils.Progbar(
            total, verbose=1, interval=interval, stateless_metrics=(), unit_name=unit_name
        )
        if enabled and title:
            if keras.config.is_interactive_logging_enabled():
                print(title, file=sys.stderr, flush=True)
            else:
                logging.info(title)

    def update(self, current: float, **values: float) -> None:
        """Moves the bar to `current` units done; `values` are shown beside it (`skipped=2`)."""
        self.current = current
        self._draw(values, finalize=False)

    def add(self, n: float = 1, **values: float) -> None:
        """Moves the bar `n` units on."""
        self.update(self.current + n, **values)

    def finish(self, **values: float) -> None:
        """Draws the last line, at the units done, which become the total.

        A stream of unknown or estimated length (a video's declared frame
        count) so ends at `N/N`; the bar is not meant to be updated after.
        """
        self.total = self._bar.target = self.current
        self._draw(values, finalize=True)

    def _draw(self, values, finalize: bool) -> None:
        if not self.enabled:
            return
        # Progbar writes to sys.stdout; the bar belongs on stderr (see the module's docstring).
        with contextlib.redirect_stdout(sys.stderr):
            self._bar.update(self.current, list(values.items()), finalize=finalize)


def progress_bar(
    total: float | None,
    unit_name: str = "step",
    *,
    enabled: bool = True,
    title: str | None = None,
    interval: float | None = None,
) -> ProgressBar:
    """The progress bar of one piece of long work: every kvid bar is made here.

    Args:
        total: the units of work expected; `None` (or 0) when unknown, e.g. a
            stream or a download without a length.
        unit_name: what one unit is, shown in the speed (`12ms/frame`).
        enabled: `False` shows nothing (the bar still counts).
        title: a line shown once above the bar, e.g. what is being downloaded.
        interval: seconds between redraws; default 0.1 on a terminal, 1 otherwise.

    Returns:
        A `ProgressBar`: `update(current)` or `add(n)` as work is done, then
        `finish()` once it is all done.

    Example:
        >>> videos = ["a.mp4", "b.mp4", "c.mp4"]
        >>> bar = kvid.io.progress_bar(len(videos), "video", title="Converting 3 videos")
        >>> for video in videos:
        ...     bar.add(1)  # after converting `video`
        >>> bar.finish()
    """
    return ProgressBar(total, unit_name, enabled=enabled, title=title, interval=interval)
