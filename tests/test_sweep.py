"""`python -m harness.sweep`: end to end on local Ray, resume after SIGKILL, retries from
checkpoints, diverging trials, bad input, and a two-node cluster."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid

import optuna
import pandas as pd
import pytest
import torch
import yaml

from campaign_helpers import ROOT, PrivateRayCluster, command_env, run_command
from harness.cli import run_command as run_in_process
from harness.sweep import main as sweep_main

pytestmark = pytest.mark.slow

REQUIRED_COLUMNS = [
    "trial_id", "model", "dataset", "variant", "seed", "status", "error", "epochs", "best_epoch",
    "val_mae", "test_mae", "test_rmse", "test_mape", "test_mae_h3", "test_mae_h6", "test_mae_h12",
    "parameters", "train_s_per_iter", "infer_ms", "peak_mem_mb", "wall_s",
]


@pytest.fixture(scope="module")
def smoke_sweep(tmp_path_factory):
    """The real HEPHAESTUS sweep file, shrunk by --smoke, run once for several tests."""
    storage = tmp_path_factory.mktemp("storage")
    done = run_command("harness.sweep", str(ROOT / "search_spaces" / "hephaestus.yaml"), "--smoke", "--storage", str(storage), "--no-report", cwd=storage)
    assert done.returncode == 0, done.stderr[-3000:] + done.stdout[-3000:]
    return storage / "hephaestus-sensitivity-smoke", done


def test_smoke_sweep_leaves_one_complete_record_per_trial(smoke_sweep):
    folder, _ = smoke_sweep
    trials = pd.read_csv(folder / "trials.csv")
    assert len(trials) == 4 and trials["trial_id"].is_unique
    assert set(REQUIRED_COLUMNS) <= set(trials.columns)
    assert {"config.num_experts", "config.top_k", "config.rank", "config.aux_weight"} <= set(trials.columns)
    assert (trials["config.top_k"] <= trials["config.num_experts"]).all()
    assert set(trials["status"]) <= {"ok", "pruned"}
    finished = trials[trials["status"] == "ok"]
    assert len(finished) >= 1
    assert finished[["test_mae", "test_rmse", "test_mape", "test_mae_h12", "parameters", "infer_ms"]].notna().all().all()
    assert {d.split(" ")[0] for d in trials["device"]} == {"cuda:0" if torch.cuda.is_available() else "cpu"}  # where each trial trained
    curves = pd.read_csv(folder / "curves.csv")
    assert set(curves["trial_id"]) == set(trials["trial_id"])
    for trial_id, epochs in curves.groupby("trial_id")["epoch"]:
        assert list(epochs) == list(range(1, len(epochs) + 1)), trial_id


def test_smoke_sweep_writes_manifest_best_config_and_optuna_journal(smoke_sweep):
    folder, done = smoke_sweep
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["kind"] == "sweep" and manifest["spec"]["model"] == "hephaestus"
    assert {"torch", "ray", "optuna"} <= set(manifest["versions"])
    assert manifest["datasets"]["synthetic"]["fingerprint"] and manifest["finished"]
    best = yaml.safe_load((folder / "best.yaml").read_text())
    trials = pd.read_csv(folder / "trials.csv")
    assert best["per_dataset"]["synthetic"]["value"] == pytest.approx(trials.loc[trials["status"] == "ok", "val_mae"].min())
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(folder / "optuna_journal.log")))
    study = optuna.load_study(study_name="hephaestus-sensitivity-smoke/synthetic", storage=storage)
    assert len(study.trials) == 4
    states = {t.user_attrs["tune_trial_id"]: t.state.name for t in study.trials}
    expected = {"ok": "COMPLETE", "pruned": "PRUNED"}
    assert states == {row.trial_id: expected[row.status] for row in trials.itertuples()}
    assert "finished: 4 trial record(s)" in done.stdout and "best val_mae" in done.stdout


def test_best_yaml_is_a_valid_base_of_an_ablation_campaign_but_a_smoke_one_only_of_a_smoke_campaign(smoke_sweep, tmp_path):
    from harness.spec import Overrides, SpecError, parse_ablation

    folder, _ = smoke_sweep
    best = yaml.safe_load((folder / "best.yaml").read_text())
    assert best["smoke"] is True and "max_batches_per_epoch" not in best["config"]  # no smoke training settings
    ablation = (ROOT / "ablations" / "hephaestus.yaml").read_text().replace("base_from: null", f"base_from: {folder / 'best.yaml'}")
    path = tmp_path / "ablation.yaml"
    path.write_text(ablation)
    campaign = parse_ablation(path, Overrides(smoke=True))
    assert campaign.settings_for("synthetic", "Full", 0)["num_experts"] == best["per_dataset"]["synthetic"]["config"]["num_experts"]
    with pytest.raises(SpecError, match="comes from a --smoke sweep"):
        parse_ablation(path)


FAULTY_ABLATION = """\
name: faults
model: faulty
datasets: [synthetic]
data_options: {{nodes: 6, days: 4}}
seeds: [0]
base: {{max_epochs: 3, max_batches_per_epoch: 4, batch_size: 16, marker: "{marker}"}}
reference: healthy
variants:
  healthy: {{fault: none}}
  crashes once: {{fault: crash_once}}
  diverges: {{fault: explode}}
