"""Optimization planning ("Optimization Planning for 3D ConvNets", ICML 2021, section 3).

A training *state* fixes the sampling strategy, the clip length and the learning
rate. A *transition* `S_i -> S_j` fine-tunes the best model of `S_i` with the
hyper-parameters of `S_j` until its knee point (`kvid.planning.knee_point`) and
scores it on a held-out split of the training set. States are explored in
topological order of a transition graph, and dynamic programming keeps, for each
state, the predecessor whose transition scored best:
`P(S_j) = <P(S_i*), S_j>, i* = argmax_i V(S_i -> S_j)`. The plan's result is the
better of the final states (one per sampling strategy). Equal scores go to the
path of fewer epochs (the cheaper schedule to train again).

Transition graphs (figure 1 of the paper): sampling strategies never mix; training
starts at the shortest clip and the highest learning rate; a transition lengthens
the clip by one step or lowers the learning rate by one step (the *basic* graph),
or, in the *extended* graph, may also do both at once.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from collections.abc import Callable, Sequence

import keras

from kvid import plots
from kvid.io import atomic
from kvid.planning.knee_point import KneePoint, KneePointStopping, fit_knee_point
from kvid.preprocessing import SAMPLINGS
from kvid.training import callbacks as callbacks_lib
from kvid.training import strategy as strategy_lib
from kvid.training import train_lib

PLAN_RECORD = "plan.json"
TRANSITION_RECORD = "transition.json"

__all__ = [
    "KneePoint",
    "KneePointStopping",
    "OptimizationPlanner",
    "Plan",
    "TrainingState",
    "Transition",
    "TransitionGraph",
    "fit_knee_point",
    "transition_graph",
]


@dataclasses.dataclass(frozen=True)
class TrainingState:
    """The hyper-parameters a model trains with between two transitions."""

    sampling: str
    num_frames: int
    learning_rate: float

    @property
    def name(self) -> str:
        """A readable, file-name-safe key, e.g. `consecutive_16f_lr0.04`."""
        return f"{self.sampling}_{self.num_frames}f_lr{self.learning_rate:g}"


@dataclasses.dataclass(frozen=True)
class TransitionGraph:
    """States in topological order and each state's possible predecessors.

    Attributes:
        states: every state, each after all of its predecessors.
        predecessors: state -> the states a transition into it may start from
            (empty for the start states, which train from scratch).
        finals: the last state of each sampling strategy.
        clip_lengths: the clip lengths, ascending.
        learning_rates: the learning rates, descending.
    """

    states: tuple[TrainingState, ...]
    predecessors: dict[TrainingState, tuple[TrainingState, ...]]
    finals: tuple[TrainingState, ...]
    clip_lengths: tuple[int, ...]
    learning_rates: tuple[float, ...]


def transition_graph(
    clip_lengths: Sequence[int],
    learning_rates: Sequence[float],
    samplings: Sequence[str] = SAMPLINGS,
    extended: bool = True,
) -> TransitionGraph:
    """The basic or extended transition graph over the given hyper-parameters.

    Args:
        clip_lengths: candidate clip lengths (any order; used ascending).
        learning_rates: candidate learning rates (any order; used descending).
        samplings: sampling strategies, each a separate chain of states.
        extended: also allow transitions that lengthen the clip and lower the
            learning rate at once (the paper's experiments use this graph).

    Returns:
        A `TransitionGraph`.

    Raises:
        ValueError: on empty, repeated or non-positive values, or an unknown sampling.
    """
    lengths = tuple(sorted(int(n) for n in clip_lengths))
    rates = tuple(sorted((float(r) for r in learning_rates), reverse=True))
    for name, values in (("clip_lengths", lengths), ("learning_rates", rates)):
        if not values or len(set(values)) != len(values) or min(values) <= 0:
            raise ValueError(
                f"`{name}` must be distinct positive numbers. Received: {name}={values}"
            )
    unknown = sorted(set(samplings) - set(SAMPLINGS))
    if not samplings or unknown:
        raise ValueError(f"`samplings` must be among {SAMPLINGS}. Received: samplings={samplings}")
    steps = [(1, 0), (0, 1)] + ([(1, 1)] if extended else [])
    cells = sorted(
        ((i, j) for i in range(len(lengths)) for j in range(len(rates))),
        key=lambda cell: (sum(cell), cell),
    )
    states, predecessors, finals = [], {}, []
    for sampling in samplings:

        def state(i, j, sampling=sampling):
            return TrainingState(sampling, lengths[i], rates[j])

        for i, j in cells:
            states.append(state(i, j))
            predecessors[state(i, j)] = tuple(
                state(i - di, j - dj) for di, dj in steps if i >= di and j >= dj
            )
        finals.append(state(len(lengths) - 1, len(rates) - 1))
    return TransitionGraph(tuple(states), predecessors, tuple(finals), lengths, rates)


@dataclasses.dataclass(frozen=True)
class Transition:
    """One explored transition and its result.

    Attributes:
        source: the state whose best weights it starts from (`None`: from scratch).
        target: the state whose hyper-parameters it trains with.
        accuracy: held-out accuracy at its knee point, `V(source -> target)`.
        epochs: epochs trained until the knee point (the weights kept).
        curve: held-out accuracy after each epoch it trained.
        weights: the file of the weights at its knee point.
    """

    source: TrainingState | None
    target: TrainingState
    accuracy: float
    epochs: int
    curve: tuple[float, ...]
    weights: str

    def to_json(self) -> dict:
        """A JSON-serialisable dict."""
        record = dataclasses.asdict(self)
        record["curve"] = list(self.curve)
        return record

    @classmethod
    def from_json(cls, record: dict) -> Transition:
        """Inverse of `to_json`."""
        source = record["source"]
        return cls(
            source=None if source is None else TrainingState(**source),
            target=TrainingState(**record["target"]),
            accuracy=float(record["accuracy"]),
            epochs=int(record["epochs"]),
            curve=tuple(record["curve"]),
            weights=record["weights"],
        )


# run_transition(source_weights or None, target state, weights file to write) ->
# (held-out accuracy per epoch, knee-point epoch whose weights were written).
TransitionRunner = Callable[[str | None, TrainingState, str], tuple[Sequence[float], int]]


@dataclasses.dataclass(frozen=True)
class Plan:
    """The planner's result.

    Attributes:
        path: the chosen transitions from scratch to the best final state.
        best: for every state, the transition that reached it best.
        transitions: every explored transition, in the order explored.
        graph: the graph explored.
    """

    path: tuple[Transition, ...]
    best: dict[TrainingState, Transition]
    transitions: tuple[Transition, ...]
    graph: TransitionGraph

    @property
    def accuracy(self) -> float:
        """Held-out accuracy of the planned model."""
        return self.path[-1].accuracy

    @property
    def weights(self) -> str:
        """The file of the planned model's weights."""
        return self.path[-1].weights

    def summary(self) -> str:
        """The path, one state a line, with epochs and held-out accuracy."""
        lines = [
            f"{t.target.name}: {t.epochs} epochs, accuracy {t.accuracy:.3f}" for t in self.path
        ]
        total = sum(t.epochs for t in self.path)
        return "\n".join(lines + [f"total {total} epochs, accuracy {self.accuracy:.3f}"])


class OptimizationPlanner:
    """Explores a transition graph and finds the best training path by dynamic programming.

    Args:
        graph: the `TransitionGraph` to explore.
        run_transition: trains one transition: called with the source state's
            best weights file (`None` for a start state), the target state and
            the file to write the knee-point weights to; returns the held-out
            accuracy after each epoch and the epoch whose weights it wrote.
        work_dir: where the record (`plan.json`) and the transitions' weights go.
            Transitions already in the record are not trained again, so an
            interrupted plan resumes where it stopped.
    """

    def __init__(self, graph: TransitionGraph, run_transition: TransitionRunner, work_dir: str):
        self.graph = graph
        self.run_transition = run_transition
        self.work_dir = os.fspath(work_dir)

    def plan(self) -> Plan:
        """Explores every transition in topological order; returns the `Plan`."""
        os.makedirs(os.path.join(self.work_dir, "weights"), exist_ok=True)
        done = {(t.source, t.target): t for t in self._read_record()}
        explored, best, epochs = [], {}, {}  # epochs: of the best path to each state

        def path_epochs(transition):
            before = 0 if transition.source is None else epochs[transition.source]
            return before + transition.epochs

        for target in self.graph.states:
            sources = self.graph.predecessors[target] or (None,)
            candidates = []
            for source in sources:
                key = (source, target)
                if key not in done:
                    done[key] = self._explore(source, target, best)
                candidates.append(done[key])
                explored.append(done[key])
                self._write_record(explored)
            best[target] = max(candidates, key=lambda t: (t.accuracy, -path_epochs(t)))
            epochs[target] = path_epochs(best[target])
        final = max(
            (best[s] for s in self.graph.finals), key=lambda t: (t.accuracy, -epochs[t.target])
        )
        return Plan(self._path(final, best), best, tuple(explored), self.graph)

    def _explore(self, source, target, best) -> Transition:
        start = None if source is None else best[source].weights
        name = f"{'scratch' if source is None else source.name}__{target.name}.weights.h5"
        weights = os.path.join(self.work_dir, "weights", name)
        curve, epoch = self.run_transition(start, target, weights)
        curve = tuple(float(v) for v in curve)
        return Transition(source, target, curve[epoch], epoch + 1, curve, weights)

    @staticmethod
    def _path(final, best):
        path = [final]
        while path[0].source is not None:
            path.insert(0, best[path[0].source])
        return tuple(path)

    def _record_path(self):
        return os.path.join(self.work_dir, PLAN_RECORD)

    def _read_record(self):
        if not os.path.exists(self._record_path()):
            return []
        with open(self._record_path()) as f:
            return [Transition.from_json(r) for r in json.load(f)["transitions"]]

    def _write_record(self, transitions):
        with atomic.atomic_file(self._record_path()) as f:
            json.dump({"transitions": [t.to_json() for t in transitions]}, f, indent=1)


@dataclasses.dataclass(frozen=True)
class PlanConfig:
    """What `plan_training` explores, on top of a `TrainConfig`.

    Attributes:
        clip_lengths: candidate clip lengths (the paper: 16, 32, 128 on Kinetics).
        learning_rates: candidate learning rates (the paper: 0.04, 0.004, 0.0004).
        samplings: sampling strategies, each its own chain of states.
        extended: the extended transition graph (both changes in one transition).
        delay: epochs past the knee point before a transition stops (`T`).
        max_epochs: at most this many epochs per transition.
        holdout_split: the fraction of the training videos held out to score
            transitions; the run's validation split is never used to plan.
    """

    clip_lengths: tuple[int, ...] = (8, 16)
    learning_rates: tuple[float, ...] = (1e-3, 1e-4)
    samplings: tuple[str, ...] = SAMPLINGS
    extended: bool = True
    delay: int = 10
    max_epochs: int = 100
    holdout_split: float = 0.2

    @classmethod
    def demo(cls, **overrides) -> PlanConfig:
        """A plan small enough for the built-in dataset: a 4-epoch delay, at most 8 each.

        S3D-G stays near chance for its first 2-3 epochs there: a shorter delay
        stops transitions on a flat curve before they learn.
        """
        return cls(**{"delay": 4, "max_epochs": 8, **overrides})

    def graph(self) -> TransitionGraph:
        """The transition graph these candidates make."""
        return transition_graph(
            self.clip_lengths, self.learning_rates, self.samplings, self.extended
        )


class KerasTransitions:
    """Trains transitions as `kvid.training.train` trains a run (`kvid.training.TrainConfig`).

    A transition is a run of `train_lib`'s own steps with the target state's
    clip length, sampling and constant learning rate: the run's training clips
    (`training_data`: `clips_per_video`, augmentation, `steps_per_epoch`) less
    a held-out part of the training videos it is scored on, the model built
    and compiled under the run's strategy and mixed-precision policy
    (`make_model`) from the source's weights, and the run's callbacks
    (`make_callbacks`: backup, epoch log, best model, TensorBoard, time
    budget) with `KneePointStopping` after them; the knee epoch's weights are
    written to the planner's file. Each transition has its own folder
    (`work_dir/transitions/<source>__<target>/`), so a killed transition
    resumes from its last epoch, with its curve so far; a finished one is
    recorded there (`transition.json`) and not trained again.

    Time budget: `time_budget` bounds the whole plan's training, counted from
    `started`: each transition's `TimeBudget` gets what is left of it (a
    transition trains at least one epoch). With `fit_budget`, the plan's work
    is first fitted to it as `train` fits a run's (`train_lib.plan_to_budget`),
    for the worst case: every transition at the longest clip for
    `max_epochs`; then every transition trains at the chosen clip side and
    steps per epoch, and the budget guards against an overrun by half.

    Args:
        config: the run's `TrainConfig` (model, sizes, optimizer, seed, ...).
        plan: the `PlanConfig`.
        data_dir: the dataset root (`train/` is split; `validation/` is not read).
        work_dir: the plan's folder; defaults to `config.work_dir/plan`.
        distribution: the strategy; defaults to `config.strategy`'s.
        callbacks: more callbacks for every transition's `fit`, after the others.
        started: the plan's start (a `time.monotonic()`); defaults to now.
    """

    def __init__(
        self,
        config,
        plan: PlanConfig,
        data_dir: str,
        *,
        work_dir: str | None = None,
        distribution=None,
        callbacks: Sequence[keras.callbacks.Callback] = (),
        started: float | None = None,
    ):
        self.config = config
        self.plan = plan
        self.data_dir = data_dir
        self.work_dir = os.fspath(work_dir or os.path.join(config.work_dir, "plan"))
        if distribution is None:
            distribution = strategy_lib.get_strategy(config.strategy)
        self.distribution = distribution
        self.callbacks = tuple(callbacks)
        self.started = time.monotonic() if started is None else started
        self._run_config = None

    @property
    def run_config(self):
        """The run's config as the transitions train it (after `fit_budget`'s plan, if any)."""
        if self._run_config is None:
            config = self.config
            if config.fit_budget and config.time_budget:
                config = self._fit_budget()
            self._run_config = config
        return self._run_config

    def _fit_budget(self):
        graph = self.plan.graph()
        count = sum(len(graph.predecessors[s]) or 1 for s in graph.states)
        longest = TrainingState(graph.states[0].sampling, graph.clip_lengths[-1], 1.0)
        worst = dataclasses.replace(
            self._state_config(self.config, longest),
            epochs=count * self.plan.max_epochs,
            work_dir=self.work_dir,
        )
        preprocessing = train_lib.clip_preprocessing(worst)
        train, holdout, steps = train_lib.training_data(
            worst, self.data_dir, preprocessing, holdout_split=self.plan.holdout_split
        )
        chosen = train_lib.plan_to_budget(
            worst,
            len(train.class_names),
            preprocessing,
            train,
            steps,
            len(holdout.file_paths),
            self.started,
            # Each transition builds and traces its own model (about 3 first steps more).
            non_scaling_steps=train_lib.NON_SCALING_STEPS + 3 * (count - 1),
        )
        print(f"plan {chosen.describe()}", flush=True)
        return train_lib.budgeted(self.config, chosen)

    def _state_config(self, config, state):
        return dataclasses.replace(
            config,
            num_frames=state.num_frames,
            sampling=state.sampling,
            learning_rate=state.learning_rate,
            schedule="constant",
            warmup_epochs=0.0,
            epochs=self.plan.max_epochs,
        )

    def state_config(self, state: TrainingState):
        """The run's config with the state's hyper-parameters and a constant rate."""
        return self._state_config(self.run_config, state)

    def transition_dir(self, weights: str) -> str:
        """The folder of the transition whose knee weights go to `weights`."""
        name = os.path.basename(weights).removesuffix(".weights.h5")
        return os.path.join(self.work_dir, "transitions", name)

    def _time_left(self):
        budget = self.run_config.time_budget
        if not budget:
            return budget
        # Spent: a tiny budget still stops the transition after its first epoch.
        return max(self.started + budget - time.monotonic(), 1e-3)

    def __call__(self, start: str | None, target: TrainingState, weights: str):
        """Trains one transition; returns its held-out curve and knee epoch."""
        folder = self.transition_dir(weights)
        record = os.path.join(folder, TRANSITION_RECORD)
        if self.config.resume and os.path.exists(record) and os.path.exists(weights):
            with open(record) as f:
                done = json.load(f)
            return done["curve"], done["epoch"]
        config = dataclasses.replace(
            self.state_config(target), work_dir=folder, time_budget=self._time_left()
        )
        preprocessing = train_lib.clip_preprocessing(config)
        train, holdout, steps = train_lib.training_data(
            config, self.data_dir, preprocessing, holdout_split=self.plan.holdout_split
        )
        keras.utils.set_random_seed(config.seed)
        net = train_lib.make_model(
            config,
            len(train.class_names),
            preprocessing,
            self.distribution,
            steps_per_epoch=steps,
            weights=start,
        )
        run_callbacks = train_lib.make_callbacks(config, self.distribution)
        log = next(c for c in run_callbacks if isinstance(c, callbacks_lib.EpochLog))
        epochs_dir = os.path.join(folder, "epochs")
        stopping = KneePointStopping(delay=self.plan.delay, log=log, weights_dir=epochs_dir)
        run_callbacks += [stopping, *self.callbacks]
        train_lib.fit(
            net, train, holdout, config, run_callbacks, self.distribution, restore_best=False
        )
        with atomic.atomic_path(weights, keep_extension=True) as temporary:
            net.save_weights(temporary)
        with atomic.atomic_file(record) as f:
            json.dump({"curve": stopping.values, "epoch": stopping.best_epoch}, f)
        shutil.rmtree(epochs_dir, ignore_errors=True)  # the knee's are in `weights` now
        return stopping.values, stopping.best_epoch


@dataclasses.dataclass
class PlanResult:
    """A planned run: the plan, and the planned model scored on the validation split.

    Attributes:
        plan: the `Plan` (path, every transition, the graph).
        model: the planned model (weights of the best final state).
        val_accuracy: its video top-1 on the run's validation split.
        reversed_val_accuracy: the same with clips played backwards, if asked.
        figure: the PNG of the explored graph.
        export_path: the SavedModel's folder, if `export_dir` was set.
    """

    plan: Plan
    model: keras.Model
    val_accuracy: float
    reversed_val_accuracy: float | None
    figure: str
    export_path: str | None

    def summary(self) -> str:
        """The plan's path, then the validation score."""
        line = f"val_accuracy={self.val_accuracy:.3f}"
        if self.reversed_val_accuracy is not None:
            line += f" reversed_val_accuracy={self.reversed_val_accuracy:.3f}"
        return f"{self.plan.summary()}\n{line}"


def plan_training(
    config, plan: PlanConfig | None = None, *, callbacks: Sequence = ()
) -> PlanResult:
    """Plans a run's training path, then scores and exports the planned model.

    Every transition of `plan.graph()` is trained (`KerasTransitions`, with
    the run's datasets, strategy, mixed precision, time budget and callbacks)
    and recorded under `work_dir/plan/`, so a killed plan resumes (a killed
    transition from its last epoch); `resume=False` starts the plan afresh.
    The explored graph is drawn to `work_dir/plan.png`.

    Args:
        config: the run's `kvid.training.TrainConfig` (its `num_frames`,
            `sampling`, `learning_rate`, schedule and `epochs` are the plan's
            to choose; `time_budget` is the whole plan's).
        plan: the `PlanConfig`; defaults to `PlanConfig()`.
        callbacks: more callbacks for every transition's `fit`.

    Returns:
        A `PlanResult`.
    """
    started = time.monotonic()
    plan = plan or PlanConfig()
    plan_dir = os.path.join(config.work_dir, "plan")
    if not config.resume:
        shutil.rmtree(plan_dir, ignore_errors=True)
    data_dir = train_lib.resolve_data_dir(config)
    distribution = strategy_lib.get_strategy(config.strategy)
    transitions = KerasTransitions(
        config,
        plan,
        data_dir,
        work_dir=plan_dir,
        distribution=distribution,
        callbacks=callbacks,
        started=started,
    )
    found = OptimizationPlanner(plan.graph(), transitions, plan_dir).plan()
    figure = plots.save_figure(plots.plan_figure(found), os.path.join(config.work_dir, "plan.png"))
    final = transitions.state_config(found.path[-1].target)
    preprocessing = train_lib.clip_preprocessing(final)
    _, _, views, class_names, _ = train_lib.make_datasets(final, data_dir, preprocessing)
    net = train_lib.make_model(
        final, len(class_names), preprocessing, distribution, weights=found.weights
    )
    accuracy, reversed_accuracy = train_lib.evaluate_run(net, views, final)
    export_path = None
    if strategy_lib.is_chief(distribution):
        export_path = train_lib.export_run(net, final, class_names, preprocessing)
    return PlanResult(found, net, accuracy, reversed_accuracy, figure, export_path)
