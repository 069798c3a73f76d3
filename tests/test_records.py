"""The trial record contract and the bookkeeping built on it, without Ray: records round-trip,
derived tables, what a campaign still owes, the records the driver writes for pruned, crashed
and interrupted trials, resume checks, best.yaml, and errors that cross a process boundary."""

from __future__ import annotations

import dataclasses
import json
import math
import pickle
from pathlib import Path
from types import SimpleNamespace

import optuna
import pytest

from harness.campaign import RunOptions, check_start, resume_command
from harness.errors import SpecError, UsageError
from harness.ledger import grid_cells, owed
from harness.outputs import best_config
from harness.records import (
    TRIAL_COLUMNS,
    TrialRecord,
    curves_frame,
    load_record,
    read_records,
    record_path,
    trials_frame,
    write_record,
)
from harness.search import TUNE_ID_ATTR, journal_storage, reconcile_studies, study_name
from harness.spec import Overrides, parse_ablation, parse_sweep
from harness.trial import TrialContext, progress_path, start_record, trial_request
from harness.keeper import LOST_CHECKPOINT, RecordKeeper
from harness.tuner import Interrupts
from harness.data import DataError
from models.base import ConfigError

ABLATION = """\
name: tiny-ablation
model: stid
datasets: [synthetic]
seeds: [0, 1]
base: {max_epochs: 3}
variants:
  Full: {}
  No node embedding: {use_node: false}
"""

