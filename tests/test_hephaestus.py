"""Behaviour of the HEPHAESTUS model package: sizes, routing, variants, settings, training."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from harness.data import generate_synthetic, prepare
from harness.loop import TrainConfig, evaluate, fit
from models import ConfigError, DatasetMeta, build_model, get_model
from models.base import count_parameters
from models.hephaestus import Hephaestus, routing_probabilities
from models.hephaestus.layers import (
    HeterogeneousSpatialAttention,
    MovingPatch,
    PeriodEmbedding,
    PostNormLayer,
    RevIN,
    SpatialAttention,
    TemporalAttention,
)
from models.hephaestus.router import DecompositionFeatures, PatchMixFeatures, balance_loss, top_k_gates

TINY = {"hidden": 8, "heads": 2, "layers": 1, "rank": 4, "d_tid": 4, "d_tiw": 4, "head_hidden": 16}
PEMS04 = DatasetMeta(name="PEMS04", num_nodes=307)


def make_history(batch: int, nodes: int, first_step: int = 100, seed: int = 0, steps_per_day: int = 288) -> torch.Tensor:
    """Random values with valid time-of-day / day-of-week channels; sample b starts at first_step + b."""
    generator = torch.Generator().manual_seed(seed)
    history = torch.randn(batch, 12, nodes, 3, generator=generator)
    steps = first_step + torch.arange(batch)[:, None] + torch.arange(12)[None, :]  # (B, H)
    history[..., 1] = ((steps % steps_per_day) / steps_per_day)[..., None]
    history[..., 2] = (((steps // steps_per_day) % 7) / 7)[..., None]
    return history


def tiny_model(nodes: int = 6, seed: int = 0, **overrides) -> Hephaestus:
    torch.manual_seed(seed)
    return build_model("hephaestus", DatasetMeta(name="tiny", num_nodes=nodes), {**TINY, **overrides})


# --- sizes -------------------------------------------------------------------------------------


def test_forward_returns_forecast_shape_and_gate_probabilities():
    model = tiny_model()
    out = model(make_history(3, 6))
    assert out.prediction.shape == (3, 12, 6, 1)
    assert out.extras["gate_probs"].shape == (3, 4)
    assert torch.isfinite(out.prediction).all()


def test_pems04_parameter_count_matches_paper_table4():
    model = build_model("hephaestus", PEMS04)
    assert abs(count_parameters(model) - 716_000) / 716_000 < 0.03


@pytest.mark.parametrize(
    ("variant", "expected"),
    [
        ("full", 718_700),
        ("wo_ams_moe", 307_600),
        ("wo_pta", 643_400),
        ("wo_hsa", 482_800),
        ("fixed_scale_moe", 718_200),
        ("noisy_routing_only", 718_700),
    ],
)
def test_variant_parameter_counts_match_spec_table(variant, expected):
    model = build_model("hephaestus", PEMS04, {"variant": variant})
    assert abs(count_parameters(model) - expected) / expected < 0.03


@pytest.mark.parametrize(
    ("dataset", "nodes", "expected"),
    [
        ("METR-LA", 207, 712_000),
        ("PEMS-BAY", 325, 720_000),
        ("PEMS03", 358, 722_000),
        ("PEMS07", 883, 756_000),
        ("PEMS08", 170, 710_000),
    ],
)
def test_full_model_parameter_counts_on_other_datasets_match_spec(dataset, nodes, expected):
    model = build_model("hephaestus", DatasetMeta(name=dataset, num_nodes=nodes))
    assert abs(count_parameters(model) - expected) / expected < 0.03


def test_pems07_size_forward_runs_on_cpu():
    torch.manual_seed(0)
    model = build_model("hephaestus", DatasetMeta(name="PEMS07", num_nodes=883)).eval()
    with torch.no_grad():
        out = model(make_history(4, 883))
    assert out.prediction.shape == (4, 12, 883, 1)


# --- routing -----------------------------------------------------------------------------------


def count_expert_samples(model: Hephaestus) -> list[int]:
    """Attach hooks recording how many samples each expert's ST-Blocks process."""
    seen = [0] * len(model.experts)
    for m, expert in enumerate(model.experts):
        expert.register_forward_hook(lambda module, args, output, m=m: seen.__setitem__(m, seen[m] + args[0].shape[0]))
    return seen


@pytest.mark.parametrize("top_k", [1, 2])
def test_topk_routing_runs_only_k_experts_per_sample(top_k):
    model = tiny_model(top_k=top_k)
    seen = count_expert_samples(model)
    out = model(make_history(5, 6))
    assert sum(seen) == top_k * 5
    assert ((out.extras["gates"] > 0).sum(dim=1) == top_k).all()


