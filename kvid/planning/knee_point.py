"""Knee-point stopping ("Optimization Planning for 3D ConvNets", section 3.3).

After every epoch the validation curve is fitted by the unimodal

    f(t) = a1 + a2 * exp(a3 * t) + a4 * t + a5 * t**2,    a2, a3, a5 < 0,

a bounded increasing part (convergence) plus a concave quadratic (over-fitting).
Its maximum `t*` is the knee point: training stops once the epoch `t` passes
`t* + delay` and keeps the weights of epoch `t*`.
"""

from __future__ import annotations

import dataclasses
import math
import os
import warnings

import keras
import numpy as np
from scipy import optimize

from kvid.io import atomic

# The fit has five parameters: below this many points it is not determined.
MIN_FIT_POINTS = 5
# Strict upper bounds for a2, a3, a5 (the paper's "< 0").
_NEGATIVE = -1e-9
# A curve whose values all lie within this (relative) spread is flat: its knee is epoch 0.
_FLAT = 1e-9
# Starting decay rates: a fit from each, the best one kept (the fit is not convex).
_START_RATES = (-0.1, -0.5, -2.0)


@dataclasses.dataclass(frozen=True)
class KneePoint:
    """The knee of a validation curve.

    Attributes:
        epoch: the knee `t*`, the fitted curve's maximum (0-based, may be
            fractional; may lie beyond the last epoch while the curve still rises).
        params: the fitted `(a1, a2, a3, a4, a5)`, or `None` when the curve had
            fewer than `MIN_FIT_POINTS` points or the fit failed and `epoch` is the
            best observed epoch instead.
        stop: whether training should stop: the last epoch is past `epoch + delay`.
    """

    epoch: float
    params: tuple[float, ...] | None
    stop: bool

    @property
    def best_epoch(self) -> int:
        """The observed epoch whose weights to keep: `epoch` rounded."""
        return int(round(self.epoch))


def knee_curve(params, t):
    """The fitted function `a1 + a2 * exp(a3 * t) + a4 * t + a5 * t**2` at `t`."""
    a1, a2, a3, a4, a5 = params
    t = np.asarray(t, dtype=np.float64)
    return a1 + a2 * np.exp(a3 * t) + a4 * t + a5 * t**2


def fit_knee_point(values, delay: float = 10) -> KneePoint:
    """Fits the knee-point curve to per-epoch validation values.

    Args:
        values: the validation metric after each epoch (`values[0]` is epoch 0;
            higher is better).
        delay: epochs to keep training past the knee (`T`, 10 in the paper).

    Returns:
        A `KneePoint`. Fallbacks, so valid input never raises: with fewer than
        `MIN_FIT_POINTS` values, a flat curve, or when no fit converges, the knee
        is the best observed epoch (the first of equal ones: a flat curve's knee is
        epoch 0). A still-rising curve's knee lies past its end (`stop` is False).

    Raises:
        ValueError: if `values` is empty, not one-dimensional or not finite.
    """
    y = np.asarray(values, dtype=np.float64)
    if y.ndim != 1 or y.size == 0 or not np.all(np.isfinite(y)):
        raise ValueError(
            "`values` must be a non-empty 1-D sequence of finite numbers. "
            f"Received: values={values}"
        )
    last = y.size - 1
    fits = y.size >= MIN_FIT_POINTS and np.ptp(y) > _FLAT * max(1.0, float(np.abs(y).max()))
    params = _fit(y) if fits else None
    epoch = float(np.argmax(y)) if params is None else _argmax(params)
    return KneePoint(epoch=epoch, params=params, stop=last > epoch + delay)


def _fit(y):
    """Bounded least squares (trust-region reflective) from a few starts; None if none fits."""
    t = np.arange(y.size, dtype=np.float64)
    scale = max(float(np.ptp(y)), 1e-3)
    lower = (-np.inf, -np.inf, -50.0, -np.inf, -np.inf)
    upper = (np.inf, _NEGATIVE, _NEGATIVE, np.inf, _NEGATIVE)
    best = None
    for rate in _START_RATES:
        start = (float(y.max()), -scale, rate, 0.0, -1e-6 * scale)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            try:
                fit = optimize.least_squares(
                    lambda a: knee_curve(a, t) - y, start, bounds=(lower, upper), method="trf"
                )
            except (ValueError, np.linalg.LinAlgError):
                continue
        if np.all(np.isfinite(fit.x)) and (best is None or fit.cost < best.cost):
            best = fit
    return None if best is None else tuple(float(a) for a in best.x)


