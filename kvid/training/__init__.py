"""Training: strategies, schedules, callbacks, evaluation, prediction and `train`."""

from kvid import schedules
from kvid.schedules import (
    WarmupCosineDecay,
    WarmupStepDecay,
    make_schedule,
    scale_learning_rate,
)
from kvid.training import (
    callbacks,
    evaluation,
    model_files,
    plots,
    prediction,
    strategy,
    train_lib,
)
from kvid.training.callbacks import (
    Backup,
    BackupError,
    BestModel,
    EpochLog,
    SyncMovingStatistics,
    TimeBudget,
    default_callbacks,
)
from kvid.training.evaluation import EvaluationResult, evaluate, evaluate_directory
from kvid.training.prediction import Timeline, predict_file, predict_video
from kvid.training.strategy import get_strategy, patch_keras_multi_worker
from kvid.training.train_lib import TrainConfig, TrainResult, builtin_dataset, train

__all__ = [
    "Backup",
    "BackupError",
    "BestModel",
    "EpochLog",
    "EvaluationResult",
    "SyncMovingStatistics",
    "TimeBudget",
    "Timeline",
    "TrainConfig",
    "TrainResult",
    "WarmupCosineDecay",
    "WarmupStepDecay",
    "builtin_dataset",
    "callbacks",
    "default_callbacks",
    "evaluate",
    "evaluate_directory",
    "evaluation",
    "get_strategy",
    "make_schedule",
    "model_files",
    "patch_keras_multi_worker",
    "plots",
    "predict_file",
    "predict_video",
    "prediction",
    "scale_learning_rate",
    "schedules",
    "strategy",
    "train",
    "train_lib",
]
