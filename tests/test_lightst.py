"""LightST: teacher, student, distillation losses, variants and registry (spec lightst.md)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from harness.data import generate_synthetic, prepare
from harness.loop import TrainConfig, evaluate, fit
from models.base import ConfigError, DatasetMeta, ModelOutput, count_parameters
from models.config import as_dict
from models.lightst import LightSTTeacher, TeacherConfig, build_lightst, normalized_adjacency, teacher_overrides
from models.lightst.distill import adaptive_info_nce, softmax_kl, spatial_info_nce, temporal_info_nce
from models.registry import build_model, get_model

B, H, N = 4, 12, 9


def ring_graph(num_nodes: int) -> np.ndarray:
    """A directed ring (i -> i+1): sparse, like a road graph."""
    adjacency = np.zeros((num_nodes, num_nodes), dtype=np.float32)
    adjacency[np.arange(num_nodes), (np.arange(num_nodes) + 1) % num_nodes] = 1.0
    return adjacency


def make_meta(num_nodes: int = N) -> DatasetMeta:
    return DatasetMeta("toy", num_nodes, adjacency=ring_graph(num_nodes))


def make_history(batch: int = B, num_nodes: int = N, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    history = torch.randn(batch, H, num_nodes, 3, generator=generator)
    history[..., 1] = torch.randint(0, 288, (batch, 1, 1), generator=generator) / 288
    history[..., 2] = torch.randint(0, 7, (batch, 1, 1), generator=generator) / 7
    return history


def build_pair(overrides: dict | None = None, meta: DatasetMeta | None = None) -> tuple[torch.nn.Module, LightSTTeacher | None]:
    """The `lightst` model for `overrides`, with the teacher its TeacherLink asks for."""
    torch.manual_seed(0)
    meta = meta or make_meta()
    entry = get_model("lightst")
    settings = entry.teacher.config(entry.make_config(overrides))
    teacher = None if settings is None else build_model(entry.teacher.model, meta, settings)
    return build_model("lightst", meta, overrides, teacher=teacher), teacher


def noise_in(teacher: torch.nn.Module, output: str) -> torch.utils.hooks.RemovableHandle:
    """Replace one teacher output ("prediction", "gcn_embedding" or "tcn_embedding") by noise."""

    def replace(module: torch.nn.Module, args: tuple, result: ModelOutput) -> ModelOutput:
        if output == "prediction":
            result.prediction = torch.randn_like(result.prediction)
        else:
            result.extras[output] = torch.randn_like(result.extras[output])
        return result

    return teacher.register_forward_hook(replace)


def loss_terms(output: ModelOutput) -> dict[str, torch.Tensor]:
    """The distillation terms a training-mode forward reports, by name ("kl", "spatial", "temporal")."""
    return {key.removeprefix("loss/"): value for key, value in output.extras.items() if key.startswith("loss/")}


def test_teacher_returns_prediction_and_both_embeddings():
    teacher = build_model("lightst_teacher", make_meta(), {"hidden": 16})
    output = teacher(make_history())
    assert output.prediction.shape == (B, 12, N, 1)
    assert output.extras["gcn_embedding"].shape == (B, H, N, 16)
    assert output.extras["tcn_embedding"].shape == (B, H, N, 16)


def test_student_shapes_in_train_and_eval_mode():
    student, _ = build_pair()
    history = make_history()
    assert student.train()(history).prediction.shape == (B, 12, N, 1)
    assert student.eval()(history).prediction.shape == (B, 12, N, 1)


def test_normalised_adjacency_of_a_path_graph_matches_hand_computation():
    # Path 0 - 1 - 2 given one-way (0->1, 2->1): symmetrised, plus self-loops -> degrees 2, 3, 2.
    adjacency = np.array([[0, 1, 0], [0, 0, 0], [0, 1, 0]], dtype=np.float64)
    s6 = 1 / np.sqrt(6)
    expected = np.array([[1 / 2, s6, 0], [s6, 1 / 3, s6], [0, s6, 1 / 2]])
    normalised = normalized_adjacency(adjacency)
    assert normalised.dtype == torch.float32  # whatever the graph file's precision
    np.testing.assert_allclose(normalised.to_dense().numpy(), expected, rtol=1e-6)


def test_teacher_message_passing_reaches_only_graph_neighbours():
    # Ring of 9: two GCN layers + the causal TCN see nodes at most 2 hops away.
    teacher = build_model("lightst_teacher", make_meta(), {"hidden": 8, "dropout": 0.0}).eval()
    history = make_history()
    changed = history.clone()
    changed[:, :, 0, 0] += 5.0
    difference = (teacher(changed).prediction - teacher(history).prediction).abs().amax(dim=(0, 1, 3))
    assert (difference[[0, 1, 2, 7, 8]] > 0).all()
    assert torch.equal(difference[3:7], torch.zeros(4))


def test_teacher_tcn_is_causal_in_time():
    # Causal TCN: changing the last input step leaves the TCN embeddings of earlier steps unchanged.
    teacher = build_model("lightst_teacher", make_meta(), {"hidden": 8, "dropout": 0.0}).eval()
    history = make_history()
    changed = history.clone()
    changed[:, -1, :, 0] += 3.0
    before = teacher(history).extras["tcn_embedding"]
    after = teacher(changed).extras["tcn_embedding"]
    torch.testing.assert_close(before[:, :-1], after[:, :-1])
    assert not torch.allclose(before[:, -1], after[:, -1])


def test_gcn_embedding_sums_the_input_embedding_and_every_rectified_layer():
    # No edges: Â = I. Identity weights: E(1) = E(2) = ReLU(E(0)), so E_gcn = E(0) + 2 ReLU(E(0)) (Eq. 3).
    meta = DatasetMeta("edgeless", 5, adjacency=np.zeros((5, 5), dtype=np.float32))
    teacher = build_model("lightst_teacher", meta, {"hidden": 4, "dropout": 0.0}).eval()
    with torch.no_grad():
        for layer in teacher.gcn:
            layer.weight.copy_(torch.eye(4))
    history = make_history(num_nodes=5)
    first = teacher.input_embedding(history[..., :1])  # E(0) = x e + b_e (Eq. 1), (B, H, N, d)
    torch.testing.assert_close(teacher(history).extras["gcn_embedding"], first + 2 * torch.relu(first))


def test_gcn_layer_propagates_over_the_normalised_graph_then_projects():
    teacher = build_model("lightst_teacher", make_meta(), {"hidden": 4, "gcn_layers": 1, "dropout": 0.0}).eval()
    history = make_history()
    first = teacher.input_embedding(history[..., :1])
    adjacency = normalized_adjacency(ring_graph(N)).to_dense()
    layer = torch.relu(torch.einsum("nm,bhmd->bhnd", adjacency, first) @ teacher.gcn[0].weight.T)
    torch.testing.assert_close(teacher(history).extras["gcn_embedding"], first + layer)


def test_tcn_layers_add_their_input_back_and_the_head_reads_every_step():
    # Convolutions at 0: each layer is LeakyReLU(0 + E), so E_tcn = LeakyReLU(LeakyReLU(E_gcn)) (Eq. 4).
    teacher = build_model("lightst_teacher", make_meta(), {"hidden": 4, "dropout": 0.0}).eval()
    with torch.no_grad():
        for conv in teacher.tcn:
            conv.linear.weight.zero_(), conv.linear.bias.zero_()
    output = teacher(make_history())
    gcn, tcn = output.extras["gcn_embedding"], output.extras["tcn_embedding"]
    torch.testing.assert_close(tcn, F.leaky_relu(F.leaky_relu(gcn)))
    per_node = tcn.permute(0, 2, 1, 3).reshape(B, N, -1)  # (B, N, H*d)
    torch.testing.assert_close(output.prediction, teacher.head(per_node).transpose(1, 2).unsqueeze(-1))


def test_tcn_sees_kernel_size_steps_back_per_layer():
    # Two causal layers of kernel 3: input step 3 reaches steps 3..7 of E_tcn, and nothing else.
    teacher = build_model("lightst_teacher", make_meta(), {"hidden": 8, "dropout": 0.0}).eval()
    history = make_history()
    changed = history.clone()
    changed[:, 3, :, 0] += 3.0
    moved = (teacher(changed).extras["tcn_embedding"] - teacher(history).extras["tcn_embedding"]).abs().amax(dim=(0, 2, 3))
    assert ((moved > 1e-6) == torch.isin(torch.arange(H), torch.arange(3, 8))).all()


def test_kl_is_zero_when_student_and_teacher_agree_and_positive_otherwise():
    prediction = torch.randn(B, 12, N, 1)
    assert softmax_kl(prediction, prediction.clone(), tau=1.0, dim=1).item() == pytest.approx(0.0, abs=1e-7)
    assert softmax_kl(prediction, torch.randn(B, 12, N, 1), tau=1.0, dim=1).item() > 0.01


def test_kl_is_averaged_not_summed_over_nodes():
    torch.manual_seed(0)
    student, teacher = torch.randn(2, 12, 5, 1), torch.randn(2, 12, 5, 1)
    tiled = softmax_kl(student.repeat(1, 1, 40, 1), teacher.repeat(1, 1, 40, 1), tau=1.0, dim=1)
    torch.testing.assert_close(tiled, softmax_kl(student, teacher, tau=1.0, dim=1))


@pytest.mark.parametrize("adaptive", [False, True])
@pytest.mark.parametrize("num_negatives", [None, 4])
def test_info_nce_is_lower_for_aligned_than_for_shuffled_embeddings(adaptive: bool, num_negatives: int | None):
    torch.manual_seed(0)
    teacher = torch.randn(B, 12, N, 16)
    aligned = teacher + 0.1 * torch.randn_like(teacher)
    shuffled_nodes = aligned[:, :, torch.randperm(N)]
    shuffled_steps = aligned[:, torch.randperm(12)]
    spatial = spatial_info_nce(aligned, teacher, tau=0.1, adaptive=adaptive, num_negatives=num_negatives)
    assert spatial < spatial_info_nce(shuffled_nodes, teacher, tau=0.1, adaptive=adaptive, num_negatives=num_negatives)
    temporal = temporal_info_nce(aligned, teacher, tau=0.1, adaptive=adaptive)
    assert temporal < temporal_info_nce(shuffled_steps, teacher, tau=0.1, adaptive=adaptive)


def test_an_anchors_own_positive_is_never_counted_as_its_negative():
    # One node (spatial) or one step (temporal): the only candidate is the positive itself,
    # so with it masked out of the negatives the loss is exactly 0 (it would be log 2 otherwise).
    embedding = torch.randn(2, 12, 1, 8)
    assert spatial_info_nce(embedding, embedding, tau=0.1, adaptive=False, num_negatives=None).item() == 0.0
    assert temporal_info_nce(embedding[:, :1], embedding[:, :1], tau=0.1, adaptive=False).item() == 0.0


def kl(p: list[float], q: list[float]) -> float:
    """KL(p || q) of two discrete distributions, by hand."""
    return float(sum(a * np.log(a / b) for a, b in zip(p, q)))


def test_kl_is_teacher_to_student_at_temperature_tau1():
    # Two horizon steps: teacher (0.8, 0.2), student (0.1, 0.9), as log-probabilities.
    teacher = torch.log(torch.tensor([0.8, 0.2])).view(1, 2, 1, 1)
    student = torch.log(torch.tensor([0.1, 0.9])).view(1, 2, 1, 1)
    assert softmax_kl(student, teacher, tau=1.0, dim=1).item() == pytest.approx(kl([0.8, 0.2], [0.1, 0.9]), rel=1e-5)
    # tau = 2 takes square roots: teacher (2/3, 1/3), student (1/4, 3/4)
    assert softmax_kl(student, teacher, tau=2.0, dim=1).item() == pytest.approx(kl([2 / 3, 1 / 3], [0.25, 0.75]), rel=1e-5)


def test_adaptive_info_nce_weights_each_negative_by_how_unlike_the_teacher_finds_it():
    # Candidates: the positive itself (masked), a negative 30 degrees from it (alike), its opposite.
    # Two anchors 60 degrees from the positive, of lengths 1 and 5 (cosine ignores length).
    def at(degrees: float, length: float = 1.0) -> list[float]:
        return [length * np.cos(np.radians(degrees)), length * np.sin(np.radians(degrees))]

    positive = torch.tensor([[at(0), at(0, 2.0)]])  # (1, M=2, d)
    candidates = torch.tensor([[at(0, 3.0), at(30, 0.5), at(180)]])  # (1, K=3, d)
    anchor = torch.tensor([[at(60), at(60, 5.0)]])  # cosines: positive 0.5, alike 0.866, opposite -0.5
    is_positive = torch.tensor([[True, False, False], [True, False, False]])
    tau = 0.5

    def expected(weights: tuple[float, float]) -> float:
        negatives = weights[0] * np.exp((np.cos(np.radians(30)) - 0.5) / tau) + weights[1] * np.exp((-0.5 - 0.5) / tau)
        return float(np.log(1.0 + negatives))  # -log(e^s+ / (e^s+ + sum_k w_k e^s_k))

    alike_weight = (1 - np.cos(np.radians(30))) / 2  # 0.067: pushed apart far less than the opposite (weight 1)
    adaptive = adaptive_info_nce(anchor, positive, candidates, is_positive, tau, adaptive=True)
    plain = adaptive_info_nce(anchor, positive, candidates, is_positive, tau, adaptive=False)
    assert adaptive.item() == pytest.approx(expected((alike_weight, 1.0)), rel=1e-5)
    assert plain.item() == pytest.approx(expected((1.0, 1.0)), rel=1e-5)


@pytest.mark.parametrize("num_negatives", [3, 5])
def test_spatial_info_nce_samples_its_negative_nodes(num_negatives: int):
    torch.manual_seed(0)
    teacher = torch.randn(B, 12, N, 16)
    student = teacher + 0.5 * torch.randn_like(teacher)
    torch.manual_seed(1)
    sampled = spatial_info_nce(student, teacher, tau=0.1, adaptive=True, num_negatives=num_negatives)
    torch.manual_seed(1)
    nodes = torch.randperm(N)[:num_negatives]
    is_positive = torch.arange(N)[:, None] == nodes[None, :]
    expected = adaptive_info_nce(student, teacher, teacher[:, :, nodes], is_positive, 0.1, True)
    torch.testing.assert_close(sampled, expected)
    assert sampled < spatial_info_nce(student, teacher, tau=0.1, adaptive=True, num_negatives=None)


@pytest.mark.parametrize(("noisy", "moved"), [("prediction", {"kl"}), ("gcn_embedding", {"spatial"}), ("tcn_embedding", {"temporal"})])
def test_each_distillation_term_reads_only_its_own_teacher_output(noisy: str, moved: set[str]):
    # L_KL reads the teacher's prediction, L_P its E_gcn (positives and negatives), L_E its E_tcn.
    student, teacher = build_pair({"dropout": 0.0})
    history = make_history()
    clean = loss_terms(student.train()(history))
    noise_in(teacher, noisy)
    noised = loss_terms(student(history))
    assert {name for name in clean if not torch.allclose(clean[name], noised[name])} == moved


@pytest.mark.parametrize(
    ("setting", "value", "moved"),
    [
        ("tau1", 2.0, {"kl"}),
        ("tau2", 0.2, {"spatial"}),
        ("tau3", 0.2, {"temporal"}),
        ("adaptive", False, {"spatial", "temporal"}),
        ("num_negatives", 3, {"spatial"}),
        ("num_negatives", "all", set()),  # every one of the 9 nodes, like the default 128
    ],
)
def test_each_setting_changes_only_its_own_terms(setting: str, value: object, moved: set[str]):
    history = make_history()
    default = loss_terms(build_pair({"dropout": 0.0})[0].train()(history))
    changed = loss_terms(build_pair({"dropout": 0.0, setting: value})[0].train()(history))
    assert {name for name in default if not torch.allclose(default[name], changed[name])} == moved


@pytest.mark.parametrize("kl_on", ["prediction", "embedding"])
def test_prediction_kl_compares_the_horizons_and_embedding_kl_the_channels(kl_on: str):
    student, teacher = build_pair({"dropout": 0.0, "kl_on": kl_on, "tau1": 2.0})
    history = make_history()
    output = student.train()(history)
    hidden = student.encode(history)
    steps = student.step_embedding(hidden).view(B, N, 12, -1).transpose(1, 2)  # E_s (B, F, N, d)
    if kl_on == "prediction":  # softmax over the F horizon steps
        mine, theirs, axis = output.prediction, teacher(history).prediction, 1
    else:  # softmax over the d channels of the projected E_s and of E_tcn
        mine, theirs, axis = student.temporal_projection(steps), teacher(history).extras["tcn_embedding"], -1
    p, log_q = torch.softmax(theirs / 2.0, dim=axis), torch.log_softmax(mine / 2.0, dim=axis)
    expected = (p * (p.log() - log_q)).sum(dim=axis).mean()
    torch.testing.assert_close(loss_terms(output)["kl"], expected)


SEARCHED_WEIGHTS = {"lambda1": 4.2, "lambda2": 0.37}  # e.g. from a sweep's best.yaml
TEACHER_OUTPUT_OF_TERM = {"kl": "prediction", "spatial": "gcn_embedding", "temporal": "tcn_embedding"}


@pytest.mark.parametrize(
    "variant, terms",
    [
        ("full", {"kl", "spatial", "temporal"}),
        ("wo_e_kd", {"kl"}),
        ("wo_e_s", {"kl", "temporal"}),
        ("wo_e_t", {"kl", "spatial"}),
        ("wo_p_kd", {"spatial", "temporal"}),
        ("student_only", set()),
    ],
)
def test_each_variant_removes_its_terms_whatever_the_searched_weights(variant: str, terms: set[str]):
    student, teacher = build_pair({**SEARCHED_WEIGHTS, "variant": variant, "dropout": 0.0})
    history = make_history()
    output = student.train()(history)
    assert set(loss_terms(output)) == terms
    assert (student.spatial_projection is not None) == ("spatial" in terms)  # no head for a removed term
    assert (student.temporal_projection is not None) == ("temporal" in terms)
    if not terms:
        assert output.aux_loss is None
        assert teacher is None and student.teacher is None
        return
    weights = {"kl": 4.2, "spatial": 0.37, "temporal": 0.37}
    torch.testing.assert_close(output.aux_loss.detach(), sum(weights[t] * loss_terms(output)[t] for t in terms))
    for term, teacher_output in TEACHER_OUTPUT_OF_TERM.items():  # the aux loss depends on its terms only
        hook = noise_in(teacher, teacher_output)
        moved = not torch.allclose(student(history).aux_loss, output.aux_loss)
        hook.remove()
        assert moved == (term in terms), term


def test_variants_resolve_to_distinct_configs_over_searched_weights():
    entry = get_model("lightst")
    resolved = {}
    for variant in entry.variants:
        config = entry.make_config({**SEARCHED_WEIGHTS, "variant": variant.name})
        assert (config.lambda1, config.lambda2) == (4.2, 0.37)
        resolved[variant.name] = tuple(sorted((k, str(v)) for k, v in as_dict(config).items() if k != "variant"))
    assert len(set(resolved.values())) == len(resolved)


def test_a_variant_wins_over_an_explicit_switch_and_reports_it():
    entry = get_model("lightst")
    overrides = {**SEARCHED_WEIGHTS, "variant": "wo_p_kd", "prediction_kd": True, "spatial_kd": True}
    config = entry.make_config(overrides)
    assert not config.prediction_kd and not config.uses_kl and config.uses_spatial
    assert entry.variant_overrides(overrides) == {"prediction_kd": (True, False)}
    assert entry.variant_overrides({"variant": "student_only", "lambda1": 0.0}) == {}


def test_student_only_needs_no_teacher_and_no_graph():
    entry = get_model("lightst")
    assert teacher_overrides(entry.make_config({"variant": "student_only"})) is None
    student = build_model("lightst", DatasetMeta("no-graph", N), {"variant": "student_only"})
    output = student.train()(make_history())
    assert output.aux_loss is None and output.prediction.shape == (B, 12, N, 1)
    handed_a_teacher = build_model("lightst", make_meta(), {"variant": "student_only"}, teacher=build_model("lightst_teacher", make_meta()))
    assert handed_a_teacher.teacher is None  # nothing to distil: the teacher is not kept


def test_teacher_variant_returns_the_trained_teacher_marked_not_trainable():
    model, teacher = build_pair({"variant": "teacher"})
    assert model is teacher
    assert model.trainable is False
    assert model.inference_parameters() == sum(p.numel() for p in teacher.parameters()) > 0
    assert get_model("lightst").variant("teacher").display == "Teacher (GCN+TCN)"


def test_distilling_variant_without_its_teacher_fails_clearly():
    with pytest.raises(ConfigError) as error:
        build_model("lightst", make_meta(), {"variant": "full"})
    assert error.value.field == "teacher" and "lightst_teacher" in error.value.reason


def test_no_gradient_reaches_a_frozen_teacher():
    student, teacher = build_pair()
    student.train()
    assert not teacher.training  # .train() on the student leaves the frozen teacher in eval mode
    student(make_history()).aux_loss.backward()
    assert all(p.grad is None for p in teacher.parameters())
    assert student.spatial_projection.weight.grad is not None
    assert not any(p.requires_grad for p in teacher.parameters())


def test_trainable_teacher_trains_jointly():
    student, teacher = build_pair({"teacher_trainable": True})
    student.train()
    assert teacher.training
    student(make_history()).aux_loss.backward()
    assert teacher.head.weight.grad is not None


def test_inference_parameters_exclude_teacher_and_projection_heads():
    student, teacher = build_pair()
    projections = sum(p.numel() for m in (student.spatial_projection, student.temporal_projection) for p in m.parameters())
    assert count_parameters(student) == student.inference_parameters() + projections
    assert student.inference_parameters() < count_parameters(student) + sum(p.numel() for p in teacher.parameters())


def test_eval_runs_the_student_alone_with_the_same_prediction():
    student, teacher = build_pair({"dropout": 0.0})
    history = make_history()
    trained_prediction = student.train()(history).prediction

    def refuse(*_: object) -> None:
        raise AssertionError("inference touched the teacher")

    teacher.register_forward_pre_hook(refuse)
    output = student.eval()(history)
    assert output.aux_loss is None
    torch.testing.assert_close(output.prediction, trained_prediction, atol=1e-5, rtol=1e-5)


def test_student_reads_the_time_of_day_and_week_of_the_last_input_step():
    student = build_pair({"variant": "student_only"})[0].eval()
    history = make_history()
    other_earlier_slots = history.clone()
    other_earlier_slots[:, :-1, :, 1] = (history[:, :-1, :, 1] + 0.5) % 1.0
    other_earlier_slots[:, :-1, :, 2] = (history[:, :-1, :, 2] + 3 / 7) % 1.0
    torch.testing.assert_close(student(other_earlier_slots).prediction, student(history).prediction)
    for channel, shift in ((1, 5 / 288), (2, 1 / 7)):
        other_last_slot = history.clone()
        other_last_slot[:, -1, :, channel] = (history[:, -1, :, channel] + shift) % 1.0
        assert not torch.allclose(student(other_last_slot).prediction, student(history).prediction, atol=1e-6)


@pytest.mark.parametrize(("embeddings", "tells_apart"), [(["node", "tod", "dow"], True), (["tod", "dow"], False)])
def test_node_identity_embedding_tells_apart_nodes_with_the_same_inputs(embeddings: list[str], tells_apart: bool):
    student = build_pair({"variant": "student_only", "student_embeddings": embeddings})[0].eval()
    history = make_history()
    history[..., 0] = history[:, :, :1, 0]  # every node the same series
    prediction = student(history).prediction
    assert (not torch.allclose(prediction[:, :, 0], prediction[:, :, 1])) == tells_apart


def test_a_student_without_time_embeddings_ignores_the_time_channels():
    student = build_pair({"variant": "student_only", "student_embeddings": ["node"]})[0].eval()
    history = make_history()
    other_time = history.clone()
    other_time[..., 1:] = (history[..., 1:] + 0.5) % 1.0
    torch.testing.assert_close(student(other_time).prediction, student(history).prediction)


def test_student_time_of_day_table_follows_the_datasets_day_length():
    meta = DatasetMeta("largest", N, steps_per_day=96)
    student = build_model("lightst", meta, {"variant": "student_only"}).eval()
    assert student.tod_embedding.num_embeddings == 96
    history = make_history()
    history[..., 1] = 95 / 96  # the last slot of a 96-step day
    assert student(history).prediction.shape == (B, 12, N, 1)


@pytest.mark.parametrize("variant", ["wo_e_s", "wo_e_t"])
def test_embedding_distillation_needs_as_many_input_as_output_steps(variant: str):
    meta = DatasetMeta("toy", N, output_len=6, adjacency=ring_graph(N))
    teacher = build_model("lightst_teacher", meta)
    with pytest.raises(ConfigError) as error:
        build_model("lightst", meta, {"variant": variant}, teacher=teacher)
    assert error.value.field == "output_len" and "input_len" in error.value.reason


def test_student_holds_no_graph():
    student, _ = build_pair({"variant": "student_only"}, meta=make_meta(50))
    assert not any(buffer.shape == (50, 50) for buffer in student.buffers())
    assert not any(p.shape == (50, 50) for p in student.parameters())


@pytest.mark.parametrize(
    "model, overrides, field, shown",
    [
        ("lightst", {"layers": 0}, "layers", "0"),
        ("lightst", {"layers": 6}, "layers", "6"),
        ("lightst", {"tau1": 0.0}, "tau1", "0.0"),
        ("lightst", {"tau2": -0.1}, "tau2", "-0.1"),
        ("lightst", {"tau3": 0}, "tau3", "0"),
        ("lightst", {"lambda1": -1.0}, "lambda1", "-1.0"),
        ("lightst", {"lambda2": -0.5}, "lambda2", "-0.5"),
        ("lightst", {"num_negatives": 0}, "num_negatives", "0"),
        ("lightst", {"teacher_gcn_layers": 0}, "teacher_gcn_layers", "0"),
        ("lightst", {"student_embeddings": ["node", "week"]}, "student_embeddings", "week"),
        ("lightst", {"student_embeddings": ["tod", "tod"]}, "student_embeddings", "'tod', 'tod'"),
        ("lightst", {"dropout": 1.0}, "dropout", "1.0"),
        *(("lightst", {name: 0}, name, "0") for name in ("series_dim", "node_dim", "time_dim", "step_dim")),
        *(("lightst_teacher", {name: 0}, name, "0") for name in ("hidden", "gcn_layers", "tcn_layers", "kernel_size")),
        ("lightst_teacher", {"dropout": 1.0}, "dropout", "1.0"),
    ],
)
def test_inconsistent_settings_fail_with_a_one_line_error_naming_the_field(model: str, overrides: dict, field: str, shown: str):
    with pytest.raises(ConfigError) as error:
        get_model(model).make_config(overrides)
    assert error.value.field == field
    assert shown in error.value.reason
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    "overrides", [{"num_negatives": 1}, {"num_negatives": "all"}, {"lambda1": 0.0, "lambda2": 0.0}, {"dropout": 0.0}]
)
def test_boundary_settings_are_accepted(overrides: dict):
    config = get_model("lightst").make_config(overrides)
    assert all(getattr(config, name) == value for name, value in overrides.items())


@pytest.mark.parametrize(
    "adjacency",
    [np.ones((3, 4)), np.ones((2, 2, 2)), np.array([[0.0, -1.0], [1.0, 0.0]]), np.array([[0.0, np.nan], [1.0, 0.0]])],
    ids=["not-square", "not-a-matrix", "negative-weight", "nan-weight"],
)
def test_a_bad_road_graph_fails_naming_the_adjacency(adjacency: np.ndarray):
    with pytest.raises(ConfigError) as error:
        normalized_adjacency(adjacency)
    assert error.value.field == "adjacency" and error.value.reason


@pytest.mark.parametrize(("adjacency", "field", "shown"), [(ring_graph(4), "adjacency", "5 nodes"), (None, "dataset", "bad")])
def test_a_teacher_without_its_datasets_graph_fails_naming_it(adjacency: np.ndarray | None, field: str, shown: str):
    with pytest.raises(ConfigError) as error:
        LightSTTeacher(TeacherConfig(), DatasetMeta("bad", 5, adjacency=adjacency))
    assert error.value.field == field and shown in error.value.reason


def test_build_refuses_a_missing_or_foreign_teacher():
    config = get_model("lightst").make_config({"variant": "teacher"})
    with pytest.raises(ConfigError) as missing:
        build_lightst(config, make_meta())
    assert missing.value.field == "predictor" and "teacher" in missing.value.reason
    with pytest.raises(ConfigError) as foreign:
        build_lightst(config, make_meta(), teacher=build_model("stid", make_meta()))
    assert foreign.value.field == "teacher" and "STID" in foreign.value.reason


def test_the_teachers_graph_is_not_part_of_its_saved_weights():
    teacher = build_model("lightst_teacher", make_meta(), {"hidden": 4})
    assert "adjacency" not in teacher.state_dict()


def test_paper_mlp_depths_build():
    for layers in range(1, 6):
        student, _ = build_pair({"variant": "student_only", "layers": layers})
        assert len(student.blocks) == layers


def test_mse_supervised_loss_and_embedding_kl_switches():
    student, _ = build_pair({"sup_loss": "mse", "kl_on": "embedding", "variant": "wo_e_kd"})
    assert student.supervised_loss == "masked_mse"
    output = student.train()(make_history())
    assert set(output.extras) == {"loss/kl"} and output.extras["loss/kl"] >= 0


def test_window_input_norm_teacher_follows_each_nodes_level_and_scale():
    teacher = build_model("lightst_teacher", make_meta(), {"hidden": 8, "input_norm": "window", "dropout": 0.0}).eval()
    history = make_history()
    scale, level = torch.linspace(0.5, 3.0, N), torch.linspace(-10.0, 10.0, N)  # per node
    moved = history.clone()
    moved[..., 0] = history[..., 0] * scale + level
    expected = teacher(history).prediction * scale[:, None] + level[:, None]
    torch.testing.assert_close(teacher(moved).prediction, expected, atol=1e-3, rtol=1e-4)
    # each sample's own window: a sample forecasts the same alone or in a batch
    torch.testing.assert_close(teacher(history[1:2]).prediction, teacher(history).prediction[1:2])


def test_pems07_size_student_step_at_batch_8_runs_on_cpu():
    torch.manual_seed(0)
    num_nodes = 883
    student, _ = build_pair(meta=make_meta(num_nodes))
    optimizer = torch.optim.Adam([p for p in student.parameters() if p.requires_grad], lr=1e-3)
    output = student.train()(make_history(batch=8, num_nodes=num_nodes))
    loss = output.prediction.abs().mean() + output.aux_loss
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss)
    assert set(output.extras) == {"loss/kl", "loss/spatial", "loss/temporal"}


def test_short_distillation_run_on_synthetic_data_learns():
    data = prepare(generate_synthetic(num_nodes=8, num_steps=288 * 3, seed=0))
    training = TrainConfig(lr=3e-3, batch_size=32, max_epochs=2, max_batches_per_epoch=8, device="cpu", seed=0)
    torch.manual_seed(0)
    teacher = build_model("lightst_teacher", data.meta())
    fit(teacher, data, training)
    student = build_model("lightst", data.meta(), teacher=teacher)
    untrained = evaluate(student, data, "val", training)["overall"]["mae"]
    result = fit(student, data, training)
    assert result.status == "ok"
    assert result.best_val_mae < 0.6 * untrained
    for term in ("loss_kl", "loss_spatial", "loss_temporal"):
        assert all(np.isfinite(epoch[term]) for epoch in result.history)
    assert result.history[-1]["loss_temporal"] < result.history[0]["loss_temporal"]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_teacher_and_distilled_student_train_on_cuda():
    data = prepare(generate_synthetic(num_nodes=8, num_steps=288 * 3, seed=0))
    teacher = build_model("lightst_teacher", data.meta(), {"hidden": 8}).cuda()
    student = build_model("lightst", data.meta(), {"teacher_hidden": 8}, teacher=teacher).cuda()
    x, _ = data.split("train").batch(np.arange(4))
    out = student(torch.from_numpy(x).cuda())
    (out.prediction.mean() + out.aux_loss).backward()
    assert out.prediction.device.type == "cuda" and out.aux_loss.item() > 0
