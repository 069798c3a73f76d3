"""HEPHAESTUS: adaptive multi-scale mixture of experts with periodic temporal and heterogeneous
spatial attention. Importing this package registers the model as "hephaestus".

    config.py  hyperparameters, validation, the Table 3 variants, training defaults
    layers.py  RevIN, Moving-Patch, period embeddings, PTA, HSA, ST-Block, expert
    router.py  the AMS-MoE router, top-K gates and the balance loss
    model.py   the model, top to bottom, and `routing_probabilities` for the case study
"""

import numpy as np

from models.base import DatasetMeta
from models.hephaestus.config import NESTED_PATCH_SIZES, TRAIN_DEFAULTS, VARIANTS, HephaestusConfig
from models.hephaestus.model import Hephaestus, routing_probabilities
from models.registry import ModelEntry, register

HOURS_PER_DAY = 24


def build(config: HephaestusConfig, meta: DatasetMeta) -> Hephaestus:
    """Build HEPHAESTUS from a validated config for one dataset."""
    return Hephaestus(config, meta)


def routing_artifact(model: Hephaestus, history: np.ndarray, target: np.ndarray, batch_size: int) -> dict[str, dict[str, np.ndarray]]:
    """The routing case study's data (paper Fig. 4) over the given test windows.

    routing: gate_probs (S, M), hour (S,) the time of day of each window's last input step in
    hours, target (S,) the next reading averaged over sensors, patch_sizes (M,).
    """
    probabilities, tod = routing_probabilities(model, history, batch_size)
    return {
        "routing": {
            "gate_probs": probabilities,
            "hour": tod * (HOURS_PER_DAY / model.steps_per_day),
            "target": target[:, 0, :].mean(axis=1),
            "patch_sizes": np.asarray(model.patch_sizes, dtype=np.int64),
        }
    }


register(
    ModelEntry(
        name="hephaestus",
        config_cls=HephaestusConfig,
        build=build,
        variants=VARIANTS,
        description="HEPHAESTUS: AMS-MoE over Moving-Patch scales, experts of PTA + HSA ST-Blocks",
        train_defaults=TRAIN_DEFAULTS,
        artifacts=routing_artifact,
    )
)

__all__ = ["NESTED_PATCH_SIZES", "Hephaestus", "HephaestusConfig", "build", "routing_artifact", "routing_probabilities"]