max_concurrent: 2
max_failures: 2
"""


def test_crashed_trial_resumes_from_its_checkpoint_and_diverged_trial_is_recorded(tmp_path):
    spec = tmp_path / "faults.yaml"
    spec.write_text(FAULTY_ABLATION.format(marker=tmp_path / "crashed.marker"))
    done = run_command("harness.ablate", str(spec), "--storage", str(tmp_path), "--no-report", "--checkpoint-every", "1",
                       cwd=tmp_path, HARNESS_PLUGINS="faulty_models")
    assert done.returncode == 0, done.stderr[-3000:] + done.stdout[-3000:]
    assert (tmp_path / "crashed.marker").exists()  # the crash really happened
    trials = pd.read_csv(tmp_path / "faults" / "trials.csv").set_index("variant_display")
    assert len(trials) == 3
    assert trials.loc["healthy", "status"] == "ok" and trials.loc["healthy", "retries"] == 0
    assert trials.loc["crashes once", "status"] == "ok" and trials.loc["crashes once", "epochs"] == 3
    assert trials.loc["crashes once", "retries"] == 1  # the record keeps the retry and its error
    crashed = json.loads((tmp_path / "faults" / "records" / f"{trials.loc['crashes once', 'trial_id']}.json").read_text())
    assert "injected crash in epoch 2" in crashed["last_error"] and "resumed from its checkpoint after epoch 1" in crashed["notes"]
    assert trials.loc["diverges", "status"] == "diverged" and "nan" in trials.loc["diverges", "error"]
    curves = pd.read_csv(tmp_path / "faults" / "curves.csv")
    crashed_id = trials.loc["crashes once", "trial_id"]
    # resumed from the epoch-1 checkpoint: epoch 1 was trained (and reported) once only
    assert list(curves.loc[curves["trial_id"] == crashed_id, "epoch"]) == [1, 2, 3]
    assert "diverged" in done.stdout and "retrying (1/2)" in done.stdout


RESUMABLE_SWEEP = """\
name: resumable
model: stid
datasets: [synthetic]
data_options: {nodes: 8, days: 5}
fixed: {max_epochs: 4, max_batches_per_epoch: 30, batch_size: 16}
space:
  num_layers: {type: int, low: 1, high: 3}
  lr: {type: float, low: 1.0e-3, high: 1.0e-2, log: true}
