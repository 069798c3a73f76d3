"""A test-only model that misbehaves on purpose, loaded into Ray workers via HARNESS_PLUGINS.

`faulty` is STID with a `fault` switch:
- "none": plain STID;
- "crash_once": raises in the first batch of epoch 2 unless the `marker` file exists (it creates
  it), so the retried trial, resumed from its epoch-1 checkpoint, succeeds;
- "explode": predictions turn NaN from epoch 2 on (a diverging trial).
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from models.base import ModelOutput
from models.baselines import STID, STIDConfig
from models.registry import ModelEntry, register


@dataclass
class FaultyConfig(STIDConfig):
    fault: Literal["none", "crash_once", "explode"] = "none"
    marker: str = ""
    batches_per_epoch: int = 4  # training forward passes that make one epoch


class Faulty(STID):
    def __init__(self, config, meta):
        super().__init__(config, meta)
        self.training_steps = 0

    def forward(self, history):
        out = super().forward(history)
        if not self.training:
            return out
        self.training_steps += 1
        in_epoch_two = self.training_steps > self.config.batches_per_epoch
        if self.config.fault == "crash_once" and in_epoch_two and not Path(self.config.marker).exists():
            Path(self.config.marker).write_text("crashed\n")
            raise RuntimeError("injected crash in epoch 2")
        if self.config.fault == "explode" and in_epoch_two:
            return ModelOutput(prediction=out.prediction * float("nan"))
        return out


register(ModelEntry(name="faulty", config_cls=FaultyConfig, build=Faulty, train_defaults={"lr": 2e-3}))
