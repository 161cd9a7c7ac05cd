"""Planning a training run: which transitions (data, clip length, learning rate) pay off."""

from kvid.planning import knee_point, plan
from kvid.planning.knee_point import KneePoint, KneePointStopping, fit_knee_point
from kvid.planning.plan import PlanConfig, PlanResult, plan_training

__all__ = [
    "KneePoint",
    "KneePointStopping",
    "PlanConfig",
    "PlanResult",
    "fit_knee_point",
    "knee_point",
    "plan",
    "plan_training",
]