search: {sampler: random, num_samples: 4, seed: 1}
max_concurrent: 1
"""


def final_records(folder) -> dict[str, dict]:
    """The records on disk that are final (ok, failed, diverged, pruned), by trial id."""
    records = {}
    for path in (folder / "records").glob("*.json"):
        try:
            record = json.loads(path.read_text())
        except ValueError:
            continue
        if record["status"] in ("ok", "failed", "diverged", "pruned"):
            records[record["trial_id"]] = record
    return records


def start_driver(spec, storage, *extra):
    return subprocess.Popen(
        [sys.executable, "-m", "harness.sweep", str(spec), "--storage", str(storage), "--no-report", *extra],
        cwd=storage, env=command_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )


def wait_for_final_records(folder, count: int, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and len(final_records(folder)) < count:
        time.sleep(0.3)
    assert len(final_records(folder)) >= count, "no trial finished before the deadline"


def test_ctrl_c_records_every_trial_says_how_to_resume_and_resume_finishes_exactly(tmp_path):
    spec = tmp_path / "resumable.yaml"
    spec.write_text(RESUMABLE_SWEEP.replace("max_concurrent: 1", "max_concurrent: 2"))
    folder = tmp_path / "resumable"
    driver = start_driver(spec, tmp_path)
    wait_for_final_records(folder, 1)
    driver.send_signal(signal.SIGINT)
    out, _ = driver.communicate(timeout=120)
    assert driver.returncode == 130, out[-3000:]
    assert "Traceback" not in out
    last = out.strip().splitlines()[-1]
    assert last.startswith("interrupted: ") and last.endswith("--resume"), last
    records = {p.stem: json.loads(p.read_text()) for p in (folder / "records").glob("*.json")}
    assert {r["status"] for r in records.values()} <= {"ok", "interrupted"} and any(r["status"] == "interrupted" for r in records.values())
    assert len(pd.read_csv(folder / "trials.csv")) == len(records)  # the derived table is current

    resume = last.removeprefix("interrupted: ").split("resume with: ")[1]
    done = subprocess.run(resume, shell=True, cwd=tmp_path, env=command_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    trials = pd.read_csv(folder / "trials.csv")
    assert len(trials) == 4 and trials["trial_id"].is_unique and (trials["status"] == "ok").all()


def test_the_optuna_journal_is_live_while_the_sweep_runs(tmp_path):
    spec = tmp_path / "resumable.yaml"
    spec.write_text(RESUMABLE_SWEEP.replace("max_epochs: 4", "max_epochs: 8"))
    folder = tmp_path / "resumable"
    driver = start_driver(spec, tmp_path)
    try:
        wait_for_final_records(folder, 1)
        # The trial writes its record before the driver tells Optuna, so the journal may lag by a moment.
        deadline = time.monotonic() + 60
        complete = []
        while not complete and time.monotonic() < deadline:
            storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(folder / "optuna_journal.log")))
            study = optuna.load_study(study_name="resumable/synthetic", storage=storage)
            complete = [t for t in study.trials if t.state.name == "COMPLETE"]
            time.sleep(0.3)
        assert complete and all(len(t.intermediate_values) == 8 for t in complete)
        assert complete[0].datetime_start < complete[0].datetime_complete
        assert driver.poll() is None, "the sweep ended before the journal was read"
    finally:
        os.killpg(driver.pid, signal.SIGKILL)
        driver.wait()


def test_second_run_of_a_finished_sweep_name_is_refused(tmp_path, capsys):
    spec = tmp_path / "s.yaml"
    spec.write_text(RESUMABLE_SWEEP)
    (tmp_path / "resumable").mkdir()
    (tmp_path / "resumable" / "manifest.json").write_text("{}")
    assert run_in_process(sweep_main, [str(spec), "--storage", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "--resume" in err and "--fresh" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("name: x\nmodel: stid\ndatasets: [synthetic]\nspace: {lr: {type: float, low: 1, high: 0.1}}\n", "space.lr: low (1) exceeds high (0.1)"),
        ("name: x\nmodel: stid\ndatasets: [pems04]\nspace: {lr: {type: float, low: 0.001, high: 0.1}}\n", "PEMS04"),
        ("name: [unclosed\n", "invalid YAML"),
    ],
)
def test_bad_sweep_file_exits_2_with_one_line_and_leaves_no_results(tmp_path, capsys, monkeypatch, content, message):
    monkeypatch.delenv("HARNESS_DATA_DIR", raising=False)
    spec = tmp_path / "bad.yaml"
    spec.write_text(content)
    assert run_in_process(sweep_main, [str(spec), "--storage", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_uri_storage_is_refused_in_one_line(tmp_path, capsys):
    assert run_in_process(sweep_main, [str(ROOT / "search_spaces" / "quickstart.yaml"), "--storage", "s3://bucket/results"]) == 2
    assert "URI storage is not supported" in capsys.readouterr().err


def test_unreachable_cluster_address_is_one_line_and_exit_2(tmp_path):
    done = run_command("harness.sweep", str(ROOT / "search_spaces" / "quickstart.yaml"), "--smoke", "--address", "127.0.0.1:1", "--storage", str(tmp_path), cwd=tmp_path, timeout=180)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "--address 127.0.0.1:1: cannot join the Ray cluster" in done.stderr
    assert "Traceback" not in done.stderr


def test_dry_run_prints_the_plan_and_starts_nothing(tmp_path, capsys):
    assert run_in_process(sweep_main, [str(ROOT / "search_spaces" / "hephaestus.yaml"), "--dry-run", "--storage", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "search top_k" in out and "dry run" in out
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(shutil.which("ray") is None, reason="the `ray` command is not on PATH")
def test_two_node_cluster_runs_trials_on_both_nodes(tmp_path):
    port = str(6400 + uuid.uuid4().int % 500)
    cluster = PrivateRayCluster()
    head = cluster.start("--head", f"--port={port}", "--num-cpus=1", "--include-dashboard=false")
    try:
        assert head.returncode == 0, head.stderr[-2000:]
        worker = cluster.start(f"--address=127.0.0.1:{port}", "--num-cpus=1")
        assert worker.returncode == 0, worker.stderr[-2000:]
        spec = tmp_path / "cluster.yaml"
        spec.write_text(RESUMABLE_SWEEP.replace("max_concurrent: 1", "max_concurrent: 2").replace("max_epochs: 4", "max_epochs: 2"))
        done = run_command("harness.sweep", str(spec), "--storage", str(tmp_path), "--address", f"127.0.0.1:{port}", "--no-report", cwd=tmp_path, RAY_AUTH_MODE="disabled")
        assert done.returncode == 0, done.stderr[-3000:] + done.stdout[-2000:]
        assert "2 node(s)" in done.stdout
        trials = pd.read_csv(tmp_path / "resumable" / "trials.csv")
        assert trials["node"].nunique() == 2, trials["node"].tolist()
    finally:
        cluster.stop()


COMBINATION_SWEEP = """\
name: combination
model: hephaestus
datasets: [synthetic]
data_options: {nodes: 6, days: 4}
fixed: {max_epochs: 1, max_batches_per_epoch: 2, batch_size: 8, layers: 1, num_experts: 2, top_k: 1}
space:
  hidden: {type: categorical, choices: [32, 36]}
  heads: {type: categorical, choices: [4, 8]}