def _argmax(params) -> float:
    """The maximum of the (strictly concave) fitted curve over `t >= 0`."""
    _, a2, a3, a4, a5 = params

    def slope(t):
        return a2 * a3 * math.exp(a3 * t) + a4 + 2 * a5 * t

    if slope(0.0) <= 0:
        return 0.0
    high = 1.0
    while slope(high) > 0:
        high *= 2
        if high > 1e9:
            return math.inf
    return float(optimize.brentq(slope, 0.0, high))


class KneePointStopping(keras.callbacks.Callback):
    """Stops at the knee point of a validation metric and keeps that epoch's weights.

    After each epoch it fits `fit_knee_point` to the monitored metric; once the
    epoch is past `t* + delay` it stops. At the end of training (stopped or out
    of epochs) the model gets the weights of the observed epoch nearest `t*`.

    Alone, the weights of every epoch are kept in memory until then. In a run
    that resumes (`kvid.training.callbacks.default_callbacks`), pass its
    `EpochLog` and a `weights_dir`, and put this callback after them: a
    resumed `fit` then starts its curve with the restored epochs' logged
    values, and every epoch's weights are files in `weights_dir`, so the knee
    may be an epoch trained before the restart.

    Args:
        monitor: the logged metric (higher is better), e.g. `"val_accuracy"`.
        delay: epochs to train past the knee.
        log: the run's `kvid.training.callbacks.EpochLog` (needs `weights_dir`).
        weights_dir: where each epoch's weights go, `epoch_<n>.weights.h5`.

    Attributes:
        values: the monitored metric of every epoch so far.
        knee_point: the last `KneePoint`.
        best_epoch: the epoch whose weights the model ends with.
        best_value: the monitored metric at `best_epoch`.
    """

    def __init__(
        self,
        monitor: str = "val_accuracy",
        delay: float = 10,
        *,
        log=None,
        weights_dir: str | os.PathLike | None = None,
    ):
        super().__init__()
        if log is not None and weights_dir is None:
            raise ValueError(
                "A resumed curve needs the weights of its earlier epochs: pass `weights_dir` "
                "with `log`."
            )
        self.monitor = monitor
        self.delay = delay
        self.log = log
        self.weights_dir = None if weights_dir is None else os.fspath(weights_dir)

    def epoch_weights(self, epoch: int) -> str:
        """The file of `epoch`'s weights in `weights_dir`."""
        return os.path.join(self.weights_dir, f"epoch_{epoch}.weights.h5")

    def on_train_begin(self, logs=None):
        """Starts the curve: empty, or the restored epochs' values from the log."""
        self.values = []
        self._weights = []
        self.knee_point = None
        self.best_epoch = None
        self.best_value = None
        if self.log is None:
            return
        rows = sorted(self.log.rows, key=lambda row: int(row["epoch"]))
        if [int(row["epoch"]) for row in rows] != list(range(len(rows))):
            raise ValueError(
                f"{self.log.filename} does not log every restored epoch once: cannot resume "
                "the knee-point curve."
            )
        self.values = [float(row[self.monitor]) for row in rows]
        if self.values:
            last = len(self.values) - 1
            if not os.path.exists(self.epoch_weights(last)):
                # Killed after the epoch's backup, before its weights here: the model was
                # restored from that backup, so it has them.
                self._save(last)
            self.knee_point = fit_knee_point(self.values, self.delay)

    def _save(self, epoch):
        os.makedirs(self.weights_dir, exist_ok=True)
        with atomic.atomic_path(self.epoch_weights(epoch), keep_extension=True) as temporary:
            self.model.save_weights(temporary)

    def on_epoch_end(self, epoch, logs=None):
        """Records the epoch's metric and weights; stops past the knee."""
        logs = logs or {}
        if self.monitor not in logs:
            raise ValueError(
                f"KneePointStopping monitors `{self.monitor}`, which is not among the logged "
                f"metrics {sorted(logs)}: pass validation data to `fit`."
            )
        self.values.append(float(logs[self.monitor]))
        if self.weights_dir is None:
            self._weights.append(self.model.get_weights())
        else:
            self._save(epoch)
        self.knee_point = fit_knee_point(self.values, self.delay)
        if self.knee_point.stop:
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        """Restores the weights of the knee epoch."""
        if not self.values:
            return
        self.best_epoch = min(self.knee_point.best_epoch, len(self.values) - 1)
        self.best_value = self.values[self.best_epoch]
        if self.weights_dir is None:
            self.model.set_weights(self._weights[self.best_epoch])
        else:
            self.model.load_weights(self.epoch_weights(self.best_epoch))
        self._weights = []
