import json
import os

import keras
import numpy as np
import pytest

from kvid import plots
from kvid.planning import plan as planning
from kvid.planning.knee_point import knee_curve
from kvid.training import callbacks, train_lib
from tests.training import helpers


def knee_of(params):
    """The true maximum of a knee curve, found on a fine grid."""
    t = np.linspace(0, 200, 200_001)
    return t[np.argmax(knee_curve(params, t))]


@pytest.mark.parametrize(
    "params",
    [
        (0.8, -0.7, -0.3, 0.01, -5e-4),
        (0.6, -0.5, -0.8, 0.002, -2e-4),
        (0.9, -0.9, -0.1, 0.02, -1e-3),
    ],
)
@pytest.mark.parametrize("noise", [0.0, 0.004])
def test_knee_point_of_synthetic_curves(params, noise):
    expected = knee_of(params)
    epochs = int(expected) + 20
    rng = np.random.default_rng(0)
    values = knee_curve(params, np.arange(epochs)) + rng.normal(0, noise, epochs)
    knee = planning.fit_knee_point(values, delay=10)
    assert abs(knee.epoch - expected) <= (0.01 if noise == 0 else 2.0)
    assert knee.stop == (epochs - 1 > knee.epoch + 10)
    a2, a3, a5 = knee.params[1], knee.params[2], knee.params[4]
    assert a2 < 0 and a3 < 0 and a5 < 0


def test_knee_point_stops_only_past_the_delay():
    params = (0.8, -0.7, -0.3, 0.01, -5e-4)
    values = knee_curve(params, np.arange(40))
    knees = [planning.fit_knee_point(values[:n], delay=5) for n in range(1, 41)]
    first_stop = next(n for n, k in enumerate(knees, 1) if k.stop)
    assert first_stop - 1 == int(np.floor(knee_of(params) + 5)) + 1


def test_knee_point_fallbacks_never_raise():
    assert planning.fit_knee_point([0.3]) == planning.KneePoint(0.0, None, False)
    short = planning.fit_knee_point([0.1, 0.4, 0.3, 0.2], delay=1)
    assert (short.epoch, short.params, short.stop) == (1.0, None, True)
    flat = planning.fit_knee_point([0.5] * 12, delay=10)
    assert (flat.epoch, flat.stop) == (0.0, True)
    rising = planning.fit_knee_point(np.linspace(0.1, 0.9, 15), delay=3)
    assert rising.epoch > 14 and not rising.stop
    falling = planning.fit_knee_point(np.linspace(0.9, 0.1, 15), delay=3)
    assert falling.epoch < 1 and falling.stop


@pytest.mark.parametrize("values", [[], [[0.1, 0.2]], [0.1, float("nan")]])
def test_knee_point_rejects_invalid_values(values):
    with pytest.raises(ValueError, match="values"):
        planning.fit_knee_point(values)


def test_knee_point_stopping_restores_the_knee_epochs_weights():
    params = (0.8, -0.7, -0.3, 0.01, -5e-4)
    curve = knee_curve(params, np.arange(100))

    class Scripted(keras.callbacks.Callback):
        """Marks the weights with the epoch number and logs the scripted curve."""

        def on_epoch_end(self, epoch, logs):
            self.model.layers[-1].bias.assign([float(epoch)])
            logs["val_accuracy"] = float(curve[epoch])

    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    stopping = planning.KneePointStopping(delay=4)
    history = model.fit(
        np.zeros((4, 1)), np.zeros((4, 1)), epochs=100, verbose=0, callbacks=[Scripted(), stopping]
    )
    knee = knee_of(params)
    assert len(history.epoch) == int(np.floor(knee + 4)) + 2
    assert stopping.best_epoch == round(knee)
    assert stopping.best_value == pytest.approx(curve[round(knee)])
    np.testing.assert_array_equal(model.layers[-1].bias.numpy(), [stopping.best_epoch])


def test_knee_point_stopping_names_a_missing_metric():
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    with pytest.raises(ValueError, match="val_accuracy"):
        model.fit(
            np.zeros((2, 1)), np.zeros((2, 1)), verbose=0, callbacks=[planning.KneePointStopping()]
        )