search: {sampler: grid, num_samples: 4, seed: 0}
max_concurrent: 2
"""


def test_a_setting_combination_the_model_refuses_fails_one_trial_and_the_campaign_finishes(tmp_path):
    spec = tmp_path / "combination.yaml"
    spec.write_text(COMBINATION_SWEEP)
    done = run_command("harness.sweep", str(spec), "--storage", str(tmp_path), "--no-report", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:] + done.stdout[-3000:]
    trials = pd.read_csv(tmp_path / "combination" / "trials.csv")
    assert len(trials) == 4
    failed = trials[trials["status"] == "failed"]
    assert list(zip(failed["config.hidden"], failed["config.heads"])) == [(36, 8)]
    assert failed["error"].iloc[0] == "invalid settings: hidden: 36 is not divisible by heads=8"
    assert failed["retries"].iloc[0] == 0  # a deterministic settings error is not retried
    assert (trials.loc[trials["status"] != "failed", "status"] == "ok").all()
    assert (tmp_path / "combination" / "best.yaml").is_file() and (tmp_path / "combination" / "curves.csv").is_file()
    assert "invalid settings: hidden: 36 is not divisible by heads=8" in done.stdout


ONE_AT_A_TIME = """\
name: oat
model: stid
datasets: [synthetic]
data_options: {nodes: 6, days: 4}
seeds: [0, 1]
base: {max_epochs: 2, max_batches_per_epoch: 5, batch_size: 16, num_layers: 2}
vary:
  num_layers: [1, 2, 3]
  embed_dim: [16, 64]
  dropout: [0.0, 1.5]
max_concurrent: 2
"""


def test_a_one_at_a_time_study_trains_its_base_once_per_seed_and_lists_what_it_skipped(tmp_path):
    spec = tmp_path / "oat.yaml"
    spec.write_text(ONE_AT_A_TIME)
    done = run_command("harness.sweep", str(spec), "--storage", str(tmp_path), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:] + done.stdout[-3000:]
    assert "skipped dropout=1.5 on synthetic: dropout: must be in [0, 1)" in done.stdout
    trials = pd.read_csv(tmp_path / "oat" / "trials.csv")
    # per seed: the base, num_layers 1 and 3, embed_dim 16 and 64 (the base's 32 is neither), dropout 0.0
    assert len(trials) == 2 * 6 and (trials["status"] == "ok").all()
    assert sorted(trials.loc[trials["seed"] == 0, "cell"]) == sorted(
        f"{label} | synthetic | seed 0" for label in ("base", "num_layers=1", "num_layers=3", "embed_dim=16", "embed_dim=64", "dropout=0.0"))
    manifest = json.loads((tmp_path / "oat" / "manifest.json").read_text())
    assert manifest["kind"] == "sensitivity" and [s["value"] for s in manifest["skipped"]] == [1.5]
    figure = (tmp_path / "oat" / "report" / "sensitivity_mae.png")
    assert figure.is_file() and "dropout" in (tmp_path / "oat" / "report" / "index.md").read_text()