def test_unselected_experts_get_no_gradient_from_the_batch():
    model = tiny_model(top_k=2)
    out = model(make_history(1, 6))
    (out.prediction.sum() + out.aux_loss).backward()
    selected = out.extras["gates"][0] > 0
    assert selected.sum() == 2
    for m, expert in enumerate(model.experts):
        # The Moving-Patch projection also feeds the router (Eq. 5), so only the blocks and S_e
        # are the expert's own computation.
        grads = [p.grad for p in expert.blocks.parameters()] + [expert.node_embedding.grad]
        if selected[m]:
            assert all(g is not None and g.abs().sum() > 0 for g in grads)
        else:
            assert all(g is None for g in grads)


def test_eval_mode_is_deterministic_and_training_adds_router_noise():
    model = tiny_model(dropout=0.0)
    history = make_history(4, 6)
    train_probs = [model(history).extras["gate_probs"] for _ in range(2)]
    assert not torch.allclose(train_probs[0], train_probs[1])
    model.eval()
    first, second = model(history), model(history)
    assert torch.equal(first.prediction, second.prediction)
    assert torch.equal(first.extras["gate_probs"], second.extras["gate_probs"])


@pytest.mark.parametrize("variant", ["full", "noisy_routing_only", "fixed_scale_moe", "wo_ams_moe"])
def test_gate_probabilities_and_gates_sum_to_one(variant):
    out = tiny_model(variant=variant)(make_history(4, 6))
    assert torch.allclose(out.extras["gate_probs"].sum(dim=1), torch.ones(4))
    assert torch.allclose(out.extras["gates"].sum(dim=1), torch.ones(4))


def test_literal_eq7_keeps_unnormalised_topk_probabilities():
    probs = torch.tensor([[0.1, 0.5, 0.3, 0.1]])
    gates, selected = top_k_gates(probs, 2, renormalise=False)
    assert torch.equal(selected, torch.tensor([[False, True, True, False]]))
    assert torch.allclose(gates, torch.tensor([[0.0, 0.5, 0.3, 0.0]]))
    renormalised, _ = top_k_gates(probs, 2, renormalise=True)
    assert torch.allclose(renormalised, torch.tensor([[0.0, 0.625, 0.375, 0.0]]))


def test_balance_loss_is_one_for_uniform_routing_and_larger_when_collapsed():
    uniform = torch.full((4, 4), 0.25)
    balanced = torch.tensor([[1, 1, 0, 0], [0, 0, 1, 1], [1, 0, 1, 0], [0, 1, 0, 1]], dtype=torch.bool)
    assert balance_loss(uniform, balanced, "switch").item() == pytest.approx(1.0)
    assert balance_loss(uniform, balanced, "cv2").item() == pytest.approx(0.0)
    collapsed_probs = torch.tensor([[0.5, 0.5, 0.0, 0.0]]).repeat(4, 1)
    collapsed = collapsed_probs > 0
    assert balance_loss(collapsed_probs, collapsed, "switch").item() == pytest.approx(2.0)


def test_balance_loss_is_the_weighted_aux_loss_and_its_gradient_reaches_the_router():
    model = tiny_model(aux_weight=0.5)
    out = model(make_history(4, 6))
    assert out.aux_loss.item() == pytest.approx(0.5 * out.extras["loss/balance"].item())
    out.aux_loss.backward()
    assert model.router.w_gate.weight.grad.abs().sum() > 0
    assert model.router.node_pool.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("top_k", [1, 2, 3, 4])
def test_the_forecast_loss_alone_trains_the_router_at_every_k(top_k):
    # aux weight 0: only the gates carry the forecasting loss to the router (spec 4, K = 1 too).
    model = tiny_model(top_k=top_k, aux_weight=0.0)
    out = model(make_history(4, 6))
    out.prediction.abs().mean().backward()
    for weight in (model.router.w_gate.weight, model.router.node_pool.weight):
        assert weight.grad is not None and weight.grad.abs().sum() > 1e-6


def test_a_single_selected_expert_is_scaled_by_its_raw_probability():
    probs = torch.tensor([[0.1, 0.5, 0.3, 0.1], [0.6, 0.2, 0.1, 0.1]])
    for renormalise in (True, False):
        gates, selected = top_k_gates(probs, 1, renormalise)
        assert torch.equal(selected, torch.tensor([[False, True, False, False], [True, False, False, False]]))
        assert torch.allclose(gates, torch.tensor([[0.0, 0.5, 0.0, 0.0], [0.6, 0.0, 0.0, 0.0]]))