def test_basic_and_extended_graphs():
    basic = planning.transition_graph([32, 16], [0.004, 0.04], ["consecutive"], extended=False)
    s = {
        (n, r): planning.TrainingState("consecutive", n, r) for n in (16, 32) for r in (0.04, 0.004)
    }
    assert basic.states == (s[16, 0.04], s[16, 0.004], s[32, 0.04], s[32, 0.004])
    assert basic.predecessors[s[16, 0.04]] == ()
    assert set(basic.predecessors[s[32, 0.004]]) == {s[16, 0.004], s[32, 0.04]}
    assert basic.finals == (s[32, 0.004],)
    extended = planning.transition_graph([16, 32], [0.04, 0.004], ["consecutive"])
    assert set(extended.predecessors[s[32, 0.004]]) == {s[16, 0.004], s[32, 0.04], s[16, 0.04]}
    both = planning.transition_graph([16, 32, 64], [0.1, 0.01, 0.001])
    assert len(both.states) == 18 and len(both.finals) == 2
    assert all(p.sampling == s.sampling for s in both.states for p in both.predecessors[s])


@pytest.mark.parametrize(
    "kwargs",
    [{"clip_lengths": []}, {"learning_rates": [0.1, 0.1]}, {"samplings": ["dense"]}],
)
def test_graph_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        planning.transition_graph(**{"clip_lengths": [8], "learning_rates": [0.1], **kwargs})


class MockRunner:
    """Scores a transition from a table (knee at epoch 1 unless `knees` says); records calls."""

    def __init__(self, scores, knees=None):
        self.scores = scores
        self.knees = knees or {}
        self.calls = []

    def __call__(self, start, target, weights):
        source = None if start is None else os.path.basename(start).split("__")[1]
        self.calls.append((source, target.name))
        with open(weights, "w") as f:
            f.write(target.name)
        score = self.scores.get((source, target.name), 0.5)
        knee = self.knees.get((source, target.name), 1)
        return [score - 0.1] * knee + [score, score - 0.05], knee


def name(sampling, frames, lr):
    return planning.TrainingState(sampling, frames, lr).name


def states(sampling):
    """The state names of a sampling's chain, by (frames, learning rate)."""
    return {(n, r): name(sampling, n, r) for n in (8, 16) for r in (0.1, 0.01)}


def edge(source, target):
    """A transition as `MockRunner` sees it: the source's weights file, the target's name."""
    return (f"{source}.weights.h5", target)


def test_dynamic_programming_picks_the_best_path(tmp_path):
    graph = planning.transition_graph([8, 16], [0.1, 0.01], extended=True)
    c, u = states("consecutive"), states("uniform")
    scores = {
        # consecutive: 8/0.1 -> 16/0.1 -> 16/0.01 is best (0.9); the direct jump gives 0.8.
        edge(c[8, 0.1], c[16, 0.1]): 0.7,
        edge(c[16, 0.1], c[16, 0.01]): 0.9,
        edge(c[8, 0.1], c[16, 0.01]): 0.8,
        edge(c[8, 0.1], c[8, 0.01]): 0.6,
        edge(c[8, 0.01], c[16, 0.01]): 0.85,
        # uniform's best final scores less.
        edge(u[8, 0.1], u[16, 0.01]): 0.88,
    }
    runner = MockRunner(scores)
    plan = planning.OptimizationPlanner(graph, runner, tmp_path).plan()
    assert [t.target.name for t in plan.path] == [c[8, 0.1], c[16, 0.1], c[16, 0.01]]
    assert plan.accuracy == 0.9 and [t.epochs for t in plan.path] == [2, 2, 2]
    assert plan.best[graph.finals[1]].accuracy == 0.88
    # every transition of the extended graph once: 2 starts + 2 x (1 + 1 + 3) transitions.
    assert len(runner.calls) == len(set(runner.calls)) == 12
    assert "total 6 epochs, accuracy 0.900" in plan.summary()
    record = json.loads((tmp_path / "plan.json").read_text())
    assert len(record["transitions"]) == 12

    # A second planner over the same folder trains nothing and finds the same plan.
    again = MockRunner(scores)
    resumed = planning.OptimizationPlanner(graph, again, tmp_path).plan()
    assert again.calls == [] and resumed.path == plan.path


def test_equally_accurate_paths_go_to_the_one_of_fewer_epochs(tmp_path):
    graph = planning.transition_graph([8, 16], [0.1, 0.01], ["consecutive"])
    c = states("consecutive")
    # Three ways to 16/0.01 score 1.0: via 8/0.01 in 4 + 6 epochs, via 16/0.1 in 2 + 1,
    # directly in 7 (after the 2 epochs from scratch to 8/0.1 in every case).
    scores = {edge(c[8, 0.1], c[8, 0.01]): 0.9, edge(c[8, 0.1], c[16, 0.1]): 0.9}
    knees = {edge(c[8, 0.1], c[8, 0.01]): 3}
    for source, knee in ((c[8, 0.01], 5), (c[16, 0.1], 0), (c[8, 0.1], 6)):
        scores[edge(source, c[16, 0.01])] = 1.0
        knees[edge(source, c[16, 0.01])] = knee
    plan = planning.OptimizationPlanner(graph, MockRunner(scores, knees), tmp_path).plan()
    assert [t.target.name for t in plan.path] == [c[8, 0.1], c[16, 0.1], c[16, 0.01]]
    assert [t.epochs for t in plan.path] == [2, 2, 1] and plan.accuracy == 1.0


