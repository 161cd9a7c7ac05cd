"""Fit a training run to a machine: time one step first, then choose how much work to do.

The main job must end within minutes on any 2-core machine: an AVX-512 Xeon runs
its model's step (S3D-G alpha 0.25, 16 clips of 16x64x64) in about 0.2 s, an AVX2
EPYC in 0.25 s with oneDNN and 1.5 s without, and a shared machine slower still;
decoding and augmenting the clips then competes with the step for the same cores
(on the AVX2 EPYC a real step took twice the model's). A time budget that stops
training after whatever epoch it reached lets the machine decide the accuracy
(one epoch on the slow machine: val_accuracy 0.19). Instead the run times its
model's step and its input pipeline, then keeps every epoch of its schedule and
scales the work in each: first the clips per epoch, down to a floor of total
steps that learns the task, then the clip's side. Below that floor it overruns
the budget rather than train too little, and says so.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import time
from collections.abc import Callable, Iterable, Sequence

import numpy as np

# A forward pass (validation, evaluation) costs about a third of a training step's model time.
FORWARD_FRACTION = 1 / 3


@dataclasses.dataclass(frozen=True)
class WorkPlan:
    """The work a run chose.

    Attributes:
        size: clip side in pixels.
        steps_per_epoch: training batches per epoch.
        epochs: epochs (the schedule's length, unchanged).
        step_seconds: the model's training step at `size` (scaled from the
            measured size by pixel count).
        input_seconds: the input pipeline's time for one batch, measured.
        estimated_seconds: the run's predicted time in all: `reserved_seconds`
            plus training, validation and evaluation.
        budget: the seconds the plan was made for.
        full_steps_per_epoch: the batches of one pass over the training clips.
        measured_size: the side the step was timed at.
        reserved_seconds: time spent before planning, plus an estimate of the
            work that does not scale (tracing the training step, exporting).
    """

    size: int
    steps_per_epoch: int
    epochs: int
    step_seconds: float
    estimated_seconds: float
    budget: float
    full_steps_per_epoch: int
    measured_size: int
    input_seconds: float = 0.0
    reserved_seconds: float = 0.0

    @property
    def fits(self) -> bool:
        """Whether the estimate is within the budget."""
        return self.estimated_seconds <= self.budget

    def describe(self) -> str:
        """One line saying what was measured and chosen."""
        scaled = (
            "the full dataset"
            if self.steps_per_epoch >= self.full_steps_per_epoch
            else f"{self.steps_per_epoch} of {self.full_steps_per_epoch} batches"
        )
        line = (
            f"budget: step {self.step_seconds:.3f} s at {self.size}px "
            f"(measured at {self.measured_size}px) + input {self.input_seconds:.3f} s a batch; "
            f"{self.epochs} epochs of {scaled} at {self.size}px, about "
            f"{self.estimated_seconds:.0f} s of a {self.budget:.0f} s budget "
            f"({self.reserved_seconds:.0f} s of it spent or reserved before and after training)"
        )
        if not self.fits:
            line += "; too slow a machine for the budget: keeping the work that learns the task"
        return line


def estimate_seconds(
    step_seconds: float,
    *,
    epochs: int,
    steps_per_epoch: int,
    validation_steps: int,
    evaluation_steps: int = 0,
    input_seconds: float = 0.0,
) -> float:
    """Predicted seconds of training with per-epoch validation, then a final evaluation.

    A batch costs its model's time plus its input pipeline's: on a machine whose
    cores both run each, the two add up.
    """
    forward = step_seconds * FORWARD_FRACTION + input_seconds
    per_epoch = steps_per_epoch * (step_seconds + input_seconds) + validation_steps * forward
    return epochs * per_epoch + evaluation_steps * forward


def plan(
    step_seconds: float,
    *,
    budget: float,
    epochs: int,
    steps_per_epoch: int,
    validation_steps: int,
    evaluation_steps: int = 0,
    input_seconds: float = 0.0,
    reserved_seconds: float = 0.0,
    min_total_steps: int = 750,
    size: int = 64,
    sizes: Sequence[int] = (64, 48, 32),
) -> WorkPlan:
    """Chooses clips per epoch and clip side so the run fits `budget` seconds.

    Args:
        step_seconds: the model's training step at `size`, measured.
        budget: seconds for the whole run.
        epochs: epochs of the schedule (kept).
        steps_per_epoch: batches in one pass over the training clips.
        validation_steps: batches of one validation pass (after every epoch).
        evaluation_steps: batches of the final evaluation.
        input_seconds: the input pipeline's seconds per batch (decoding does not
            shrink with the clip side, so it is not scaled).
        reserved_seconds: seconds of the budget not available to training and
            evaluation (already spent, or reserved for tracing and export).
        min_total_steps: the fewest training steps to plan (the main job learns
            the built-in dataset in about 560 steps of 16 clips).
        size: the clip side `step_seconds` was measured at.
        sizes: the sides to try, largest first; a step's cost scales with pixels.

    Returns:
        The first `WorkPlan` that fits, in order of preference: every clip at `size`,
        fewer clips per epoch down to `min_total_steps`, then each smaller side.
        If none fits, the cheapest plan with `min_total_steps` (which overruns).
    """
    floor = min(steps_per_epoch, math.ceil(min_total_steps / epochs))
    candidates = []
    for side in [s for s in sizes if s <= size] or [size]:
        step = step_seconds * (side / size) ** 2

        def cost(steps, step=step):
            return reserved_seconds + estimate_seconds(
                step,
                epochs=epochs,
                steps_per_epoch=steps,
                validation_steps=validation_steps,
                evaluation_steps=evaluation_steps,
                input_seconds=input_seconds,
            )

        fixed = cost(0)
        per_step = (cost(steps_per_epoch) - fixed) / steps_per_epoch
        affordable = math.floor((budget - fixed) / per_step) if budget > fixed else 0
        steps = max(floor, min(steps_per_epoch, affordable))
        candidate = WorkPlan(
            size=side,
            steps_per_epoch=steps,
            epochs=epochs,
            step_seconds=step,
            estimated_seconds=cost(steps),
            budget=budget,
            full_steps_per_epoch=steps_per_epoch,
            measured_size=size,
            input_seconds=input_seconds,
            reserved_seconds=reserved_seconds,
        )
        if candidate.fits:
            return candidate
        candidates.append(candidate)
    return min(candidates, key=lambda c: c.estimated_seconds)


def measure_step_seconds(
    train_step: Callable[[], object], *, warmup: int = 2, repeats: int = 3
) -> float:
    """Median seconds of `train_step()` after `warmup` calls (the first one traces)."""
    for _ in range(warmup):
        train_step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        train_step()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def measure_input_seconds(batches: Iterable, *, warmup: int = 1, repeats: int = 10) -> float:
    """Mean seconds to draw a batch from `batches` (e.g. a `tf.data.Dataset`), alone.

    The first `warmup` batches (which start the pipeline's threads) are not
    timed; `repeats` is several times what the pipeline prefetches, so the
    batches ready in advance do not hide its rate. A dataset shorter than
    `warmup + repeats` batches is timed on what it has.
    """
    iterator = iter(batches)
    for _ in itertools.islice(iterator, warmup):
        pass
    start = time.perf_counter()
    drawn = sum(1 for _ in itertools.islice(iterator, repeats))
    return (time.perf_counter() - start) / drawn if drawn else 0.0
