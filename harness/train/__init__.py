"""The training loop (`fit`, `evaluate`) and, as `python -m harness.train`, one training run."""

from harness.train.loop import (
    TRAIN_FIELDS,
    FitResult,
    TrainConfig,
    TrainState,
    evaluate,
    fit,
    make_train_config,
    resolve_device,
    seed_everything,
)

__all__ = ["TRAIN_FIELDS", "FitResult", "TrainConfig", "TrainState", "evaluate", "fit", "make_train_config", "resolve_device", "seed_everything"]