def test_importance_loss_is_zero_for_equal_importance_and_grows_with_skew():
    dense = torch.ones(4, 4, dtype=torch.bool)
    balanced = torch.tensor([[0.7, 0.1, 0.1, 0.1], [0.1, 0.7, 0.1, 0.1], [0.1, 0.1, 0.7, 0.1], [0.1, 0.1, 0.1, 0.7]])
    mild = torch.tensor([[0.4, 0.2, 0.2, 0.2]]).repeat(4, 1)
    collapsed = torch.tensor([[0.97, 0.01, 0.01, 0.01]]).repeat(4, 1)
    assert balance_loss(balanced, dense, "cv2").item() == pytest.approx(0.0, abs=1e-10)
    first_only = torch.zeros(4, 4, dtype=torch.bool)
    first_only[:, 0] = True
    assert balance_loss(balanced, first_only, "cv2").item() == pytest.approx(0.0, abs=1e-10)  # counts play no part
    # importance (0.4, 0.2, 0.2, 0.2) x 4: mean 0.25, unbiased variance 0.01 -> CV^2 = 0.16
    assert balance_loss(mild, dense, "cv2").item() == pytest.approx(0.16, rel=1e-5)
    assert balance_loss(collapsed, dense, "cv2") > balance_loss(mild, dense, "cv2")
    # two experts, three samples: importance (1.9, 1.1), mean 1.5, unbiased variance 0.32
    two = torch.tensor([[0.8, 0.2], [0.6, 0.4], [0.5, 0.5]])
    assert balance_loss(two, torch.ones(3, 2, dtype=torch.bool), "cv2").item() == pytest.approx(0.32 / 1.5**2, rel=1e-5)
    # Under dense routing the Switch form is 1 whatever the routing: it cannot balance anything.
    assert balance_loss(collapsed, dense, "switch").item() == pytest.approx(1.0)


@pytest.mark.parametrize("dense", [{"variant": "noisy_routing_only"}, {"gating": "noisy_dense"}])
def test_dense_routing_balances_experts_with_a_live_importance_loss(dense):
    model = tiny_model(**dense, aux_weight=1.0)
    assert model.router.aux_type == "cv2"
    out = model(make_history(4, 6))
    importance = out.extras["gate_probs"].sum(dim=0)
    assert out.extras["loss/balance"].item() == pytest.approx((importance.var() / importance.mean() ** 2).item(), rel=1e-4)
    out.aux_loss.backward()
    assert model.router.w_gate.weight.grad.abs().sum() > 1e-6


@pytest.mark.parametrize(
    ("overrides", "aux_type"),
    [({}, "switch"), ({"gating": "noisy_dense"}, "cv2"), ({"variant": "noisy_routing_only"}, "cv2"), ({"aux_type": "cv2"}, "cv2")],
)
def test_the_balance_loss_follows_the_gating_unless_chosen(overrides, aux_type):
    assert get_model("hephaestus").make_config(overrides).aux_type == aux_type


def test_routing_is_per_sample():
    model = tiny_model().eval()
    history = make_history(3, 6)
    changed = history.clone()
    changed[0, :, :, 0] += torch.linspace(-2.0, 2.0, 12)[:, None]
    before, after = model(history).extras["gate_probs"], model(changed).extras["gate_probs"]
    assert not torch.allclose(before[0], after[0])
    assert torch.equal(before[1:], after[1:])


def test_router_noise_has_a_learned_scale_above_a_floor():
    model = tiny_model()
    history = make_history(64, 6)
    clean = model.eval()(history).extras["gate_probs"]
    model.train()

    def spread(noise_bias: float) -> float:
        with torch.no_grad():
            model.router.w_noise.weight.zero_()
            model.router.w_noise.bias.fill_(noise_bias)
        return (model(history).extras["gate_probs"] - clean).abs().max().item()

    quiet = spread(-30.0)  # softplus ~ 0: only the floor 1e-2 is left
    assert 0 < quiet < 0.05
    assert spread(3.0) > 10 * quiet


