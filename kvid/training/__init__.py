"""Training: `train`, its configuration, callbacks, distribution strategies and budgets."""

from kvid.training import budget, callbacks, strategy, train_lib
from kvid.training.callbacks import (
    Backup,
    BackupError,
    BestModel,
    EpochLog,
    SyncMovingStatistics,
    TimeBudget,
    default_callbacks,
    restore_backup,
)
from kvid.training.strategy import get_strategy
from kvid.training.train_lib import TrainConfig, TrainResult, builtin_dataset, train

__all__ = [
    "Backup",
    "BackupError",
    "BestModel",
    "EpochLog",
    "SyncMovingStatistics",
    "TimeBudget",
    "TrainConfig",
    "TrainResult",
    "budget",
    "builtin_dataset",
    "callbacks",
    "default_callbacks",
    "get_strategy",
    "restore_backup",
    "strategy",
    "train",
    "train_lib",
]
