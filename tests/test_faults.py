"""Fault injection: tiny campaigns killed, interrupted and starved at chosen points, then resumed.

After recovery every scenario asserts the same contract: no finished trial is lost or run
again, no duplicate, exactly the planned number of final records, nothing half-written, and one
line that says what happened and what to run next.

    python -m pytest -m faults          # only these
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import optuna
import pandas as pd
import pytest

from campaign_helpers import PrivateRayCluster, command_env, run_command

pytestmark = [pytest.mark.slow, pytest.mark.faults]

FINAL = ("ok", "failed", "diverged", "pruned")
SWEEP = """\
name: tiny
model: stid
datasets: [synthetic]
data_options: {nodes: 6, days: 4}
fixed: {max_epochs: 4, max_batches_per_epoch: 10, batch_size: 16}
space:
  num_layers: {type: int, low: 1, high: 3}
  lr: {type: float, low: 1.0e-3, high: 1.0e-2, log: true}
search: {sampler: random, num_samples: 4, seed: 3}
max_concurrent: 2
"""
ABLATION = """\
name: tiny-grid
model: stid
datasets: [synthetic]
data_options: {nodes: 6, days: 4}
seeds: [0, 1]
base: {max_epochs: 4, max_batches_per_epoch: 10, batch_size: 16}
variants:
  Full: {}
  No node embedding: {use_node: false}
