import math

import keras
import numpy as np
import pytest

from kvid import schedules


def rates(schedule, steps):
    return np.array([float(schedule(s)) for s in steps])


def test_step_decay_matches_the_torchvision_recipe_by_hand():
    # base 0.01, warm-up 10 steps from 0.001 * base, x0.1 at steps 20 and 30.
    schedule = schedules.WarmupStepDecay(0.01, [20, 30], 0.1, warmup_steps=10)
    got = rates(schedule, [0, 5, 10, 19, 20, 29, 30, 100])
    start = 0.01 * 0.001
    expected = [start, start + (0.01 - start) * 0.5, 0.01, 0.01, 0.001, 0.001, 1e-4, 1e-4]
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_cosine_by_hand():
    schedule = schedules.WarmupCosineDecay(1.0, total_steps=110, warmup_steps=10, warmup_factor=0)
    got = rates(schedule, [0, 5, 10, 35, 60, 110, 200])
    expected = [0, 0.5, 1.0, 0.5 * (1 + math.cos(math.pi / 4)), 0.5, 0.0, 0.0]
    np.testing.assert_allclose(got, expected, atol=1e-6)


@pytest.mark.parametrize(
    "schedule",
    [
        schedules.WarmupStepDecay(0.1, [4, 8], 0.5, warmup_steps=2),
        schedules.WarmupCosineDecay(0.1, 20, warmup_steps=3, final_lr=0.01),
    ],
)
def test_schedules_survive_a_saved_optimizer(schedule):
    config = keras.optimizers.serialize(keras.optimizers.SGD(learning_rate=schedule))
    assert config["config"]["learning_rate"]["registered_name"].startswith("kvid>")
    restored = keras.optimizers.deserialize(config)._learning_rate
    assert type(restored) is type(schedule)
    np.testing.assert_allclose(rates(restored, range(25)), rates(schedule, range(25)))


def test_make_schedule_counts_epochs_in_steps():
    schedule = schedules.make_schedule(
        "step", 0.02, steps_per_epoch=10, epochs=45, warmup_epochs=1, milestones=(20, 30)
    )
    assert schedule.warmup_steps == 10 and schedule.milestones == [200, 300]
    assert schedules.make_schedule("constant", 0.5, steps_per_epoch=3, epochs=2) == 0.5
    with pytest.raises(ValueError, match="schedule='linear'"):
        schedules.make_schedule("linear", 0.1, steps_per_epoch=1, epochs=1)


def test_linear_scaling_rule():
    assert schedules.scale_learning_rate(0.01, 64, 16) == pytest.approx(0.04)
    with pytest.raises(ValueError, match="batch_size=0"):
        schedules.scale_learning_rate(0.01, 0, 16)


def test_bad_schedule_arguments_are_named():
    with pytest.raises(ValueError, match="milestones=\\[5, 2\\]"):
        schedules.WarmupStepDecay(0.1, [5, 2])
    with pytest.raises(ValueError, match="total_steps=5, warmup_steps=5"):
        schedules.WarmupCosineDecay(0.1, 5, warmup_steps=5)
