"""Training: strategies, schedules, callbacks, evaluation and the `train` entry point."""