max_concurrent: 2
"""


def write_spec(folder: Path, text: str = SWEEP) -> Path:
    path = folder / "spec.yaml"
    path.write_text(text)
    return path


def records(campaign: Path) -> dict[str, dict]:
    """Every record file of a campaign, parsed; a file that does not parse fails the test."""
    found = {}
    for path in (campaign / "records").glob("*.json"):
        found[path.stem] = json.loads(path.read_text())  # half a file would raise here
    return found


def final(campaign: Path) -> dict[str, dict]:
    return {k: v for k, v in records(campaign).items() if v["status"] in FINAL}


def start(module: str, spec: Path, storage: Path, *extra: str, **env: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", module, str(spec), "--storage", str(storage), "--no-report", *extra],
        cwd=storage, env=command_env(**env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )


def wait_until(condition, timeout: float = 240.0, what: str = "the condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def kill(driver: subprocess.Popen) -> None:
    """SIGKILL the driver and every process it started (its local Ray), at once."""
    with contextlib.suppress(ProcessLookupError):  # it may have finished just before
        os.killpg(driver.pid, signal.SIGKILL)
    driver.wait()


def resume(module: str, spec: Path, storage: Path, **env: str) -> subprocess.CompletedProcess:
    done = run_command(module, str(spec), "--storage", str(storage), "--no-report", "--resume", cwd=storage, **env)
    assert "Traceback" not in done.stdout + done.stderr, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def assert_complete(campaign: Path, planned: int, kept: dict[str, dict] | None = None) -> None:
    """Exactly `planned` final records, unique, every record final; the trials in `kept` untouched."""
    everything = records(campaign)
    assert len(everything) == planned and all(r["status"] in FINAL for r in everything.values()), \
        {k: v["status"] for k, v in everything.items()}
    trials = pd.read_csv(campaign / "trials.csv")
    assert len(trials) == planned and trials["trial_id"].is_unique
    for trial_id, record in (kept or {}).items():
        assert everything[trial_id]["ended"] == record["ended"], f"finished trial {trial_id} was run again"
    assert json.loads((campaign / "manifest.json").read_text())["status"] == "finished"


def test_killed_after_tuner_pkl_before_the_first_experiment_state_resume_runs_the_whole_plan(tmp_path):
    spec = write_spec(tmp_path, ABLATION)
    driver = start("harness.ablate", spec, tmp_path)
    run_dir = tmp_path / "tiny-grid" / "ray" / "run-1"
    wait_until(lambda: (run_dir / "tuner.pkl").exists(), what="tuner.pkl")
    kill(driver)
    for state in [*run_dir.glob("experiment_state*"), *run_dir.glob("search*state*")]:
        state.unlink()  # as if the kill came before Tune's first snapshot
    kept = final(tmp_path / "tiny-grid")
    done = resume("harness.ablate", spec, tmp_path)
    assert done.returncode == 0, done.stdout[-3000:]
    assert_complete(tmp_path / "tiny-grid", 4, kept)
    cells = {r["cell"] for r in records(tmp_path / "tiny-grid").values()}
    assert len(cells) == 4  # every cell once


def test_repeated_kills_at_any_moment_never_leave_half_a_file_and_resume_finishes_exactly(tmp_path):
    spec = write_spec(tmp_path)
    campaign = tmp_path / "tiny"
    kept: dict[str, dict] = {}
    for round_ in range(2):
        driver = start("harness.sweep", spec, tmp_path, *(["--resume"] if round_ else []))
        if round_:  # the resumed driver is under way before it is killed
            wait_until(lambda: len(json.loads((campaign / "manifest.json").read_text())["resumed"]) == 1, what="the resumed driver")
        wanted = len(kept) + 1
        wait_until(lambda: len(final(campaign)) >= wanted, what=f"{wanted} finished trial(s)")
        time.sleep(0.4 * round_)  # land the second kill at another moment of a trial
        kill(driver)
        records(campaign)  # every record parses
        if (campaign / "trials.csv").exists():
            pd.read_csv(campaign / "trials.csv")
        kept.update(final(campaign))
    # The last kill also lost every checkpoint (as when it lands while Tune rotates them):
    # trials whose snapshot names one run again from the start instead of failing.
    for checkpoint in (campaign / "ray").glob("*/*/checkpoint_*"):
        shutil.rmtree(checkpoint)
    done = resume("harness.sweep", spec, tmp_path)
    assert done.returncode == 0, done.stdout[-3000:]
    assert_complete(campaign, 4, kept)
    manifest = json.loads((campaign / "manifest.json").read_text())
    assert len(manifest["resumed"]) == 2 and manifest["trials"] == {"ok": 4}
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(campaign / "optuna_journal.log")))
    study = optuna.load_study(study_name="tiny/synthetic", storage=storage)
    assert sum(t.state.name == "COMPLETE" for t in study.trials) == 4  # the live study agrees with the records
    assert not any(t.state.name == "RUNNING" for t in study.trials)


def running_checkpoint_in_tune_state(campaign: Path) -> bool:
    """Whether Tune's saved experiment state holds a checkpoint of a trial that is still running:
    only then does --resume restore that trial from it (a trial the state does not hold yet is
    set aside and run again under a new id). The state names checkpoint folders hex-encoded."""
    running = {k for k, v in records(campaign).items() if v["status"] not in FINAL}
    for state in (campaign / "ray").glob("*/experiment_state*.json"):
        try:
            trials = json.loads(state.read_text())["trial_data"]
        except (OSError, ValueError, KeyError):  # being written
            continue
        for entry in trials:
            text = json.dumps(entry)
            trial_id = json.loads(entry[0])["trial_id"]
            folders = {p.name for p in (campaign / "ray").glob(f"*/run_trial_{trial_id}_*/checkpoint_*")}
            if trial_id in running and any(name.encode().hex() in text for name in folders):
                return True
    return False


def test_a_lost_or_damaged_checkpoint_restarts_its_trial_and_says_so(tmp_path):
    spec = write_spec(tmp_path, SWEEP.replace("max_epochs: 4", "max_epochs: 8").replace("max_concurrent: 2", "max_concurrent: 1"))
    campaign = tmp_path / "tiny"
    driver = start("harness.sweep", spec, tmp_path, "--checkpoint-every", "1")
    checkpoints = lambda: list((campaign / "ray").glob("*/*/checkpoint_*/train_state.pt"))  # noqa: E731
    wait_until(lambda: running_checkpoint_in_tune_state(campaign), what="a running trial's checkpoint in Tune's saved state")
    kill(driver)
    running = [k for k, v in records(campaign).items() if v["status"] not in FINAL]
    for path in checkpoints():
        path.write_bytes(b"this is not a checkpoint")
    done = run_command("harness.sweep", str(spec), "--storage", str(tmp_path), "--no-report", "--resume", "--checkpoint-every", "1", cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:]
    assert_complete(campaign, 4)
    restarted = [records(campaign)[k] for k in running if k in records(campaign)]
    assert restarted and all(any("restarted from scratch" in n for n in r["notes"]) for r in restarted), restarted


def test_sigterm_stops_cleanly_records_every_trial_and_prints_the_resume_command(tmp_path):
    spec = write_spec(tmp_path, SWEEP.replace("max_epochs: 4", "max_epochs: 12"))
    campaign = tmp_path / "tiny"
    driver = start("harness.sweep", spec, tmp_path)
    wait_until(lambda: len(final(campaign)) >= 1, what="a finished trial")
    driver.send_signal(signal.SIGTERM)
    out, _ = driver.communicate(timeout=120)
    assert driver.returncode == 143, out[-3000:]
    assert "Traceback" not in out
    last = out.strip().splitlines()[-1]
    assert last.startswith("interrupted: ") and last.endswith("--resume"), last
    statuses = [r["status"] for r in records(campaign).values()]
    assert "interrupted" in statuses and set(statuses) <= {*FINAL, "interrupted"}  # (resuming is the Ctrl-C test's)
    assert json.loads((campaign / "manifest.json").read_text())["status"] == "interrupted"


def test_a_second_driver_of_the_same_campaign_is_refused_and_a_dead_drivers_lock_is_broken(tmp_path):
    spec = write_spec(tmp_path, SWEEP.replace("max_epochs: 4", "max_epochs: 10"))
    campaign = tmp_path / "tiny"
    first = start("harness.sweep", spec, tmp_path)
    try:
        wait_until(lambda: (campaign / "manifest.json").exists(), what="the first driver's manifest")
        second = run_command("harness.sweep", str(spec), "--storage", str(tmp_path), "--resume", "--no-report", cwd=tmp_path)
        assert second.returncode == 2, second.stdout[-2000:] + second.stderr[-2000:]
        err = second.stderr.strip().splitlines()
        assert len(err) == 1 and "another driver is running this campaign" in err[0] and str(first.pid) in err[0], err
        assert "dataset " not in second.stdout  # refused before the data load, not after it
        fresh = run_command("harness.sweep", str(spec), "--storage", str(tmp_path), "--fresh", "--no-report", cwd=tmp_path)
        assert fresh.returncode == 2 and "another driver is running" in fresh.stderr  # never sets a running campaign aside
        assert not list(tmp_path.glob("tiny.replaced-*"))
    finally:
        kill(first)
    done = resume("harness.sweep", spec, tmp_path)  # the dead driver's lock does not block its resume
    assert done.returncode == 0, done.stdout[-3000:]
    assert_complete(campaign, 4)


@pytest.fixture
def small_disk(tmp_path):
    """A 9 MB tmpfs (Linux, as root); skipped where it cannot be mounted."""
    mount = tmp_path / "disk"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=9m", "tmpfs", str(mount)], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({made.stderr.strip()})")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_a_full_disk_stops_the_campaign_with_every_record_written_and_resume_finishes_it(tmp_path, small_disk):
    spec = write_spec(tmp_path, SWEEP.replace("num_samples: 4", "num_samples: 12").replace("{type: int, low: 1, high: 3}", "{type: int, low: 3, high: 6}"))
    done = run_command("harness.sweep", str(spec), "--storage", str(small_disk), "--no-report", cwd=tmp_path, HARNESS_MIN_FREE_MB="1")
    campaign = small_disk / "tiny"
    out = done.stdout + done.stderr
    assert done.returncode == 1 and "Traceback" not in out, out[-3000:]
    last = done.stdout.strip().splitlines()[-1]
    assert last.startswith("stopped: the storage") and "is full" in last and "free some space, then resume with:" in last, last
    before = records(campaign)
    assert before and all(r["status"] in (*FINAL, "interrupted") for r in before.values())
    kept = final(campaign)
    subprocess.run(["mount", "-o", "remount,size=128m", str(small_disk)], check=True)
    done = resume("harness.sweep", spec, small_disk, HARNESS_MIN_FREE_MB="1")
    assert done.returncode == 0, done.stdout[-3000:]
    assert_complete(campaign, 12, kept)


def test_unusable_storage_is_one_line_before_anything_starts(tmp_path):
    spec = write_spec(tmp_path)
    (tmp_path / "a-file").write_text("")
    read_only = tmp_path / "read-only"
    read_only.mkdir()
    read_only.chmod(0o500)
    cases = {str(tmp_path / "a-file" / "results"): "is a file, not a folder"}
    if os.geteuid() != 0:  # root writes anywhere: nothing to refuse
        cases[str(read_only / "results")] = "is not writable"
    for storage, message in cases.items():
        done = run_command("harness.sweep", str(spec), "--storage", storage, cwd=tmp_path)
        err = done.stderr.strip().splitlines()
        assert done.returncode == 2 and len(err) == 1 and message in err[0], done.stdout[-1000:] + done.stderr[-1000:]
        assert "ray:" not in done.stdout and "dataset synthetic" not in done.stdout  # refused before data or Ray


@pytest.mark.skipif(shutil.which("ray") is None, reason="the `ray` command is not on PATH")
def test_a_local_campaign_never_joins_another_ray_on_the_same_machine(tmp_path):
    cluster = PrivateRayCluster()
    head = cluster.start("--head", "--port=6411", "--num-cpus=1", "--include-dashboard=false")
    try:
        assert head.returncode == 0, head.stderr[-2000:]
        spec = write_spec(tmp_path, SWEEP.replace("num_samples: 4", "num_samples: 2"))
        done = run_command("harness.sweep", str(spec), "--storage", str(tmp_path), "--no-report", cwd=tmp_path, RAY_AUTH_MODE="disabled")
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        assert "Traceback" not in done.stderr and len(final(tmp_path / "tiny")) == 2
    finally:
        cluster.stop()


def test_concurrent_cache_publishers_never_show_a_reader_half_a_file(tmp_path):
    """Two trials finishing the same identity at once, and a third reading it meanwhile."""
    from harness.cache import lookup, publish, weights_path
    from harness.records import TrialRecord

    campaign = tmp_path / "c"
    (campaign / "models").mkdir(parents=True)
    payload = os.urandom(3 * 2**20)
    errors: list[BaseException] = []

    def publisher(name: str) -> None:
        try:
            (campaign / weights_path(name)).write_bytes(payload)
            for _ in range(15):
                publish(tmp_path, "key", TrialRecord("c", name, "stid", "synthetic", status="ok"), campaign)
        except BaseException as error:  # noqa: BLE001 (collected for the assert)
            errors.append(error)

    def reader() -> None:
        weights = tmp_path / "cache" / "key" / "model.pt"
        while any(t.is_alive() for t in writers):
            if lookup(tmp_path, "key") is not None and weights.read_bytes() != payload:
                errors.append(AssertionError("a reader saw a partly written model.pt"))

    writers = [threading.Thread(target=publisher, args=(f"t{i}",)) for i in range(2)]
    watching = threading.Thread(target=reader)
    for thread in writers:
        thread.start()
    watching.start()
    for thread in [*writers, watching]:
        thread.join()
    assert not errors, errors[:3]
    assert not list((tmp_path / "cache" / "key").glob(".*.tmp"))


@pytest.mark.skipif(shutil.which("ray") is None, reason="the `ray` command is not on PATH")
def test_a_machine_lost_mid_campaign_is_in_the_records_and_one_quiet_line_on_the_console(tmp_path):
    cluster = PrivateRayCluster()
    raylets = lambda: set(subprocess.run(["pgrep", "-f", f"raylet/raylet.*{cluster.temp_dir}"], capture_output=True, text=True).stdout.split())  # noqa: E731
    head = cluster.start("--head", "--port=6412", "--num-cpus=1", "--include-dashboard=false")
    try:
        assert head.returncode == 0, head.stderr[-2000:]
        before = raylets()
        worker = cluster.start("--address=127.0.0.1:6412", "--num-cpus=1")
        assert worker.returncode == 0, worker.stderr[-2000:]
        (worker_raylet,) = raylets() - before
        spec = write_spec(tmp_path, SWEEP.replace("num_samples: 4", "num_samples: 2").replace("max_epochs: 4", "max_epochs: 25"))
        campaign = tmp_path / "tiny"
        driver = start("harness.sweep", spec, tmp_path, "--address", "127.0.0.1:6412", "--checkpoint-every", "1", RAY_AUTH_MODE="disabled")
        progress = lambda: [json.loads(p.read_text()) for p in (campaign / "records" / "progress").glob("*.json")]  # noqa: E731
        wait_until(lambda: len(progress()) == 2 and all(r["epochs"] >= 2 for r in progress()), what="both trials past epoch 2")
        subprocess.run(["pkill", "-9", "-P", worker_raylet])  # the machine's workers and its raylet, gone
        subprocess.run(["kill", "-9", worker_raylet])
        out, _ = driver.communicate(timeout=300)
        assert driver.returncode == 0 and "Traceback" not in out, out[-3000:]
        retry_lines = [line for line in out.splitlines() if "retrying" in line]
        assert len(retry_lines) == 1 and "lost its worker or the machine it ran on; retrying (1/2)" in retry_lines[0], out[-3000:]
        retried = [r for r in records(campaign).values() if r["retries"]]
        assert len(retried) == 1 and retried[0]["status"] == "ok" and len(retried[0]["nodes"]) == 2, records(campaign)
        assert retried[0]["last_error"] and any("resumed from its checkpoint" in n for n in retried[0]["notes"])
        assert_complete(campaign, 2)
    finally:
        cluster.stop()
