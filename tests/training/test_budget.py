import pytest

from kvid.training import budget

# The main job: 3000 training clips and 1000 validation clips in batches of 16, 8 epochs.
JOB = dict(epochs=8, steps_per_epoch=188, validation_steps=63, evaluation_steps=126)


def test_a_fast_machine_keeps_the_whole_run():
    plan = budget.plan(0.2, budget=480, **JOB)
    assert (plan.size, plan.steps_per_epoch, plan.epochs) == (64, 188, 8)
    assert plan.fits and "the full dataset at 64px" in plan.describe()


def test_a_slower_machine_sees_fewer_clips_per_epoch_but_every_epoch():
    plan = budget.plan(0.3, budget=480, **JOB)
    assert plan.size == 64 and plan.epochs == 8
    assert 750 / 8 <= plan.steps_per_epoch < 188
    assert plan.fits and plan.estimated_seconds > 0.9 * 480
    assert f"{plan.steps_per_epoch} of 188 batches" in plan.describe()


def test_a_much_slower_machine_trains_smaller_clips_not_fewer_steps():
    plan = budget.plan(1.0, budget=480, **JOB)
    assert plan.size < 64 and plan.fits
    assert plan.steps_per_epoch * plan.epochs >= 750


def test_a_machine_too_slow_for_any_plan_overruns_rather_than_learning_too_little():
    plan = budget.plan(20.0, budget=480, **JOB)
    assert not plan.fits
    assert (plan.size, plan.steps_per_epoch) == (32, 94)
    assert "keeping the work that learns the task" in plan.describe()


@pytest.mark.parametrize("step", [0.05, 0.2, 0.3, 0.6, 1.0, 3.0])
def test_the_estimate_of_the_chosen_plan_is_what_it_reports(step):
    plan = budget.plan(step, budget=480, **JOB)
    assert plan.estimated_seconds == pytest.approx(
        budget.estimate_seconds(
            plan.step_seconds,
            epochs=plan.epochs,
            steps_per_epoch=plan.steps_per_epoch,
            validation_steps=JOB["validation_steps"],
            evaluation_steps=JOB["evaluation_steps"],
        )
    )


def test_measure_step_seconds_warms_up_then_takes_the_median():
    calls = []
    assert budget.measure_step_seconds(lambda: calls.append(1), warmup=2, repeats=3) >= 0
    assert len(calls) == 5