def test_mixture_is_the_gate_weighted_sum_of_the_selected_experts():
    model = tiny_model(top_k=2).eval()
    history = make_history(5, 6)
    series, _ = model.normalise(history)
    tokens = [expert.embed(series) for expert in model.experts]
    routing = model.route(series, tokens)
    period = model.period_embedding(history)
    expected = sum(routing.gates[:, m, None, None, None] * expert(tokens[m], period) for m, expert in enumerate(model.experts))
    torch.testing.assert_close(model.mix_experts(tokens, period, routing), expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("aux_type", ["switch", "cv2"])
@pytest.mark.parametrize("router_features", ["eq5", "decomp"])
def test_router_options_train_end_to_end(aux_type, router_features):
    model = tiny_model(aux_type=aux_type, router_features=router_features)
    out = model(make_history(4, 6))
    (out.prediction.abs().mean() + out.aux_loss).backward()
    assert torch.isfinite(out.aux_loss)
    assert model.router.w_gate.weight.grad.abs().sum() > 0


def test_eq5_router_features_mix_every_scales_tokens_by_a_softmax_over_the_scales():
    torch.manual_seed(0)
    features = PatchMixFeatures(input_len=12, hidden=8, num_experts=3)
    series, tokens = torch.randn(2, 5, 12), [torch.randn(2, 5, 12, 8) for _ in range(3)]
    alpha = torch.softmax(features.scale_weights(series), dim=-1)  # (B, N, M), sums to 1 over the M scales
    mixed = sum(alpha[..., m, None, None] * tokens[m] for m in range(3))  # X_patch, Eq. 5
    expected = features.fuse(torch.cat([mixed, series[..., None]], dim=-1))[..., 0]
    torch.testing.assert_close(features(series, tokens), expected)


@pytest.mark.parametrize(("router_features", "reads_tokens"), [("eq5", True), ("decomp", False)])
def test_only_eq5_router_features_read_the_moving_patch_tokens(router_features, reads_tokens):
    model = tiny_model(router_features=router_features).eval()
    history = make_history(3, 6)
    before = model(history).extras["gate_probs"]
    with torch.no_grad():
        model.experts[0].patch.proj.weight.mul_(-3.0)
    assert (not torch.allclose(model(history).extras["gate_probs"], before)) == reads_tokens


def test_decomposition_features_add_seasonality_and_a_softmax_mix_of_trends():
    torch.manual_seed(0)
    features = DecompositionFeatures()
    level = torch.full((2, 2, 12), 4.0)
    torch.testing.assert_close(features.trend(level), level)  # weights sum to 1 over the kernels; replicated edges
    series = torch.randn(2, 2, 12)
    expected = series + DecompositionFeatures.seasonality(series) + features.trend(series)
    torch.testing.assert_close(features(series, []), expected)


@pytest.mark.parametrize("length", [12, 10])
def test_decomposition_seasonality_never_keeps_the_nyquist_component(length):
    steps = torch.arange(length, dtype=torch.float32)
    nyquist = torch.cos(math.pi * steps).expand(2, 3, length)  # +1, -1, ...: the fastest component
    slow = torch.sin(2 * math.pi * steps / length).expand(2, 3, length)  # one cycle per window is kept
    torch.testing.assert_close(DecompositionFeatures.seasonality(nyquist + slow), slow, atol=1e-5, rtol=0)


def test_decomposition_seasonality_recovers_a_pure_cycle():
    steps = torch.arange(12, dtype=torch.float32)
    cycle = torch.sin(2 * math.pi * 2 * steps / 12)
    series = (3.0 + cycle).expand(2, 5, 12)  # (B, N, H) with a mean the seasonality drops
    assert torch.allclose(DecompositionFeatures.seasonality(series), cycle.expand(2, 5, 12), atol=1e-5)


def test_head_is_a_relu_mlp_over_each_nodes_tokens_followed_by_inverse_revin():
    model = tiny_model().eval()
    history = make_history(3, 6)
    series, stats = model.normalise(history)
    tokens = [expert.embed(series) for expert in model.experts]
    mixed = model.mix_experts(tokens, model.period_embedding(history), model.route(series, tokens))
    first, last = model.head[0], model.head[3]
    forecast = last(torch.relu(first(mixed.reshape(3, 6, -1)))).transpose(1, 2)  # (B, F, N)
    expected = model.revin.denormalise(forecast, stats).unsqueeze(-1)
    torch.testing.assert_close(model(history).prediction, expected, atol=1e-5, rtol=1e-5)


def test_routing_probabilities_helper_returns_numpy_probs_and_time_of_day():
    model = tiny_model()
    history = make_history(7, 6, first_step=287)  # last input steps 298..304 -> tod 10..16
    probs, tod = routing_probabilities(model, history.numpy(), batch_size=3)
    assert probs.shape == (7, 4) and tod.shape == (7,)
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-6)
    assert tod.tolist() == list(range(10, 17))
    assert model.training  # mode restored
    batched, _ = routing_probabilities(model, [history[:4], history[4:]])
    assert np.allclose(batched, probs, atol=1e-6)
    model.eval()
    assert np.allclose(model(history).extras["gate_probs"].detach().numpy(), probs, atol=1e-6)


# --- components --------------------------------------------------------------------------------


