"""HEPHAESTUS: adaptive multi-scale mixture of experts with periodic temporal and heterogeneous
spatial attention. Importing this package registers the model as "hephaestus".

    config.py  hyperparameters, validation, the Table 3 variants, training defaults
    layers.py  RevIN, Moving-Patch, period embeddings, PTA, HSA, ST-Block, expert
    router.py  the AMS-MoE router, top-K gates and the balance loss
    model.py   the model, top to bottom, and `routing_probabilities` for the case study
"""

from models.base import DatasetMeta
from models.hephaestus.config import NESTED_PATCH_SIZES, TRAIN_DEFAULTS, VARIANTS, HephaestusConfig
from models.hephaestus.model import Hephaestus, routing_probabilities
from models.registry import ModelEntry, register


def build(config: HephaestusConfig, meta: DatasetMeta) -> Hephaestus:
    """Build HEPHAESTUS from a validated config for one dataset."""
    return Hephaestus(config, meta)


register(
    ModelEntry(
        name="hephaestus",
        config_cls=HephaestusConfig,
        build=build,
        variants=VARIANTS,
        description="HEPHAESTUS: AMS-MoE over Moving-Patch scales, experts of PTA + HSA ST-Blocks",
        train_defaults=TRAIN_DEFAULTS,
    )
)

__all__ = ["NESTED_PATCH_SIZES", "Hephaestus", "HephaestusConfig", "build", "routing_probabilities"]
