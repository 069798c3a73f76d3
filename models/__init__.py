"""Forecasting models and their registry. Importing this package registers every model."""

from models import baselines, hephaestus, lightst  # noqa: F401  (each registers its models)
from models.base import ConfigError, DatasetMeta, ForecastModel, ModelOutput
from models.registry import ModelEntry, Variant, build_model, get_model, model_names

__all__ = [
    "ConfigError",
    "DatasetMeta",
    "ForecastModel",
    "ModelEntry",
    "ModelOutput",
    "Variant",
    "build_model",
    "get_model",
    "model_names",
]