def test_moving_patch_is_causal_with_replicated_left_boundary():
    torch.manual_seed(0)
    patch = MovingPatch(3, 4)
    series = torch.randn(1, 2, 12)
    tokens = patch(series)
    first = patch.proj(series[..., :1].repeat(1, 1, 3))
    assert torch.allclose(tokens[..., 0, :], first)
    changed = series.clone()
    changed[..., 7] += 1.0
    assert torch.equal(patch(changed)[..., :7, :], tokens[..., :7, :])


@pytest.mark.parametrize("day", [288, 96])  # 5-minute data; LargeST's 15-minute data
def test_period_embedding_looks_up_each_steps_slot_of_the_day_and_of_the_week(day):
    embedding = PeriodEmbedding(day, 4, 6)
    first = day * 9 + day - 8  # crosses midnight, Tuesday -> Wednesday
    history = make_history(2, 3, first_step=first, steps_per_day=day)
    steps = first + torch.arange(2)[:, None] + torch.arange(12)[None, :]  # (B, H)
    tod, dow = steps % day, (steps // day) % 7
    expected = torch.cat([embedding.day[tod], embedding.week[dow * day + tod]], dim=-1)
    torch.testing.assert_close(embedding(history), expected)


def test_routing_helper_reads_the_time_of_day_of_the_datasets_own_day_length():
    torch.manual_seed(0)
    model = build_model("hephaestus", DatasetMeta(name="largest", num_nodes=6, steps_per_day=96), TINY)
    _, tod = routing_probabilities(model, make_history(3, 6, first_step=90, steps_per_day=96))
    assert tod.tolist() == [5, 6, 7]  # last input steps 101..103 of a 96-step day


@pytest.mark.parametrize(("variant", "reads_time"), [("full", True), ("wo_pta", False)])
def test_the_time_of_day_alone_changes_the_forecast_through_pta(variant, reads_time):
    model = tiny_model(variant=variant).eval()
    history = make_history(2, 6)
    later = history.clone()
    later[..., 1] = (later[..., 1] + 100 / 288) % 1.0  # same values, 100 steps later in the day
    changed = not torch.allclose(model(later).prediction, model(history).prediction, atol=1e-6)
    assert changed == reads_time


def naive_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int) -> torch.Tensor:
    """softmax(Q K^T / sqrt(D / heads)) V per head over the second-last axis, written out."""
    width = q.shape[-1] // heads
    outputs = []
    for h in range(heads):
        part = slice(h * width, (h + 1) * width)
        scores = q[..., part] @ k[..., part].transpose(-1, -2) / math.sqrt(width)
        outputs.append(torch.softmax(scores, dim=-1) @ v[..., part])
    return torch.cat(outputs, dim=-1)


def test_pta_queries_come_from_the_period_embedding_and_attend_over_each_nodes_steps():
    torch.manual_seed(0)
    attention = TemporalAttention(hidden=8, heads=2, period_dim=5)
    x, period = torch.randn(2, 3, 12, 8), torch.randn(2, 12, 5)  # (B, N, H, C), P_e (B, H, d)
    query = attention.query(period)[:, None].expand(-1, 3, -1, -1)  # Eq. 11: P_e W_qt, the same for every node
    expected = attention.out(naive_attention(query, attention.key(x), attention.value(x), heads=2))
    torch.testing.assert_close(attention(x, period), expected, atol=1e-5, rtol=1e-5)


def test_hsa_follows_eqs_13_to_19_attending_over_the_nodes_of_each_step():
    torch.manual_seed(0)
    batch, nodes, steps, hidden, rank = 2, 5, 3, 8, 4
    hsa = HeterogeneousSpatialAttention(hidden, heads=2, rank=rank)
    x, node_embedding = torch.randn(batch, nodes, steps, hidden), torch.randn(nodes, rank)
    by_step = x.transpose(1, 2)  # (B, H, N, C): attention runs over the nodes of each step
    query = hsa.query(torch.cat([node_embedding.expand(batch, steps, -1, -1), hsa.query_tokens(by_step)], dim=-1))
    value_common = hsa.value_common(by_step)
    value_specific = torch.stack(
        [by_step[:, :, n] @ torch.einsum("k,kcd->cd", node_embedding[n], hsa.pattern_library) for n in range(nodes)], dim=2
    )
    share = torch.sigmoid(hsa.gate(torch.cat([value_common, value_specific], dim=-1)))
    value = share * value_common + (1 - share) * value_specific
    expected = hsa.out(naive_attention(query, hsa.key(by_step), value, heads=2)).transpose(1, 2)
    torch.testing.assert_close(hsa(x, node_embedding), expected, atol=1e-5, rtol=1e-5)


