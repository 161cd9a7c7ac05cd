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


def test_input_time_is_paid_by_every_batch_at_every_side():
    # Decoding does not shrink with the clip: a slow pipeline pushes the plan to fewer clips.
    fast = budget.plan(0.2, budget=480, **JOB)
    slow = budget.plan(0.2, budget=480, input_seconds=0.2, **JOB)
    assert slow.fits and slow.input_seconds == 0.2
    assert (slow.size, slow.steps_per_epoch) < (fast.size, fast.steps_per_epoch)
    assert slow.estimated_seconds == pytest.approx(
        budget.estimate_seconds(
            slow.step_seconds,
            epochs=8,
            steps_per_epoch=slow.steps_per_epoch,
            validation_steps=63,
            evaluation_steps=126,
            input_seconds=0.2,
        )
    )
    assert "+ input 0.200 s a batch" in slow.describe()


def test_reserved_time_is_taken_from_the_budget():
    whole = budget.plan(0.3, budget=480, **JOB)
    reserved = budget.plan(0.3, budget=480, reserved_seconds=120, **JOB)
    assert reserved.fits and reserved.steps_per_epoch < whole.steps_per_epoch
    assert reserved.estimated_seconds - 120 <= 360
    assert "120 s of it spent or reserved" in reserved.describe()


def test_measure_input_seconds_times_the_batches_after_the_warmup():
    assert budget.measure_input_seconds(range(5), warmup=1, repeats=10) >= 0  # 4 batches left
    assert budget.measure_input_seconds([], warmup=1, repeats=3) == 0.0
    drawn = []

    def batches():
        for i in range(100):
            drawn.append(i)
            yield i

    budget.measure_input_seconds(batches(), warmup=2, repeats=3)
    assert drawn == [0, 1, 2, 3, 4]


def test_measure_step_seconds_warms_up_then_takes_the_median():
    calls = []
    assert budget.measure_step_seconds(lambda: calls.append(1), warmup=2, repeats=3) >= 0
    assert len(calls) == 5
