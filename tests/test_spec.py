"""Campaign files: every malformed spec is one line naming the file and the field."""

import textwrap

import optuna
import pytest

from harness.space import DefineByRun, suggest
from harness.errors import UsageError
from harness.spec import Overrides, SpecError, parse_ablation, parse_sweep
from models import build_model
from models.base import DatasetMeta

SWEEP = """\
name: test-sweep
model: stid
datasets: [synthetic]
fixed: {max_epochs: 3}
space:
  num_layers: {type: int, low: 1, high: 4}
  embed_dim: {type: categorical, choices: [16, 32]}
  lr: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}
objective: {metric: val_mae, mode: min}
search: {sampler: tpe, num_samples: 5, seed: 0, scheduler: {type: asha, grace_period: 1, reduction_factor: 2}}
resources: {cpu: 1, gpu: 0}
max_concurrent: 2
"""

ABLATION = """\
name: test-ablation
model: stid
datasets: [synthetic]
seeds: [0, 1]
base: {max_epochs: 2}
reference: Full
variants:
  Full: {}
  No node embedding: {use_node: false}
"""


def write(tmp_path, text, name="spec.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_valid_sweep_parses_into_a_campaign(tmp_path):
    campaign = parse_sweep(write(tmp_path, SWEEP))
    assert campaign.kind == "sweep" and campaign.model == "stid"
    assert [p.name for p in campaign.space] == ["num_layers", "embed_dim", "lr"]
    assert campaign.scheduler.type == "asha" and campaign.num_samples == 5


@pytest.mark.parametrize(
    ("edit", "field", "message"),
    [
        (lambda s: s.replace("name: test-sweep", "name: ../escape"), "name", "plain folder name"),
        (lambda s: s.replace("model: stid", "model: gpt"), "model", "unknown model 'gpt'"),
        (lambda s: s.replace("[synthetic]", "[pems99]"), "datasets[0]", "pems99"),
        (lambda s: s + "colour: red\n", "colour", "unknown key"),
        (lambda s: s.replace("num_layers:", "wings:"), "space.wings", "not a setting of model stid"),
        (lambda s: s.replace("low: 1, high: 4", "low: 5, high: 4"), "space.num_layers", "low (5) exceeds high (4)"),
        (lambda s: s.replace("low: 1.0e-4", "low: 0.0"), "space.lr.low", "must be > 0 with log"),
        (lambda s: s.replace("choices: [16, 32]", "choices: []"), "space.embed_dim.choices", "non-empty list"),
        (lambda s: s.replace("type: int", "type: integer"), "space.num_layers.type", "must be one of"),
        (lambda s: s.replace("high: 4}", "high: depth}"), "space.num_layers.high", "not an earlier parameter"),
        (lambda s: s.replace("sampler: tpe", "sampler: annealing"), "search.sampler", "unknown sampler"),
        (lambda s: s.replace("type: asha", "type: hyperband"), "search.scheduler.type", "unknown scheduler"),
        (lambda s: s.replace("metric: val_mae", "metric: accuracy"), "objective.metric", "unknown metric"),
        (lambda s: s.replace("mode: min", "mode: lowest"), "objective.mode", "must be min or max"),
        (lambda s: s.replace("num_samples: 5", "num_samples: 0"), "search.num_samples", "must be >= 1"),
        (lambda s: s.replace("gpu: 0", "gpu: -1"), "resources.gpu", "must be >= 0"),
        (lambda s: s.replace("{max_epochs: 3}", "{max_epochs: many}"), "fixed.max_epochs", "expected int"),
        (lambda s: s.replace("{max_epochs: 3}", "{max_epochs: 3, lr: 0.1}"), "space.lr", "also in `fixed`"),
        (lambda s: s.replace("low: 1, high: 4", "low: 0, high: 4"), "space.num_layers", "must be >= 1"),
    ],
)
def test_malformed_sweep_is_rejected_naming_file_and_field(tmp_path, edit, field, message):
    path = write(tmp_path, edit(SWEEP))
    with pytest.raises(SpecError) as info:
        parse_sweep(path)
    text = str(info.value)
    assert text.startswith(f"{path}: {field}"), text
    assert message in text and "\n" not in text


@pytest.mark.parametrize(
    ("content", "message"),
    [("", "the file is empty"), ("- a\n- b\n", "must be a mapping"), ("name: [unclosed\n", "invalid YAML"), ("a: b: c\n", "invalid YAML")],
)
def test_unreadable_files_are_rejected(tmp_path, content, message):
    path = write(tmp_path, content)
    with pytest.raises(SpecError, match=message):
        parse_sweep(path)


def test_missing_file_is_rejected(tmp_path):
    with pytest.raises(SpecError, match="no such file"):
        parse_sweep(tmp_path / "nope.yaml")


def test_ablation_file_given_to_the_sweep_says_which_command_to_use(tmp_path):
    with pytest.raises(SpecError, match="harness.ablate"):
        parse_sweep(write(tmp_path, ABLATION))


@pytest.mark.parametrize(
    ("edit", "field", "message"),
    [
        (lambda s: s.replace("use_node: false", "wings: 3"), "variants.No node embedding.wings", "not a setting"),
        (lambda s: s.replace("reference: Full", "reference: Best"), "reference", "not among the variants"),
        (lambda s: s.split("variants:")[0] + "variants: {}\n", "variants", "missing or empty"),
        (lambda s: s.replace("seeds: [0, 1]", "seeds: [0, one]"), "seeds[1]", "must be an integer"),
        (lambda s: s.replace("seeds: [0, 1]", "seeds: [0, 0]"), "seeds", "twice"),
        (lambda s: s + "base_from: nowhere/best.yaml\n", "base_from", "no such file"),
        (lambda s: s.replace("Full: {}", "Full: {variant: wo_pta}"), "variants.Full.variant", "unknown variant"),
    ],
)
def test_malformed_ablation_is_rejected_naming_file_and_field(tmp_path, edit, field, message):
    path = write(tmp_path, edit(ABLATION))
    with pytest.raises(SpecError) as info:
        parse_ablation(path)
    assert str(info.value).startswith(f"{path}: {field}"), str(info.value)
    assert message in str(info.value)


def test_ablation_base_from_reads_a_sweeps_best_yaml(tmp_path):
    (tmp_path / "best.yaml").write_text("model: stid\nconfig: {num_layers: 2, lr: 0.004}\n")
    campaign = parse_ablation(write(tmp_path, ABLATION + "base_from: best.yaml\n"))
    assert campaign.settings_for("synthetic", "Full", 0) == {"num_layers": 2, "lr": 0.004, "max_epochs": 2, "seed": 0}


def test_smoke_shrinks_the_campaign(tmp_path):
    campaign = parse_sweep(write(tmp_path, SWEEP.replace("[synthetic]", "[pems04]").replace("num_samples: 5", "num_samples: 50")), Overrides(smoke=True))
    assert campaign.datasets == ("synthetic",) and campaign.num_samples == 4
    assert campaign.fixed["max_epochs"] == 2 and campaign.name == "test-sweep-smoke"


def test_every_sampled_configuration_of_a_conditional_space_is_valid():
    from harness.spec import ParamSpec

    space = (
        ParamSpec("num_experts", "categorical", choices=(2, 3, 4, 5)),
        ParamSpec("top_k", "int", low=1, high="num_experts"),
        ParamSpec("rank", "categorical", choices=(4, 8, 16, 32)),
    )
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    space_fn = DefineByRun(space)
    meta = DatasetMeta("tiny", 5)
    for _ in range(30):
        trial = study.ask()
        config = space_fn(trial)
        assert 1 <= config["top_k"] <= config["num_experts"]
        build_model("hephaestus", meta, config)  # raises if the combination is invalid
        study.tell(trial, 0.0)


def test_conditional_bound_is_checked_against_the_referenced_range(tmp_path):
    space = "space:\n  embed_dim: {type: categorical, choices: [2, 32]}\n  num_layers: {type: int, low: 3, high: embed_dim}\n"
    text = SWEEP[: SWEEP.index("space:")] + space + SWEEP[SWEEP.index("objective:") :]
    with pytest.raises(SpecError, match="low \\(3\\) can exceed high \\(embed_dim\\)"):
        parse_sweep(write(tmp_path, text))


def test_a_grid_runs_each_point_once_unless_told_fewer(tmp_path):
    grid = SWEEP.replace("lr: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}", "lr: {type: float, low: 0.001, high: 0.003, step: 0.001}")
    assert parse_sweep(write(tmp_path, grid.replace("sampler: tpe, num_samples: 5", "sampler: grid"))).num_samples == 4 * 2 * 3
    assert parse_sweep(write(tmp_path, grid.replace("sampler: tpe", "sampler: grid"))).num_samples == 5  # a part of the grid
    with pytest.raises(SpecError, match="search.num_samples: 25 is more than the grid's 24 points"):
        parse_sweep(write(tmp_path, grid.replace("sampler: tpe, num_samples: 5", "sampler: grid, num_samples: 25")))
    with pytest.raises(UsageError, match="--num-samples: 30 is more than the grid's 24 points"):
        parse_sweep(write(tmp_path, grid.replace("sampler: tpe", "sampler: grid")), Overrides(num_samples=30))


def test_grid_sampler_counts_every_point(tmp_path):
    from harness.spec import ParamSpec, grid_size

    space = (ParamSpec("a", "int", low=1, high=3), ParamSpec("b", "categorical", choices=("x", "y")))
    assert grid_size(space) == 6
    trial = optuna.create_study().ask()
    assert set(suggest(trial, space)) == {"a", "b"}


SENSITIVITY = """\
name: fig3
model: hephaestus
datasets: [synthetic]
seeds: [0, 1]
base: {num_experts: 2, max_epochs: 3}
vary:
  num_experts: [2, 3, 4]
  top_k: [1, 2, 3, 4]
"""


def test_one_at_a_time_study_shares_its_base_point_and_skips_values_invalid_at_the_base(tmp_path):
    from harness.ledger import grid_cells
    from harness.spec import parse_search_file

    spec = parse_search_file(write(tmp_path, SENSITIVITY))
    assert spec.kind == "sensitivity"
    # num_experts=2 and top_k=2 are the base itself; top_k 3 and 4 exceed M = 2 at the base
    assert spec.points["synthetic"] == (("num_experts", 3), ("num_experts", 4), ("top_k", 1))
    assert [(s["parameter"], s["value"]) for s in spec.skipped] == [("top_k", 3), ("top_k", 4)]
    assert "top_k" in spec.skipped[0]["reason"]
    cells = grid_cells(spec)
    assert spec.total_trials == len(cells) == 2 * (1 + 3)
    assert [c.key for c in cells[:4]] == ["base | synthetic | seed 0", "num_experts=3 | synthetic | seed 0",
                                          "num_experts=4 | synthetic | seed 0", "top_k=1 | synthetic | seed 0"]
    assert cells[3].settings == {"num_experts": 2, "max_epochs": 3, "seed": 0, "top_k": 1} and cells[3].varied == {"top_k": 1}
    assert cells[0].varied == {}


@pytest.mark.parametrize(
    ("edit", "field", "message"),
    [
        (lambda s: s.replace("top_k:", "wings:"), "vary.wings", "not a setting of model hephaestus"),
        (lambda s: s.replace("[1, 2, 3, 4]", "[]"), "vary.top_k", "non-empty list"),
        (lambda s: s.replace("[1, 2, 3, 4]", "[1, 1]"), "vary.top_k", "distinct"),
        (lambda s: s.split("vary:")[0], "vary", "missing or empty"),
    ],
)
def test_malformed_sensitivity_study_is_rejected_naming_file_and_field(tmp_path, edit, field, message):
    from harness.spec import parse_search_file

    path = write(tmp_path, edit(SENSITIVITY))
    with pytest.raises(SpecError) as info:
        parse_search_file(path)
    assert str(info.value).startswith(f"{path}: {field}"), str(info.value)
    assert message in str(info.value)