def test_hsa_query_reads_the_node_embedding():
    # With the pattern library at 0 the values no longer depend on S_e: only the query (Eq. 14) does.
    torch.manual_seed(0)
    hsa = HeterogeneousSpatialAttention(hidden=8, heads=2, rank=4)
    with torch.no_grad():
        hsa.pattern_library.zero_()
    x, node_embedding = torch.randn(2, 5, 3, 8), torch.randn(5, 4)
    assert not torch.allclose(hsa(x, node_embedding), hsa(x, node_embedding + torch.randn(5, 4)), atol=1e-4)


def test_hsa_parameters_start_at_the_specs_scales():
    torch.manual_seed(0)
    library = HeterogeneousSpatialAttention(hidden=32, heads=4, rank=16).pattern_library
    bound = 1 / math.sqrt(32)  # like a Linear(C -> D) weight: U(-1/sqrt(C), 1/sqrt(C))
    assert library.abs().max() <= bound and library.min() < -0.9 * bound and library.max() > 0.9 * bound
    node_embedding = build_model("hephaestus", PEMS04).experts[0].node_embedding  # S_e ~ N(0, 1/r), r = 16
    assert node_embedding.std().item() == pytest.approx(0.25, rel=0.05)
    assert abs(node_embedding.mean().item()) < 0.01


def test_post_norm_layer_adds_each_sublayer_to_its_input_then_normalises():
    torch.manual_seed(0)

    class Doubling(torch.nn.Module):
        def forward(self, x, context):
            return 2 * x + context

    layer = PostNormLayer(Doubling(), hidden=8, ffn_hidden=16, dropout=0.0)
    x, context = torch.randn(2, 3, 12, 8), torch.randn(8)
    y = layer.norm_attention(x + 2 * x + context)  # y = LN(x + Attn(x))
    ffn = layer.ffn[2](torch.relu(layer.ffn[0](y)))  # FFN = Linear - ReLU - Linear
    torch.testing.assert_close(layer(x, context), layer.norm_ffn(y + ffn))


ATTENTIONS = {  # name -> (a freshly built attention of width 8, its context, what it mixes)
    "pta": lambda: (TemporalAttention(8, 2, period_dim=5), torch.randn(1, 12, 5), "steps"),
    "vanilla_temporal": lambda: (TemporalAttention(8, 2, period_dim=None), None, "steps"),
    "hsa": lambda: (HeterogeneousSpatialAttention(8, 2, rank=4), torch.randn(5, 4), "nodes"),
    "vanilla_spatial": lambda: (SpatialAttention(8, 2), None, "nodes"),
}


@pytest.mark.parametrize("name", list(ATTENTIONS))
def test_temporal_attention_mixes_the_steps_of_a_node_and_spatial_attention_the_nodes_of_a_step(name):
    torch.manual_seed(0)
    attention, context, mixes = ATTENTIONS[name]()
    x = torch.randn(1, 5, 12, 8)  # (B, N, H, C)
    changed = x.clone()
    changed[0, 0, 6] += 3.0  # node 0 at step 6
    moved = (attention(changed, context) - attention(x, context)).abs().amax(dim=(0, 3)) > 1e-6  # (N, H)
    expected = torch.zeros(5, 12, dtype=torch.bool)
    if mixes == "steps":
        expected[0, :] = True  # every step of node 0, no other node
    else:
        expected[:, 6] = True  # every node at step 6, no other step
    assert torch.equal(moved, expected)


@pytest.mark.parametrize("revin", [True, False])
def test_revin_makes_forecasts_shift_equivariant(revin):
    model = tiny_model(revin=revin).eval()
    history = make_history(2, 6)
    shifted = history.clone()
    shifted[..., 0] += 5.0
    equivariant = torch.allclose(model(shifted).prediction, model(history).prediction + 5.0, atol=1e-4)
    assert equivariant == revin


def test_inverse_revin_restores_each_windows_scale_and_shift():
    torch.manual_seed(0)
    values = 7.0 * torch.randn(3, 12, 4) + torch.tensor([-5.0, 0.0, 2.0, 40.0])  # (B, H, N)
    for affine in (False, True):
        revin = RevIN(affine=affine)
        if affine:
            with torch.no_grad():
                revin.weight.fill_(2.0), revin.bias.fill_(0.5)
        normalised, stats = revin.normalise(values)
        plain = (normalised - 0.5) / 2.0 if affine else normalised
        torch.testing.assert_close(plain.mean(dim=1), torch.zeros(3, 4), atol=1e-5, rtol=0)
        torch.testing.assert_close(plain.std(dim=1, unbiased=False), torch.ones(3, 4), atol=1e-4, rtol=0)
        torch.testing.assert_close(revin.denormalise(normalised, stats), values, atol=1e-4, rtol=1e-5)


