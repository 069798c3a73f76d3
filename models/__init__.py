"""Forecasting models and their registry. Importing this package registers every model.

Models of your own: a module that calls `models.registry.register(...)` at import time, named
in the environment variable HARNESS_PLUGINS (comma-separated module names on the PYTHONPATH),
is imported here too, so every process of a campaign (Ray workers included) knows its models.
"""

import importlib
import os

from models import baselines, hephaestus, lightst  # noqa: F401  (each registers its models)
from models.base import ConfigError, DatasetMeta, ForecastModel, ModelOutput
from models.registry import ModelEntry, Variant, build_model, get_model, model_names

for _plugin in filter(None, (name.strip() for name in os.environ.get("HARNESS_PLUGINS", "").split(","))):
    importlib.import_module(_plugin)

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