SWEEP = """\
name: tiny-sweep
model: stid
datasets: [synthetic, pems08]
fixed: {max_epochs: 3}
space:
  num_layers: {type: int, low: 1, high: 4}
search: {sampler: random, num_samples: 3}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    return path


def record(trial_id: str, status: str = "ok", **fields) -> TrialRecord:
    base = dict(campaign="c", trial_id=trial_id, model="stid", dataset="synthetic", status=status)
    return TrialRecord(**{**base, **fields})


def curve(*maes: float) -> list[dict]:
    return [{"epoch": i + 1, "train_loss": m * 1.1, "val_mae": m, "val_rmse": 1.5 * m, "val_mape": 3 * m, "lr": 1e-3, "epoch_s": 0.5}
            for i, m in enumerate(maes)]


# --------------------------------------------------------------------------------------------
# The record and its tables.


def test_a_record_round_trips_through_json_with_nan_as_null_and_unknown_keys_ignored(tmp_path):
    original = record("t1", val={"mae": 1.5, "rmse": math.nan, "mape": 3.0}, test={"overall": {"mae": 2.0}}, curve=curve(3.0, 2.0))
    path = write_record(tmp_path, original)
    data = json.loads(path.read_text())
    assert data["val"]["rmse"] is None
    data["a_field_of_a_newer_version"] = 1
    path.write_text(json.dumps(data))
    loaded = load_record(path)
    assert loaded == dataclasses.replace(original, val={"mae": 1.5, "rmse": None, "mape": 3.0})
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]  # no temporary left behind


def test_unreadable_records_are_reported_not_fatal_and_records_come_in_start_order(tmp_path):
    write_record(tmp_path, record("late", started="2026-01-01T00:02:00+00:00"))
    write_record(tmp_path, record("early", started="2026-01-01T00:01:00+00:00"))
    record_path(tmp_path, "broken").write_text("{not json")
    records, problems = read_records(tmp_path)
    assert [r.trial_id for r in records] == ["early", "late"]
    assert problems == ["records/broken.json is not a readable trial record"]


def test_trials_table_has_every_column_integers_as_integers_and_settings_as_config_columns():
    records = [
        record("a", epochs=3, best_epoch=2, seed=1, settings={"lr": 0.01, "lr_milestones": [1, 2]},
               test={"overall": {"mae": 1.0, "rmse": 2.0, "mape": 3.0}, "h12": {"mae": 4.0}}),
        record("b", status="failed", reason="boom", settings={"lr": 0.02}),
    ]
    frame = trials_frame(records)
    assert list(frame.columns[: len(TRIAL_COLUMNS)]) == list(TRIAL_COLUMNS)
    assert str(frame["epochs"].dtype) == "Int64" and frame.loc[0, "best_epoch"] == 2 and frame["best_epoch"].isna()[1]
    assert frame.loc[0, "test_mae"] == 1.0 and frame.loc[0, "test_mae_h12"] == 4.0 and math.isnan(frame.loc[0, "test_mae_h3"])
    assert frame.loc[0, "config.lr_milestones"] == "[1, 2]" and frame.loc[1, "error"] == "boom"


def test_curves_table_has_one_row_per_recorded_epoch_of_every_trial():
    frame = curves_frame([record("a", curve=curve(3.0, 2.0)), record("b", status="pruned", curve=curve(5.0))])
    assert list(zip(frame["trial_id"], frame["epoch"])) == [("a", 1), ("a", 2), ("b", 1)]


# --------------------------------------------------------------------------------------------
# What a campaign owes.


def test_a_grid_owes_every_cell_without_a_final_record(tmp_path):
    spec = parse_ablation(write(tmp_path, ABLATION))
    cells = grid_cells(spec)
    assert len(cells) == 4 and cells[0].settings == {"max_epochs": 3, "seed": 0}
    records = [record("a", cell=cells[0].key), record("b", status="interrupted", cell=cells[1].key),
               record("c", status="running", cell=cells[2].key), record("d", status="failed", cell=cells[3].key)]
    todo = owed(spec, records)
    assert [c.key for c in todo.cells] == [cells[1].key, cells[2].key] and todo.count == 2
    assert "2 planned trial(s) have no final record" in todo.describe()
    assert owed(spec, records + [record("e", cell=cells[0].key)]).surplus == [f"{cells[0].key}: 1 extra"]


def test_a_sweep_owes_its_missing_samples_per_dataset_and_reruns_unfinished_values_first(tmp_path):
    spec = parse_sweep(write(tmp_path, SWEEP))
    records = [record("a"), record("b", status="pruned"), record("c", status="interrupted", varied={"num_layers": 3}),
               record("d", dataset="PEMS08"), record("e", dataset="PEMS08"), record("f", dataset="PEMS08", status="diverged")]
    todo = owed(spec, records)
    assert todo.samples == {"synthetic": 1} and todo.retry == {"synthetic": [{"num_layers": 3}]}
    assert owed(spec, records + [record("g"), record("h")]).surplus == ["synthetic: 1 extra"]


def test_the_journal_is_told_what_the_records_say_of_trials_a_dead_driver_never_told_it(tmp_path):
    spec = parse_sweep(write(tmp_path, SWEEP.replace("[synthetic, pems08]", "[synthetic]")))
    study = optuna.create_study(study_name=study_name(spec, "synthetic"), storage=journal_storage(tmp_path))
    asked = {tid: study.ask() for tid in ("done", "stopped", "unrecorded", "running")}
    for tid, trial in asked.items():
        trial.set_user_attr(TUNE_ID_ATTR, tid)  # as the searcher does when it suggests a trial
    records = [record("done", val={"mae": 12.5, "rmse": 20.0, "mape": 9.0}), record("stopped", status="pruned"),
               record("running", status="interrupted")]

    reconcile_studies(spec, tmp_path, records, finished=False)
    states = {t.user_attrs[TUNE_ID_ATTR]: t for t in optuna.load_study(study_name=study.study_name, storage=journal_storage(tmp_path)).trials}
    assert states["done"].state.name == "COMPLETE" and states["done"].value == 12.5
    assert states["stopped"].state.name == "PRUNED"
    assert states["unrecorded"].state.name == "RUNNING" and states["running"].state.name == "RUNNING"  # may still finish

    reconcile_studies(spec, tmp_path, records, finished=True)  # the campaign ended: what is left never will
    states = {t.user_attrs[TUNE_ID_ATTR]: t.state.name for t in optuna.load_study(study_name=study.study_name, storage=journal_storage(tmp_path)).trials}
    assert states == {"done": "COMPLETE", "stopped": "PRUNED", "unrecorded": "FAIL", "running": "FAIL"}


# --------------------------------------------------------------------------------------------
# Records the driver writes.


def fake_trial(trial_id: str, config: dict, last_result: dict | None = None, error: Exception | None = None):
    return SimpleNamespace(trial_id=trial_id, config=config, last_result=last_result or {},
                           get_pickled_error=lambda: error, get_error=lambda: None)


@pytest.fixture
def keeper(tmp_path):
    spec = parse_ablation(write(tmp_path, ABLATION))
    lines: list[str] = []
    return RecordKeeper(spec, tmp_path / "campaign", lines.append, Interrupts()), grid_cells(spec), lines


def test_a_pruned_trial_is_recorded_with_its_curve_and_best_validation_figures(keeper):
    keeper, cells, _ = keeper
    trial = fake_trial("p1", cells[0].as_config(), last_result={"epoch": 3, "val_mae": 2.5, "final": False})
    snapshot = record("p1", status="running", cell=cells[0].key, epochs=3, curve=curve(4.0, 2.0, 2.5))
    write_record(keeper.campaign_dir, snapshot)
    keeper.on_trial_start(0, [], trial)
    keeper.on_trial_complete(0, [], trial)
    written = load_record(record_path(keeper.campaign_dir, "p1"))
    assert written.status == "pruned" and "after epoch 3" in written.reason
    assert written.val == {"mae": 2.0, "rmse": 3.0, "mape": 6.0} and len(written.curve) == 3 and written.ended
    assert (keeper.campaign_dir / "trials.csv").is_file()  # the derived files follow the records


def test_a_crashed_trial_that_never_wrote_a_record_is_recorded_from_its_config(keeper):
    keeper, cells, _ = keeper
    trial = fake_trial("f1", cells[3].as_config(), error=ConfigError("hidden", "36 is not divisible by heads=8"))
    keeper.on_trial_error(0, [], trial)
    written = load_record(record_path(keeper.campaign_dir, "f1"))
    assert written.status == "failed" and written.reason == "ConfigError: hidden: 36 is not divisible by heads=8"
    assert (written.cell, written.seed, written.variant_display) == (cells[3].key, 1, "No node embedding")
    assert written.settings == {"max_epochs": 3, "use_node": False, "seed": 1}


def test_a_trial_whose_checkpoint_a_crash_lost_is_interrupted_not_failed(keeper):
    keeper, cells, _ = keeper
    keeper.on_trial_error(0, [], fake_trial("l1", cells[0].as_config(), error=RuntimeError(f"checkpoint x {LOST_CHECKPOINT}")))
    assert load_record(record_path(keeper.campaign_dir, "l1")).status == "interrupted"


def test_an_error_after_a_trial_finished_keeps_its_ok_record(keeper):
    keeper, cells, _ = keeper
    write_record(keeper.campaign_dir, record("k1", cell=cells[0].key, epochs=3))
    keeper.on_trial_error(0, [], fake_trial("k1", cells[0].as_config(), error=RuntimeError("actor died")))
    assert load_record(record_path(keeper.campaign_dir, "k1")).status == "ok"


def test_a_retry_is_counted_in_the_record_and_carried_into_the_retried_attempt(keeper, tmp_path):
    keeper, cells, lines = keeper
    trial = fake_trial("r1", cells[0].as_config(), error=RuntimeError("injected crash"))
    write_record(keeper.campaign_dir, record("r1", status="running", cell=cells[0].key, nodes=["host/aaaa"]))
    keeper.on_trial_recover(0, [], trial)
    assert lines == ["trial r1 failed (RuntimeError: injected crash); retrying (1/2)"]
    context = TrialContext("c", "stid", {}, str(keeper.campaign_dir), str(tmp_path), "code")
    again = start_record(trial_request(cells[0].as_config(), {}), context, "r1", "host/bbbb")
    assert again.retries == 1 and again.last_error == "RuntimeError: injected crash" and again.nodes == ["host/aaaa", "host/bbbb"]


def test_an_interrupt_records_every_running_trial_as_interrupted(keeper):
    keeper, cells, _ = keeper
    for i, cell in enumerate(cells[:2]):
        keeper.on_trial_start(0, [], fake_trial(f"i{i}", cell.as_config()))
    write_record(keeper.campaign_dir, record("i0", status="running", cell=cells[0].key, curve=curve(3.0)))
    progress_path(keeper.campaign_dir, "i1").parent.mkdir(parents=True, exist_ok=True)
    assert keeper.interrupted("stopped") == 2
    statuses = {r.trial_id: r.status for r in read_records(keeper.campaign_dir)[0]}
    assert statuses == {"i0": "interrupted", "i1": "interrupted"}


# --------------------------------------------------------------------------------------------
# Starting and resuming.


def test_resume_refuses_a_campaign_started_with_other_settings(tmp_path):
    spec = parse_sweep(write(tmp_path, SWEEP))
    manifest = {"identity": spec.identity(), "status": "interrupted"}
    check_start(spec, RunOptions(resume=True), tmp_path / "c", manifest)  # the same campaign: fine
    changed = parse_sweep(write(tmp_path, SWEEP), Overrides(settings={"lr": 1e-3}))
    with pytest.raises(UsageError, match=r"other settings \(fixed\.lr: null -> 0\.001\)"):
        check_start(changed, RunOptions(resume=True), tmp_path / "c", manifest)
    smoke = parse_sweep(write(tmp_path, SWEEP), Overrides(smoke=True))
    assert smoke.name == "tiny-sweep-smoke"  # never the real campaign's folder
    with pytest.raises(UsageError, match="nothing to resume"):
        check_start(spec, RunOptions(resume=True), tmp_path / "c", None)
    with pytest.raises(UsageError, match="add --resume to continue it, --fresh to start it again"):
        check_start(spec, RunOptions(), tmp_path / "c", manifest)


def test_the_resume_hint_is_the_command_as_typed_plus_resume():
    options = RunOptions(command="python -m harness.sweep 'my sweeps/a.yaml' --storage out --fresh")
    assert resume_command(options) == "python -m harness.sweep 'my sweeps/a.yaml' --storage out --resume"


def test_best_yaml_has_each_datasets_best_without_smoke_training_settings(tmp_path):
    spec = parse_sweep(write(tmp_path, SWEEP), Overrides(smoke=True))
    spec = dataclasses.replace(spec, datasets=("synthetic", "PEMS08"))
    records = [record("a", val={"mae": 3.0}, settings={"num_layers": 1}), record("b", val={"mae": 2.0}, settings={"num_layers": 2}),
               record("c", dataset="PEMS08", val={"mae": 9.0}, settings={"num_layers": 4}),
               record("d", status="failed", val={"mae": 1.0}, settings={"num_layers": 3})]
    best = best_config(spec, records)
    assert best["per_dataset"]["synthetic"] == {"trial_id": "b", "value": 2.0, "config": {"max_epochs": 3, "num_layers": 2}}
    assert best["per_dataset"]["PEMS08"]["config"]["num_layers"] == 4 and best["smoke"] is True


# --------------------------------------------------------------------------------------------
# Errors that cross a Ray boundary.


@pytest.mark.parametrize("error", [
    ConfigError("top_k", "must be between 1 and num_experts=2, got 3"),
    SpecError("a.yaml", "space.lr", "low (1) exceeds high (0.1)"),
    UsageError("--storage x: not writable"),
    DataError("/d/PEMS04/PEMS04.npz: key 'data' has rank 2"),
])
def test_bad_input_errors_pickle_and_unpickle_intact(error):
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error) and str(copy) == str(error) and vars(copy) == vars(error)