def test_revin_makes_forecasts_scale_equivariant():
    model = tiny_model().eval()
    history = make_history(2, 6)
    scaled = history.clone()
    scaled[..., 0] = 4.0 * history[..., 0] - 1.0
    torch.testing.assert_close(model(scaled).prediction, 4.0 * model(history).prediction - 1.0, atol=1e-3, rtol=1e-4)


@pytest.mark.parametrize(("overrides", "gap_aware"), [({}, False), ({"revin_gap_aware": True}, True)])
def test_revin_is_the_papers_by_default_and_gap_aware_only_when_asked(overrides, gap_aware):
    history = make_history(2, 6)
    history[:, 3:5, 2, 0] = -1.5  # a sensor gap: a raw 0 is -1.5 after z-scoring

    def forecast(missing_value: float | None) -> torch.Tensor:
        torch.manual_seed(0)
        meta = DatasetMeta(name="tiny", num_nodes=6, missing_value=missing_value)
        return build_model("hephaestus", meta, {**TINY, **overrides}).eval()(history).prediction

    assert torch.equal(forecast(-1.5), forecast(None)) != gap_aware


def test_revin_affine_adds_one_learned_weight_and_bias():
    assert count_parameters(tiny_model(revin_affine=True)) == count_parameters(tiny_model()) + 2
    assert tiny_model().revin.weight is None


def test_gap_aware_revin_leaves_missing_readings_out_of_the_window_statistics():
    missing = -1.5  # a raw 0 after z-scoring
    values = torch.tensor([[2.0, 4.0, missing, 6.0]]).T.reshape(1, 4, 1)  # (B, H, N)
    normalised, (mean, std) = RevIN(affine=False, missing_value=missing).normalise(values)
    assert mean.item() == pytest.approx(4.0)
    assert std.item() == pytest.approx(math.sqrt(8 / 3 + 1e-5))
    assert normalised[0, 2, 0].item() == 0.0  # the gap enters as the window mean
    _, (plain_mean, plain_std) = RevIN(affine=False).normalise(values)
    assert plain_mean.item() == pytest.approx((2 + 4 - 1.5 + 6) / 4)
    assert plain_std.item() == pytest.approx(values.std(unbiased=False).item(), rel=1e-5)
    lone = torch.tensor([missing, missing, 3.0, missing]).reshape(1, 4, 1)  # one reading left
    _, (lone_mean, _) = RevIN(affine=False, missing_value=missing).normalise(lone)
    assert lone_mean.item() == pytest.approx(3.0)


# --- variants ----------------------------------------------------------------------------------


def test_variants_carry_the_paper_display_names():
    displays = {v.name: v.display for v in get_model("hephaestus").variants}
    assert displays == {
        "full": "Full",
        "wo_ams_moe": "w/o AMS-MoE",
        "wo_pta": "w/o PTA",
        "wo_hsa": "w/o HSA",
        "fixed_scale_moe": "Fixed-Scale MoE",
        "noisy_routing_only": "Noisy-Routing Only",
    }


def test_fixed_scale_moe_weights_every_expert_by_one_over_m_without_router():
    model = tiny_model(variant="fixed_scale_moe")
    seen = count_expert_samples(model)
    out = model(make_history(3, 6))
    assert model.router is None and out.aux_loss is None
    assert torch.allclose(out.extras["gates"], torch.full((3, 4), 0.25))
    assert seen == [3, 3, 3, 3]


def test_noisy_routing_only_runs_every_expert_weighted_by_the_router():
    model = tiny_model(variant="noisy_routing_only")
    seen = count_expert_samples(model)
    out = model(make_history(3, 6))
    assert seen == [3, 3, 3, 3]
    assert torch.equal(out.extras["gates"], out.extras["gate_probs"])
    assert out.aux_loss is not None


def test_wo_ams_moe_is_one_patch3_expert_without_router():
    model = tiny_model(variant="wo_ams_moe")
    out = model(make_history(2, 6))
    assert model.patch_sizes == (3,) and model.router is None and out.aux_loss is None


def test_wo_pta_has_no_period_embeddings():
    names = [name for name, _ in tiny_model(variant="wo_pta").named_parameters()]
    assert not any("period_embedding" in name for name in names)
    assert any("period_embedding" in name for name, _ in tiny_model().named_parameters())


def test_wo_hsa_has_no_node_embeddings_or_pattern_library():
    model = tiny_model(variant="wo_hsa")
    names = [name for name, _ in model.named_parameters()]
    assert not any("node_embedding" in name or "pattern_library" in name for name in names)
    assert not any(isinstance(module, HeterogeneousSpatialAttention) for module in model.modules())
    assert model(make_history(2, 6)).prediction.shape == (2, 12, 6, 1)


