"""`python -m harness.train`: describe without data, a full run's metrics.json, bad input."""

import json

import pytest

from harness.cli import run_command
from harness.train import main


def run(argv, capsys):
    code = run_command(main, argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_describe_prints_stid_parameter_count_for_pems04_without_data(capsys, monkeypatch):
    monkeypatch.delenv("HARNESS_DATA_DIR", raising=False)
    code, out, _ = run(["--model", "stid", "--dataset", "PEMS04", "--describe"], capsys)
    assert code == 0
    assert "parameters: 121068" in out.splitlines()


def test_full_run_writes_metrics_json_in_the_documented_shape(tmp_path, capsys):
    argv = [
        "--model", "stid", "--dataset", "synthetic",
        "--data-option", "nodes=6", "--data-option", "days=5",
        "--set", "max_epochs=2", "--set", "max_batches_per_epoch=4", "--set", "device=cpu",
        "--out", str(tmp_path),
    ]
    code, out, _ = run(argv, capsys)
    assert code == 0
    assert "epoch   2" in out and "horizon 12" in out
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert set(metrics["test"]) == {"overall", "h3", "h6", "h12"}
    assert set(metrics["test"]["overall"]) == {"mae", "rmse", "mape"}
    assert set(metrics["val"]) == {"mae", "rmse", "mape"}
    assert set(metrics["samples"]) == {"train", "val", "test"}
    assert metrics["parameters"] > 0 and metrics["epochs"] == 2


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--model", "nope", "--dataset", "synthetic"], "unknown model 'nope'; valid:"),
        (["--model", "stid", "--dataset", "nowhere"], "nowhere"),
        (["--model", "stid", "--dataset", "synthetic", "--set", "wings=2"], "wings: not a setting of model stid"),
        (["--model", "stid", "--dataset", "synthetic", "--set", "lr=fast"], "lr: expected float"),
        (["--model", "stid", "--dataset", "synthetic", "--set", "num_layers=0"], "num_layers: must be >= 1"),
        (["--model", "stid", "--dataset", "synthetic", "--set", "lr"], "expected key=value"),
        (["--model", "stid", "--dataset", "synthetic", "--set", "variant=wo_pta"], "unknown variant 'wo_pta'"),
        (["--model", "stid", "--dataset", "synthetic", "--data-option", "colour=red"], "colour"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(argv, expected, capsys):
    code, _, err = run(argv, capsys)
    assert code == 2
    assert expected in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_missing_data_directory_names_what_is_expected(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("HARNESS_DATA_DIR", raising=False)
    code, _, err = run(["--model", "stid", "--dataset", "pems04", "--data-dir", str(tmp_path)], capsys)
    assert code == 2
    assert "PEMS04" in err and len(err.strip().splitlines()) == 1
