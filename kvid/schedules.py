"""Learning-rate schedules that save with the model and resume mid-run.

Both start with a linear warm-up (torchvision's video recipe: from
`warmup_factor * base_lr` to `base_lr`), then either divide the rate by
`1 / gamma` at each milestone, or follow a half cosine down to `final_lr`.
They are functions of the optimizer's step counter, so a run restored from a
checkpoint continues on the same curve.
"""

from __future__ import annotations

import keras
from keras import ops


def scale_learning_rate(base_lr: float, batch_size: int, reference_batch_size: int) -> float:
    """The linear scaling rule: the rate grows in proportion to the global batch.

    Example:
        >>> kvid.schedules.scale_learning_rate(0.01, 64, reference_batch_size=16)
        0.04
    """
    if batch_size < 1 or reference_batch_size < 1:
        raise ValueError(
            "Batch sizes must be positive. Received: "
            f"batch_size={batch_size}, reference_batch_size={reference_batch_size}"
        )
    return base_lr * batch_size / reference_batch_size


def _check(base_lr, warmup_steps, warmup_factor):
    if base_lr <= 0:
        raise ValueError(f"`base_lr` must be positive. Received: base_lr={base_lr}")
    if warmup_steps < 0:
        raise ValueError(f"`warmup_steps` must be >= 0. Received: warmup_steps={warmup_steps}")
    if not 0 <= warmup_factor <= 1:
        raise ValueError(
            f"`warmup_factor` must be in [0, 1]. Received: warmup_factor={warmup_factor}"
        )


def _warmup(step, base_lr, warmup_steps, warmup_factor):
    """The warm-up rate at `step` (meaningful while `step < warmup_steps`)."""
    progress = step / max(warmup_steps, 1)
    return base_lr * (warmup_factor + (1.0 - warmup_factor) * progress)


@keras.saving.register_keras_serializable(package="kvid")
class WarmupStepDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up, then the rate multiplied by `gamma` at each milestone.

    Args:
        base_lr: the rate reached at the end of warm-up.
        milestones: increasing optimizer steps at which the rate is multiplied by `gamma`.
        gamma: the decay factor.
        warmup_steps: length of the linear warm-up in optimizer steps.
        warmup_factor: the warm-up starts at `warmup_factor * base_lr`.

    Example:
        torchvision's recipe: lr 0.01, 10 warm-up epochs, x0.1 at epochs 20, 30 and 40.

        >>> n = 100  # optimizer steps per epoch
        >>> schedule = kvid.schedules.WarmupStepDecay(
        ...     0.01, [20 * n, 30 * n, 40 * n], 0.1, warmup_steps=10 * n)
        >>> [round(float(schedule(epoch * n)), 6) for epoch in (0, 10, 25, 45)]
        [1e-05, 0.01, 0.001, 1e-05]
    """

    def __init__(self, base_lr, milestones, gamma=0.1, warmup_steps=0, warmup_factor=0.001):
        _check(base_lr, warmup_steps, warmup_factor)
        milestones = [int(m) for m in milestones]
        if milestones != sorted(milestones):
            raise ValueError(f"`milestones` must increase. Received: milestones={milestones}")
        self.base_lr = float(base_lr)
        self.milestones = milestones
        self.gamma = float(gamma)
        self.warmup_steps = int(warmup_steps)
        self.warmup_factor = float(warmup_factor)

    def __call__(self, step):
        """The learning rate at optimizer step `step`."""
        step = ops.cast(step, "float32")
        passed = sum((ops.cast(step >= m, "float32") for m in self.milestones), 0.0)
        decayed = self.base_lr * ops.power(self.gamma, passed)
        warm = _warmup(step, self.base_lr, self.warmup_steps, self.warmup_factor)
        return ops.where(step < self.warmup_steps, warm, decayed)

    def get_config(self):
        """The constructor arguments."""
        return {
            "base_lr": self.base_lr,
            "milestones": self.milestones,
            "gamma": self.gamma,
            "warmup_steps": self.warmup_steps,
            "warmup_factor": self.warmup_factor,
        }


@keras.saving.register_keras_serializable(package="kvid")
class WarmupCosineDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up, then a half cosine from `base_lr` to `final_lr` at `total_steps`.

    Args:
        base_lr: the rate reached at the end of warm-up.
        total_steps: the step at which the rate reaches `final_lr` (and stays).
        warmup_steps: length of the linear warm-up in optimizer steps.
        warmup_factor: the warm-up starts at `warmup_factor * base_lr`.
        final_lr: the rate at the end.
    """

    def __init__(self, base_lr, total_steps, warmup_steps=0, warmup_factor=0.001, final_lr=0.0):
        _check(base_lr, warmup_steps, warmup_factor)
        if total_steps <= warmup_steps:
            raise ValueError(
                "`total_steps` must exceed `warmup_steps`. Received: "
                f"total_steps={total_steps}, warmup_steps={warmup_steps}"
            )
        self.base_lr = float(base_lr)
        self.total_steps = int(total_steps)
        self.warmup_steps = int(warmup_steps)
        self.warmup_factor = float(warmup_factor)
        self.final_lr = float(final_lr)

    def __call__(self, step):
        """The learning rate at optimizer step `step`."""
        step = ops.cast(step, "float32")
        progress = (step - self.warmup_steps) / (self.total_steps - self.warmup_steps)
        progress = ops.clip(progress, 0.0, 1.0)
        cosine = 0.5 * (1.0 + ops.cos(progress * 3.141592653589793))
        decayed = self.final_lr + (self.base_lr - self.final_lr) * cosine
        warm = _warmup(step, self.base_lr, self.warmup_steps, self.warmup_factor)
        return ops.where(step < self.warmup_steps, warm, decayed)

    def get_config(self):
        """The constructor arguments."""
        return {
            "base_lr": self.base_lr,
            "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps,
            "warmup_factor": self.warmup_factor,
            "final_lr": self.final_lr,
        }


def make_schedule(
    kind: str,
    base_lr: float,
    *,
    steps_per_epoch: int,
    epochs: int,
    warmup_epochs: float = 0.0,
    milestones: tuple[int, ...] = (),
    gamma: float = 0.1,
    warmup_factor: float = 0.001,
):
    """Builds a schedule from epoch units: `"constant"`, `"step"` or `"cosine"`.

    Args:
        kind: the schedule's name.
        base_lr: the peak rate.
        steps_per_epoch: batches per epoch (Keras feeds schedules its batch
            counter, also under gradient accumulation).
        epochs: the length of the run (the cosine reaches 0 at its end).
        warmup_epochs: epochs of linear warm-up.
        milestones: epochs at which `"step"` multiplies the rate by `gamma`.
        gamma: the step decay factor.
        warmup_factor: the warm-up starts at `warmup_factor * base_lr`.

    Returns:
        A float for `"constant"`, otherwise a `LearningRateSchedule`.
    """
    warmup_steps = int(round(warmup_epochs * steps_per_epoch))
    if kind == "constant":
        return float(base_lr)
    if kind == "step":
        return WarmupStepDecay(
            base_lr,
            [m * steps_per_epoch for m in milestones],
            gamma,
            warmup_steps=warmup_steps,
            warmup_factor=warmup_factor,
        )
    if kind == "cosine":
        return WarmupCosineDecay(
            base_lr,
            max(epochs * steps_per_epoch, warmup_steps + 1),
            warmup_steps=warmup_steps,
            warmup_factor=warmup_factor,
        )
    raise ValueError(
        f"`schedule` must be 'constant', 'step' or 'cosine'. Received: schedule={kind!r}"
    )
