"""LightST: teacher, student, distillation losses, variants and registry (spec lightst.md)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from harness.data import generate_synthetic, prepare
from harness.train import TrainConfig, evaluate, fit
from models.base import ConfigError, DatasetMeta, ModelOutput, count_parameters
from models.config import as_dict
from models.lightst import LightSTTeacher, normalized_adjacency, teacher_overrides
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
    adjacency = np.array([[0, 1, 0], [0, 0, 0], [0, 1, 0]], dtype=np.float32)
    s6 = 1 / np.sqrt(6)
    expected = np.array([[1 / 2, s6, 0], [s6, 1 / 3, s6], [0, s6, 1 / 2]])
    np.testing.assert_allclose(normalized_adjacency(adjacency).to_dense().numpy(), expected, rtol=1e-6)


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
    assert student.train()(make_history()).aux_loss is None


def test_teacher_variant_returns_the_trained_teacher_marked_not_trainable():
    model, teacher = build_pair({"variant": "teacher"})
    assert model is teacher
    assert model.trainable is False
    assert model.inference_parameters() == sum(p.numel() for p in teacher.parameters()) > 0
    assert get_model("lightst").variant("teacher").display == "Teacher (GCN+TCN)"


def test_distilling_variant_without_its_teacher_fails_clearly():
    with pytest.raises(ConfigError, match="teacher"):
        build_model("lightst", make_meta(), {"variant": "full"})


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


def test_student_holds_no_graph():
    student, _ = build_pair({"variant": "student_only"}, meta=make_meta(50))
    assert not any(buffer.shape == (50, 50) for buffer in student.buffers())
    assert not any(p.shape == (50, 50) for p in student.parameters())


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"layers": 0}, "layers"),
        ({"layers": 6}, "layers"),
        ({"tau1": 0.0}, "tau1"),
        ({"tau2": -0.1}, "tau2"),
        ({"tau3": 0}, "tau3"),
        ({"lambda1": -1.0}, "lambda1"),
        ({"lambda2": -0.5}, "lambda2"),
        ({"num_negatives": 0}, "num_negatives"),
        ({"teacher_gcn_layers": 0}, "teacher_gcn_layers"),
        ({"student_embeddings": ["node", "week"]}, "student_embeddings"),
    ],
)
def test_inconsistent_settings_fail_with_a_one_line_error_naming_the_field(overrides: dict, field: str):
    with pytest.raises(ConfigError) as error:
        get_model("lightst").make_config(overrides)
    assert error.value.field == field
    assert "\n" not in str(error.value)


def test_paper_mlp_depths_build():
    for layers in range(1, 6):
        student, _ = build_pair({"variant": "student_only", "layers": layers})
        assert len(student.blocks) == layers


def test_mse_supervised_loss_and_embedding_kl_switches():
    student, _ = build_pair({"sup_loss": "mse", "kl_on": "embedding", "variant": "wo_e_kd"})
    assert student.supervised_loss == "masked_mse"
    output = student.train()(make_history())
    assert set(output.extras) == {"loss/kl"} and output.extras["loss/kl"] >= 0


def test_window_input_norm_teacher_is_invariant_to_each_nodes_level():
    teacher = build_model("lightst_teacher", make_meta(), {"hidden": 8, "input_norm": "window", "dropout": 0.0}).eval()
    history = make_history()
    shifted = history.clone()
    shifted[..., 0] += 10.0
    torch.testing.assert_close(teacher(shifted).prediction, teacher(history).prediction + 10.0, atol=1e-3, rtol=1e-4)


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
