"""The teacher cache: trained once per key, shared by concurrent trials, safe against crashes."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import time
from pathlib import Path

import pytest
import torch

from harness.data import generate_synthetic, prepare
from harness.locks import LockOwner, lock_content
from harness.teachers import (
    LOCK_FILE,
    META_FILE,
    WEIGHTS_FILE,
    obtain_teacher,
    teacher_key,
    teacher_key_inputs,
)
from harness.loop import TrainConfig

TEACHER = "lightst_teacher"
TINY_TEACHER = {"hidden": 8, "gcn_layers": 1, "tcn_layers": 1}
STALE_AFTER_S = 1.0


def tiny_data():
    return prepare(generate_synthetic(num_nodes=6, num_steps=288 * 2, seed=0))


def quick_training(**changes) -> TrainConfig:
    settings = {"max_epochs": 2, "batch_size": 16, "max_batches_per_epoch": 2, "device": "cpu", "seed": 0}
    return TrainConfig(**{**settings, **changes})


def entry_folder(cache_dir: Path) -> Path:
    (folder,) = [path for path in Path(cache_dir).iterdir() if path.is_dir()]
    return folder


def weights_digest(model: torch.nn.Module) -> list[float]:
    return [round(float(v.double().sum()), 6) for v in model.state_dict().values()]


def obtain_in_child(cache_dir: str, start, results) -> None:
    """Child process: wait for the sibling, then obtain the teacher; report status, weights, log."""
    data = tiny_data()
    lines: list[str] = []
    start.wait()
    model, status = obtain_teacher(
        TEACHER, TINY_TEACHER, data, quick_training(), Path(cache_dir), log=lines.append, stale_after_s=30.0
    )
    results.put((status, weights_digest(model), lines))


def train_then_hang(cache_dir: str, mid_training) -> None:
    """Child process: start training and stall after the first epoch, until killed."""

    def log(line: str) -> None:
        if line.lstrip().startswith("epoch"):
            mid_training.set()
            time.sleep(600)

    obtain_teacher(TEACHER, TINY_TEACHER, tiny_data(), quick_training(), Path(cache_dir), log=log, stale_after_s=STALE_AFTER_S)


def test_two_processes_needing_the_same_teacher_train_it_once_and_share_it(tmp_path: Path):
    context = multiprocessing.get_context("spawn")
    start, results = context.Barrier(2), context.Queue()
    workers = [context.Process(target=obtain_in_child, args=(str(tmp_path), start, results)) for _ in range(2)]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)
    statuses = sorted(status for status, _, _ in outcomes)
    assert statuses == ["reused", "trained"]
    assert outcomes[0][1] == outcomes[1][1]
    waiter_log = next(lines for status, _, lines in outcomes if status == "reused")
    assert any("waiting for" in line for line in waiter_log)
    meta = json.loads((entry_folder(tmp_path) / META_FILE).read_text())
    assert meta["trained_by"]["pid"] in {w.pid for w in workers}
    assert not (entry_folder(tmp_path) / LOCK_FILE).exists()


def test_a_killed_trainer_leaves_no_loadable_teacher_and_the_next_call_trains_it(tmp_path: Path):
    context = multiprocessing.get_context("spawn")
    mid_training = context.Event()
    trainer = context.Process(target=train_then_hang, args=(str(tmp_path), mid_training))
    trainer.start()
    assert mid_training.wait(timeout=120)
    os.kill(trainer.pid, signal.SIGKILL)
    trainer.join()
    folder = entry_folder(tmp_path)
    assert (folder / LOCK_FILE).exists() and not (folder / WEIGHTS_FILE).exists()

    lines: list[str] = []
    model, status = obtain_teacher(
        TEACHER, TINY_TEACHER, tiny_data(), quick_training(), tmp_path, log=lines.append, stale_after_s=STALE_AFTER_S
    )
    assert status == "trained"
    assert any("no longer running" in line for line in lines)
    assert (folder / WEIGHTS_FILE).exists() and not (folder / LOCK_FILE).exists()


def test_a_lock_whose_heartbeat_stopped_on_another_node_is_broken(tmp_path: Path):
    data, training = tiny_data(), quick_training()
    folder = tmp_path / teacher_key(teacher_key_inputs(TEACHER, TINY_TEACHER, data, training))
    folder.mkdir()
    owner = LockOwner("other-node", 1, "2024-01-01T00:00:00+00:00")
    (folder / LOCK_FILE).write_text(lock_content(owner, beats=7))
    lines: list[str] = []
    started = time.monotonic()
    _, status = obtain_teacher(TEACHER, TINY_TEACHER, data, training, tmp_path, log=lines.append, stale_after_s=STALE_AFTER_S)
    assert status == "trained"
    assert time.monotonic() - started >= STALE_AFTER_S
    assert any("waiting for other-node:1" in line for line in lines)
    assert any("heartbeat stopped" in line for line in lines)


def test_a_crash_while_saving_leaves_nothing_loadable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    data, training = tiny_data(), quick_training()

    def crash_half_way(state, handle) -> None:
        handle.write(b"PK\x03\x04 half a checkpoint")
        raise KeyboardInterrupt

    monkeypatch.setattr("harness.teachers.torch.save", crash_half_way)
    with pytest.raises(KeyboardInterrupt):
        obtain_teacher(TEACHER, TINY_TEACHER, data, training, tmp_path, log=lambda _: None)
    folder = entry_folder(tmp_path)
    assert not (folder / WEIGHTS_FILE).exists() and not (folder / LOCK_FILE).exists()

    monkeypatch.undo()
    _, status = obtain_teacher(TEACHER, TINY_TEACHER, data, training, tmp_path, log=lambda _: None)
    assert status == "trained"
    assert sorted(path.name for path in folder.iterdir()) == [META_FILE, WEIGHTS_FILE]


def test_a_corrupt_teacher_file_is_trained_again_then_reused(tmp_path: Path):
    data, training = tiny_data(), quick_training()
    first, status = obtain_teacher(TEACHER, TINY_TEACHER, data, training, tmp_path, log=lambda _: None)
    assert status == "trained"
    (entry_folder(tmp_path) / WEIGHTS_FILE).write_bytes(b"not a checkpoint")
    lines: list[str] = []
    second, status = obtain_teacher(TEACHER, TINY_TEACHER, data, training, tmp_path, log=lines.append)
    assert status == "trained"
    assert any("does not load" in line for line in lines)
    third, status = obtain_teacher(TEACHER, TINY_TEACHER, data, training, tmp_path, log=lambda _: None)
    assert status == "reused"
    assert weights_digest(first) == weights_digest(second) == weights_digest(third)


def test_reused_teacher_is_frozen_and_identical_to_the_trained_one(tmp_path: Path):
    data, training = tiny_data(), quick_training()
    trained, _ = obtain_teacher(TEACHER, TINY_TEACHER, data, training, tmp_path, log=lambda _: None)
    reused, status = obtain_teacher(TEACHER, TINY_TEACHER, data, training, tmp_path, log=lambda _: None)
    assert status == "reused"
    assert not reused.training and not any(p.requires_grad for p in reused.parameters())
    for key, value in trained.state_dict().items():
        torch.testing.assert_close(reused.state_dict()[key], value)
    meta = json.loads((entry_folder(tmp_path) / META_FILE).read_text())
    assert meta["inputs"]["config"]["hidden"] == 8 and meta["epochs"] == 2


def test_key_depends_on_data_config_and_seed_but_not_on_the_device():
    data, training = tiny_data(), quick_training()

    def key(overrides=TINY_TEACHER, data=data, training=training) -> str:
        return teacher_key(teacher_key_inputs(TEACHER, overrides, data, training))

    assert key() == key(training=quick_training(device="cuda"))
    assert key() == key(overrides={**TINY_TEACHER, "variant": "full"})
    assert key() != key(training=quick_training(seed=1))
    assert key() != key(overrides={**TINY_TEACHER, "hidden": 16})
    assert key() != key(data=prepare(generate_synthetic(num_nodes=6, num_steps=288 * 2, seed=1)))
