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
import yaml

from campaign_helpers import ROOT, command_env, run_command
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
    return storage / "hephaestus-sensitivity", done


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
    study = optuna.load_study(study_name="hephaestus-sensitivity/synthetic", storage=storage)
    assert len(study.trials) == 4
    assert "finished: 4 trials" in done.stdout and "best val_mae" in done.stdout


def test_best_yaml_is_a_valid_base_of_an_ablation_campaign(smoke_sweep, tmp_path):
    from harness.spec import parse_ablation

    folder, _ = smoke_sweep
    ablation = (ROOT / "ablations" / "hephaestus.yaml").read_text().replace("base_from: null", f"base_from: {folder / 'best.yaml'}")
    path = tmp_path / "ablation.yaml"
    path.write_text(ablation)
    campaign = parse_ablation(path)
    assert campaign.base["num_experts"] in (2, 3, 4, 5)


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
    done = run_command("harness.ablate", str(spec), "--storage", str(tmp_path), "--no-report", cwd=tmp_path, HARNESS_PLUGINS="faulty_models")
    assert done.returncode == 0, done.stderr[-3000:] + done.stdout[-3000:]
    assert (tmp_path / "crashed.marker").exists()  # the crash really happened
    trials = pd.read_csv(tmp_path / "faults" / "trials.csv").set_index("variant_display")
    assert len(trials) == 3
    assert trials.loc["healthy", "status"] == "ok"
    assert trials.loc["crashes once", "status"] == "ok" and trials.loc["crashes once", "epochs"] == 3
    assert trials.loc["diverges", "status"] == "diverged" and "nan" in trials.loc["diverges", "error"]
    curves = pd.read_csv(tmp_path / "faults" / "curves.csv")
    crashed_id = trials.loc["crashes once", "trial_id"]
    # resumed from the epoch-1 checkpoint: epoch 1 was trained (and reported) once only
    assert list(curves.loc[curves["trial_id"] == crashed_id, "epoch"]) == [1, 2, 3]
    assert "diverged" in done.stdout


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


def test_resume_after_the_driver_is_killed_finishes_without_rerunning_finished_trials(tmp_path):
    spec = tmp_path / "resumable.yaml"
    spec.write_text(RESUMABLE_SWEEP)
    folder = tmp_path / "resumable"
    driver = subprocess.Popen(
        [sys.executable, "-m", "harness.sweep", str(spec), "--storage", str(tmp_path), "--no-report"],
        cwd=tmp_path, env=command_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    # A trial is finished once its cache record exists: the last thing it writes before its
    # final report (its weights are saved earlier, so they alone do not mark it finished).
    records = tmp_path / "cache"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and len(list(records.glob("*/record.json"))) < 1:
        time.sleep(0.5)
    os.killpg(driver.pid, signal.SIGKILL)  # the driver and the local Ray it started, at once
    driver.wait()
    finished_before = {p.parent.name: p.stat().st_mtime_ns for p in records.glob("*/record.json")}
    assert finished_before, "no trial finished before the deadline"
    assert not (folder / "trials.csv").exists()
    # The crash also lost every checkpoint (as when it lands while Tune rotates them): trials
    # whose snapshot names one are restarted from the start instead of failing.
    for checkpoint in (folder / "ray").glob("*/*/checkpoint_*"):
        shutil.rmtree(checkpoint)

    done = run_command("harness.sweep", str(spec), "--storage", str(tmp_path), "--resume", "--no-report", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    trials = pd.read_csv(folder / "trials.csv")
    assert len(trials) == 4 and trials["trial_id"].is_unique
    assert (trials["status"] == "ok").all(), trials[["trial_id", "status", "error"]].to_string()
    assert len(list(records.glob("*/record.json"))) == 4
    for key, mtime in finished_before.items():  # a retrained trial would have rewritten its record
        assert (records / key / "record.json").stat().st_mtime_ns == mtime, f"trial {key} was trained again"
    assert len(json.loads((folder / "manifest.json").read_text())["resumed"]) == 1


def test_second_run_of_a_finished_sweep_name_is_refused(tmp_path, capsys):
    spec = tmp_path / "s.yaml"
    spec.write_text(RESUMABLE_SWEEP)
    (tmp_path / "resumable").mkdir()
    (tmp_path / "resumable" / "manifest.json").write_text("{}")
    assert run_in_process(sweep_main, [str(spec), "--storage", str(tmp_path)]) == 2
    assert "--resume" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("name: x\nmodel: stid\ndatasets: [synthetic]\nspace: {lr: {type: float, low: 1, high: 0.1}}\n", "space.lr: low (1) can exceed high (0.1)"),
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
    # `ray start --head` turns token authentication on in Ray >= 2.5x; a throw-away local test
    # cluster opts out on every process (head, worker node, driver) alike.
    env = command_env(RAY_AUTH_MODE="disabled")
    head = subprocess.run(["ray", "start", "--head", f"--port={port}", "--num-cpus=1", "--include-dashboard=false"], env=env, capture_output=True, text=True)
    try:
        assert head.returncode == 0, head.stderr[-2000:]
        worker = subprocess.run(["ray", "start", f"--address=127.0.0.1:{port}", "--num-cpus=1"], env=env, capture_output=True, text=True)
        assert worker.returncode == 0, worker.stderr[-2000:]
        spec = tmp_path / "cluster.yaml"
        spec.write_text(RESUMABLE_SWEEP.replace("max_concurrent: 1", "max_concurrent: 2").replace("max_epochs: 4", "max_epochs: 2"))
        done = run_command("harness.sweep", str(spec), "--storage", str(tmp_path), "--address", f"127.0.0.1:{port}", "--no-report", cwd=tmp_path, RAY_AUTH_MODE="disabled")
        assert done.returncode == 0, done.stderr[-3000:] + done.stdout[-2000:]
        assert "2 node(s)" in done.stdout
        trials = pd.read_csv(tmp_path / "resumable" / "trials.csv")
        assert trials["node"].nunique() == 2, trials["node"].tolist()
    finally:
        subprocess.run(["ray", "stop", "--force"], env=env, capture_output=True)