def test_interrupted_plan_resumes_where_it_stopped(tmp_path):
    graph = planning.transition_graph([8, 16], [0.1, 0.01], ["consecutive"])

    class Interrupted(MockRunner):
        def __call__(self, start, target, weights):
            if len(self.calls) == 2:
                raise KeyboardInterrupt
            return super().__call__(start, target, weights)

    first = Interrupted({})
    with pytest.raises(KeyboardInterrupt):
        planning.OptimizationPlanner(graph, first, tmp_path).plan()
    rest = MockRunner({})
    planning.OptimizationPlanner(graph, rest, tmp_path).plan()
    assert (
        len(first.calls) == 2 and len(rest.calls) == 6 - 2
    )  # 1 start + 1 + 1 + 3 transitions in all
    assert not set(first.calls) & set(rest.calls)


def test_plan_figure_labels_every_transition(tmp_path):
    graph = planning.transition_graph([8, 16], [0.1, 0.01], extended=True)
    plan = planning.OptimizationPlanner(graph, MockRunner({}), tmp_path).plan()
    figure = plots.plan_figure(plan)
    texts = [t.get_text() for ax in figure.axes for t in ax.texts if t.get_text()]
    assert len(texts) == len(plan.transitions) == 12
    assert [ax.get_title() for ax in figure.axes] == ["consecutive sampling", "uniform sampling"]
    figure.savefig(tmp_path / "plan.png")
    assert (tmp_path / "plan.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plan_flags_take_the_demo_defaults_unless_given():
    from absl import flags

    from apps import _flags

    values = flags.FlagValues()
    _flags.define_config_flags(planning.PlanConfig, values, prefix="plan_")
    values(["prog", "--plan_clip_lengths=4,8", "--plan_learning_rates=0.1,0.01"])
    demo = _flags.config_from_flags(
        planning.PlanConfig, values, prefix="plan_", base=planning.PlanConfig.demo()
    )
    assert demo == planning.PlanConfig.demo(clip_lengths=(4, 8), learning_rates=(0.1, 0.01))
    assert (demo.delay, demo.max_epochs) == (4, 8)
    real = _flags.config_from_flags(planning.PlanConfig, values, prefix="plan_")
    assert (real.delay, real.max_epochs, real.clip_lengths) == (10, 100, (4, 8))


class Probe(keras.callbacks.Callback):
    """Counts each epoch's training batches and records the layers' dtype policies in `fit`."""

    def __init__(self, fail_after_epoch=None):
        super().__init__()
        self.fail_after_epoch = fail_after_epoch
        self.steps = []

    def on_train_begin(self, logs=None):
        convs = [c for c in self.model._flatten_layers() if isinstance(c, keras.layers.Conv3D)]
        self.policies = {layer.dtype_policy.name for layer in convs}
        self.output_dtype = self.model.layers[-1].dtype_policy.compute_dtype

    def on_epoch_begin(self, epoch, logs=None):
        self.steps.append(0)

    def on_train_batch_end(self, batch, logs=None):
        self.steps[-1] += 1

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.fail_after_epoch:  # after the backup, the log and the knee's save
            raise KeyboardInterrupt


def tiny_transitions(data_dir, work_dir, probe, *, max_epochs, clip_lengths=(4,), **overrides):
    """`KerasTransitions` of a tiny run: 12 training and 4 held-out videos, 4 a batch."""
    config = train_lib.TrainConfig(
        **helpers.TINY, data_dir=data_dir, work_dir=str(work_dir), **overrides
    )
    plan = planning.PlanConfig(
        clip_lengths=clip_lengths,
        learning_rates=(0.01,),
        samplings=("consecutive",),
        delay=10,
        max_epochs=max_epochs,
        holdout_split=0.25,
    )
    return planning.KerasTransitions(config, plan, data_dir, callbacks=[probe])


STATE = planning.TrainingState("consecutive", 4, 0.01)


def test_a_transition_trains_the_runs_clips_precision_budget_and_callbacks(tiny_data_dir, tmp_path):
    probe = Probe()
    transitions = tiny_transitions(
        tiny_data_dir,
        tmp_path,
        probe,
        max_epochs=3,
        clips_per_video=2,
        mixed_precision="mixed_bfloat16",
        time_budget=1e-3,  # the plan's budget is spent: the transition stops after 1 epoch
    )
    weights = str(tmp_path / "plan" / "weights" / f"scratch__{STATE.name}.weights.h5")
    curve, epoch = transitions(None, STATE, weights)
    assert probe.steps == [12 * 2 // 4]  # 2 clips of each of the 12 training videos
    assert probe.policies == {"mixed_bfloat16"} and probe.output_dtype == "float32"
    assert keras.mixed_precision.global_policy().name == "float32"  # restored
    assert len(curve) == 1 and epoch == 0 and os.path.exists(weights)
    folder = tmp_path / "plan" / "transitions" / f"scratch__{STATE.name}"
    backup = folder / "backup" / "worker_0"
    assert (backup / "latest.weights.h5").exists()
    assert json.loads((backup / "training_metadata.json").read_text())["epoch"] == 1
    header, rows = callbacks.read_log(folder / callbacks.TRAINING_LOG)
    assert [row[0] for row in rows] == ["0"]
    assert float(rows[0][header.index("val_accuracy")]) == pytest.approx(curve[0])
    assert (folder / callbacks.BEST_MODEL).exists() and not (folder / "epochs").exists()
    # Recorded: asked again (a plan killed before its plan.json), it trains nothing.
    assert transitions(None, STATE, weights) == (list(curve), epoch) and probe.steps == [6]


def test_a_killed_transition_resumes_from_its_last_epoch_with_its_curve(tiny_data_dir, tmp_path):
    weights = str(tmp_path / "plan" / "weights" / f"scratch__{STATE.name}.weights.h5")
    killed = Probe(fail_after_epoch=0)
    with pytest.raises(KeyboardInterrupt):
        tiny_transitions(tiny_data_dir, tmp_path, killed, max_epochs=2)(None, STATE, weights)
    assert killed.steps == [3] and not os.path.exists(weights)
    folder = tmp_path / "plan" / "transitions" / f"scratch__{STATE.name}"
    header, rows = callbacks.read_log(folder / callbacks.TRAINING_LOG)
    first = float(rows[0][header.index("val_accuracy")])
    rest = Probe()
    curve, epoch = tiny_transitions(tiny_data_dir, tmp_path, rest, max_epochs=2)(
        None, STATE, weights
    )
    assert rest.steps == [3]  # only epoch 1: epoch 0 came back from the backup
    assert len(curve) == 2 and curve[0] == pytest.approx(first)
    assert epoch == int(np.argmax(curve)) and os.path.exists(weights)
    assert [row[0] for row in callbacks.read_log(folder / callbacks.TRAINING_LOG)[1]] == ["0", "1"]


def test_fit_budget_fits_the_whole_plan_at_its_worst_case(tiny_data_dir, tmp_path, monkeypatch):
    # train_lib's own planning, given the plan's worst case: every transition (1 start and 1
    # transition here) at the longest clip for max_epochs, and 3 more first steps to trace
    # the second transition's model. Its plan (fixed here) then sets every transition's steps.
    asked = []

    def plan_to_budget(config, num_classes, preprocessing, train, steps, holdout, started, **kw):
        asked.append((config, steps, holdout, kw["non_scaling_steps"]))
        return train_lib.budget_lib.WorkPlan(
            size=32,
            steps_per_epoch=2,
            epochs=config.epochs,
            step_seconds=1.0,
            estimated_seconds=100.0,
            budget=config.time_budget,
            full_steps_per_epoch=steps,
            measured_size=32,
        )

    monkeypatch.setattr(train_lib, "plan_to_budget", plan_to_budget)
    probe = Probe()
    transitions = tiny_transitions(
        tiny_data_dir,
        tmp_path,
        probe,
        max_epochs=1,
        clip_lengths=(2, 4),
        time_budget=50.0,
        fit_budget=True,
    )
    start = planning.TrainingState("consecutive", 2, 0.01)
    state = transitions.state_config(start)
    ((worst, steps, holdout, non_scaling),) = asked
    assert (worst.num_frames, worst.epochs, steps, holdout) == (4, 2 * 1, 3, 4)
    assert worst.work_dir == str(tmp_path / "plan") and non_scaling == 4 + 3
    assert (state.num_frames, state.steps_per_epoch) == (2, 2)
    assert state.time_budget == 150.0  # the guard: 1.5 x the plan's estimate
    weights = str(tmp_path / "plan" / "weights" / f"scratch__{start.name}.weights.h5")
    transitions(None, start, weights)
    assert probe.steps == [2] and len(asked) == 1  # 2 of the 3 batches, planned once