# --- settings ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("num_experts", "patch_sizes"), [(2, (1, 3)), (3, (1, 3, 6)), (4, (1, 2, 3, 6)), (5, (1, 2, 3, 6, 12))]
)
@pytest.mark.parametrize("variant", ["full", "fixed_scale_moe"])
def test_num_experts_alone_picks_the_nested_patch_sets(num_experts, patch_sizes, variant):
    config = get_model("hephaestus").make_config({"variant": variant, "num_experts": num_experts})
    assert config.patch_sizes == patch_sizes


def test_patch_sizes_alone_set_the_number_of_experts():
    config = get_model("hephaestus").make_config({"patch_sizes": [1, 4, 12]})
    assert config.num_experts == 3 and config.patch_sizes == (1, 4, 12)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"top_k": 5}, "top_k"),
        ({"num_experts": 2, "top_k": 3}, "top_k"),
        ({"patch_sizes": [0, 3]}, "patch_sizes"),
        ({"patch_sizes": [1, 3], "num_experts": 4}, "patch_sizes"),
        ({"num_experts": 7}, "num_experts"),
        ({"gating": "noisy_dense", "aux_type": "switch"}, "aux_type"),
        ({"moe": "single", "patch_sizes": [1, 3]}, "patch_sizes"),
        ({"patch_sizes": [1, 1]}, "patch_sizes"),
        ({"dropout": 1.0}, "dropout"),
        ({"aux_weight": -0.1}, "aux_weight"),
        ({"rank": 0}, "rank"),
        ({"hidden": 30, "heads": 4}, "hidden"),
        ({"gating": "softmax"}, "gating"),
        ({"variant": "without_router"}, "variant"),
    ],
)
def test_inconsistent_settings_fail_naming_the_setting(overrides, field):
    with pytest.raises(ConfigError) as error:
        get_model("hephaestus").make_config(overrides)
    assert error.value.field == field
    assert str(overrides[field]).strip("[]") in error.value.reason  # and the value at fault
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("overrides", "patch_sizes"),
    [({"moe": "single"}, (3,)), ({"moe": "single", "patch_sizes": [1]}, (1,)), ({"dropout": 0.0, "aux_weight": 0.0}, (1, 2, 3, 6))],
)
def test_boundary_settings_are_accepted(overrides, patch_sizes):
    assert get_model("hephaestus").make_config(overrides).patch_sizes == patch_sizes


# --- devices and training ----------------------------------------------------------------------


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_forward_and_backward_run_on_cuda():
    model = tiny_model().cuda()
    out = model(make_history(4, 6).cuda())
    (out.prediction.mean() + out.aux_loss).backward()
    assert out.prediction.device.type == "cuda"


@pytest.mark.slow
def test_short_training_on_synthetic_data_beats_historical_average():
    # Two weeks: the validation days include weekday rush hours, which HA cannot track.
    data = prepare(generate_synthetic(num_nodes=12, num_steps=288 * 14, seed=0))
    config = TrainConfig(
        lr=3e-3,
        batch_size=32,
        max_epochs=3,
        patience=3,
        lr_schedule="none",
        seed=0,
        device="cpu",
        max_batches_per_epoch=30,
    )
    scores = {}
    for name, overrides in [("historical_average", {}), ("hephaestus", {**TINY, "head_hidden": 32})]:
        model = build_model(name, data.meta(), overrides)
        assert fit(model, data, config).status == "ok"
        scores[name] = evaluate(model, data, "test", config)["overall"]["mae"]
    assert scores["hephaestus"] < 0.95 * scores["historical_average"], scores


def test_wo_ams_moe_sets_aside_the_number_of_experts_of_a_base_configuration():
    # An ablation built on a sweep's best.yaml carries num_experts / top_k into every variant.
    config = get_model("hephaestus").make_config({"variant": "wo_ams_moe", "num_experts": 3, "top_k": 3})
    assert config.num_experts == 1 and config.patch_sizes == (3,)


def test_a_variant_replaces_explicit_settings_and_reports_what_it_replaced():
    entry = get_model("hephaestus")
    overrides = {"variant": "wo_ams_moe", "patch_sizes": [1, 3], "top_k": 1}
    config = entry.make_config(overrides)
    assert config.moe == "single" and config.patch_sizes == (3,) and config.top_k == 1
    assert entry.variant_overrides(overrides) == {"patch_sizes": ([1, 3], (3,))}
    assert entry.variant_overrides({"variant": "wo_ams_moe", "patch_sizes": [3]}) == {}  # same value: nothing replaced
    assert entry.variant_overrides({"gating": "uniform"}) == {}  # the full model replaces nothing
