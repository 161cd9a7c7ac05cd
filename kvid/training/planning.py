"""Optimization planning (Qiu et al., seed 002, section 3).

A training *state* fixes the sampling strategy, the clip length and the learning
rate. A *transition* `S_i -> S_j` fine-tunes the best model of `S_i` with the
hyper-parameters of `S_j` until its knee point (`kvid.training.knee_point`) and
scores it on a held-out split of the training set. States are explored in
topological order of a transition graph, and dynamic programming keeps, for each
state, the predecessor whose transition scored best:
`P(S_j) = <P(S_i*), S_j>, i* = argmax_i V(S_i -> S_j)`. The plan's result is the
better of the final states (one per sampling strategy).

Transition graphs (figure 1 of the paper): sampling strategies never mix; training
starts at the shortest clip and the highest learning rate; a transition lengthens
the clip by one step or lowers the learning rate by one step (the *basic* graph),
or, in the *extended* graph, may also do both at once.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Sequence

from kvid import atomic
from kvid.training.knee_point import KneePoint, KneePointStopping, fit_knee_point

SAMPLINGS = ("consecutive", "uniform")
PLAN_RECORD = "plan.json"

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
        explored, best = [], {}
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
            best[target] = max(candidates, key=lambda t: t.accuracy)
        final = max((best[s] for s in self.graph.finals), key=lambda t: t.accuracy)
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
