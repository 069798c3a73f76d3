"""Hyperparameters of HEPHAESTUS and the paper's ablation variants (spec sections 7-9).

Every decision of the spec is a switch here, and every Table 3 variant is only a named set of
switches. `validate()` derives the expert set: `num_experts` alone picks the nested patch sets of
the sensitivity study ({1,3} c {1,3,6} c {1,2,3,6} c {1,2,3,6,12}); `patch_sizes` alone sets M;
neither gives the paper's M = 4, {1, 2, 3, 6}.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from models.base import ConfigError
from models.registry import Variant

NESTED_PATCH_SIZES: dict[int, tuple[int, ...]] = {
    1: (3,),
    2: (1, 3),
    3: (1, 3, 6),
    4: (1, 2, 3, 6),
    5: (1, 2, 3, 6, 12),
}
DEFAULT_NUM_EXPERTS = 4
SINGLE_EXPERT_PATCH_SIZES = NESTED_PATCH_SIZES[1]

VARIANTS = (
    Variant("full", "Full"),
    Variant("wo_ams_moe", "w/o AMS-MoE", {"moe": "single", "patch_sizes": SINGLE_EXPERT_PATCH_SIZES}),
    Variant("wo_pta", "w/o PTA", {"temporal_attn": "vanilla"}),
    Variant("wo_hsa", "w/o HSA", {"spatial_attn": "vanilla"}),
    Variant("fixed_scale_moe", "Fixed-Scale MoE", {"gating": "uniform"}),
    Variant("noisy_routing_only", "Noisy-Routing Only", {"gating": "noisy_dense", "aux_type": "cv2"}),
)

# Training settings of the paper (A.2.2) with the spec's decisions (section 9).
TRAIN_DEFAULTS = {
    "lr": 1e-3,
    "lr_schedule": "exponential",
    "lr_gamma": 0.98,
    "batch_size": 64,
    "patience": 30,
    "max_epochs": 200,
    "grad_clip": 5.0,
}


@dataclass
class HephaestusConfig:
    """HEPHAESTUS hyperparameters; defaults are the paper's (716K parameters on PEMS04).

    AMS-MoE:
        num_experts, patch_sizes: M experts, one per patch size (see the module docstring).
        top_k: K experts per sample under "noisy_topk" gating.
        moe: "sparse" = a mixture of experts; "single" = one expert, no router (w/o AMS-MoE).
        gating: "noisy_topk" (K of M experts run), "noisy_dense" (all run, weighted by the noisy
            softmax; Noisy-Routing Only) or "uniform" (all run with weight 1/M; Fixed-Scale MoE).
        router_features: "eq5" (patch-mixed tokens, Eq. 5) or "decomp" (Pathformer's seasonal
            and trend decomposition).
        renorm_topk: renormalise the top-K gates to sum to 1 for K >= 2 (False: the literal Eq. 7).
            At K = 1 the selected expert is always scaled by its raw probability R_i (Switch
            Transformer): a renormalised single gate is 1 and the router would learn nothing.
        aux_type, aux_weight: balance loss "switch" (Eq. 21) or "cv2" (the importance loss
            CV(sum_b R)^2 of Shazeer et al. 2017), and its weight alpha. Unset (None), it is
            "switch" under top-K gating and "cv2" under dense gating, where the Switch form is a
            constant 1 with no gradient; "switch" with dense gating is rejected.
    ST-Blocks:
        temporal_attn: "periodic" (PTA) or "vanilla"; spatial_attn: "heterogeneous" (HSA) or
            "vanilla"; hidden (C = D), layers (L), heads, ffn_ratio (FFN width / C), rank (r),
            d_tid / d_tiw (period embedding sizes), dropout.
    Head and normalisation: head_hidden; revin (RevIN on the value channel; False feeds the
        z-scored values straight through), revin_affine, revin_gap_aware (opt-in, this
        project's improvement: leave sensor gaps out of RevIN's statistics; off by default, the
        paper's RevIN over all H steps, gaps included).
    """

    variant: str = "full"
    num_experts: int | None = None
    patch_sizes: tuple[int, ...] | None = None
    top_k: int = 2
    moe: Literal["sparse", "single"] = "sparse"
    gating: Literal["noisy_topk", "uniform", "noisy_dense"] = "noisy_topk"
    router_features: Literal["eq5", "decomp"] = "eq5"
    renorm_topk: bool = True
    aux_type: Literal["switch", "cv2"] | None = None  # None: by gating (see above)
    aux_weight: float = 0.01
    temporal_attn: Literal["periodic", "vanilla"] = "periodic"
    spatial_attn: Literal["heterogeneous", "vanilla"] = "heterogeneous"
    hidden: int = 32
    layers: int = 3
    heads: int = 4
    ffn_ratio: int = 4
    rank: int = 16
    d_tid: int = 16
    d_tiw: int = 32
    dropout: float = 0.1
    head_hidden: int = 256
    revin: bool = True
    revin_affine: bool = False
    revin_gap_aware: bool = False  # D: True leaves sensor gaps out of RevIN's statistics

    def validate(self) -> None:
        """Derive num_experts/patch_sizes and aux_type, and reject inconsistent settings."""
        self._derive_experts()
        self._derive_aux_type()
        for name in ("hidden", "layers", "heads", "ffn_ratio", "rank", "d_tid", "d_tiw", "head_hidden"):
            if getattr(self, name) < 1:
                raise ConfigError(name, f"must be at least 1, got {getattr(self, name)}")
        if self.hidden % self.heads != 0:
            raise ConfigError("hidden", f"{self.hidden} is not divisible by heads={self.heads}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError("dropout", f"must be in [0, 1), got {self.dropout}")
        if self.aux_weight < 0:
            raise ConfigError("aux_weight", f"must be >= 0, got {self.aux_weight}")
        if self.moe == "sparse" and self.gating == "noisy_topk" and not 1 <= self.top_k <= self.num_experts:
            raise ConfigError("top_k", f"must be between 1 and num_experts={self.num_experts}, got {self.top_k}")

    def _derive_aux_type(self) -> None:
        dense = self.gating == "noisy_dense"
        if self.aux_type is None:
            self.aux_type = "cv2" if dense else "switch"
        elif dense and self.aux_type == "switch":
            raise ConfigError(
                "aux_type", "'switch' is a constant 1 with no gradient when every expert runs; dense gating needs 'cv2'"
            )

    def _derive_experts(self) -> None:
        if self.moe == "single":
            # One expert and no router: M does not apply, so a num_experts carried in from a
            # base configuration (e.g. an ablation built on a sweep's best.yaml) is set aside.
            sizes = SINGLE_EXPERT_PATCH_SIZES if self.patch_sizes is None else self.patch_sizes
            if len(sizes) != 1 or sizes[0] < 1:
                raise ConfigError("patch_sizes", f"moe='single' runs one expert with one positive patch size, got {list(sizes)}")
            self.patch_sizes, self.num_experts = tuple(sizes), 1
            return
        if self.patch_sizes is not None:
            if not self.patch_sizes or any(p < 1 for p in self.patch_sizes):
                raise ConfigError("patch_sizes", f"must be positive integers, got {list(self.patch_sizes)}")
            if len(set(self.patch_sizes)) != len(self.patch_sizes):
                raise ConfigError("patch_sizes", f"must be distinct, got {list(self.patch_sizes)}")
            if self.num_experts is not None and self.num_experts != len(self.patch_sizes):
                raise ConfigError(
                    "patch_sizes",
                    f"{list(self.patch_sizes)} gives {len(self.patch_sizes)} experts but num_experts={self.num_experts}",
                )
            self.num_experts = len(self.patch_sizes)
        else:
            if self.num_experts is None:
                self.num_experts = DEFAULT_NUM_EXPERTS
            if self.num_experts not in NESTED_PATCH_SIZES:
                raise ConfigError(
                    "num_experts",
                    f"{self.num_experts} has no default patch sizes (1-5 do); give patch_sizes explicitly",
                )
            self.patch_sizes = NESTED_PATCH_SIZES[self.num_experts]
