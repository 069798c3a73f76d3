"""The report engine (python -m harness.report) on hand-made campaign folders: the ablation
table's numbers against hand computation, the significance mark, every promised file, failed
trials, one seed, sparse and odd folders, and the command line's errors."""

from __future__ import annotations

import json
import math
import re
import statistics
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread
from scipy import stats

from harness.errors import run_command
from harness.records import read_records, trials_frame
from harness.report import build_report
from harness.report.__main__ import main
from harness.report.space import space_from_spec
from harness.report.stats import non_dominated
from report_fixtures import (
    SWEEP_SPACE,
    ablation_manifest,
    curves_for,
    realistic_ablation,
    realistic_sweep,
    sweep_manifest,
    trial_row,
    write_campaign,
    write_routing,
    write_v1_campaign,
)

FULL = [18.0, 18.2, 18.4]
WORSE = [19.0, 19.3, 19.5]  # worse than Full on every seed: significant
NOISY = [18.5, 17.9, 18.6]  # better on one seed, worse on two: not significant
SMALL_VARIANTS = {"Full": ("full", {}), "w/o A": ("wo_a", {"a": 0}), "w/o B": ("wo_b", {"b": 0})}


def small_ablation(folder: Path, values: dict[str, list[float]], **row_fields) -> Path:
    """One dataset (PEMS04), one MAE per seed and variant (RMSE = 1.6 MAE, MAPE = 3 MAE)."""
    rows = [
        trial_row(f"{SMALL_VARIANTS[display][0]}_{seed}", "PEMS04", mae, variant=SMALL_VARIANTS[display][0],
                  variant_display=display, seed=seed, **row_fields)
        for display, maes in values.items()
        for seed, mae in enumerate(maes)
    ]
    variants = {d: SMALL_VARIANTS[d] for d in values}
    return write_campaign(folder, ablation_manifest(["PEMS04"], list(range(len(FULL))), variants=variants), rows)


def table_rows(markdown: str) -> dict[str, list[str]]:
    """The body rows of a Markdown table, keyed by their first cell."""
    rows = {}
    for line in markdown.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        if line.startswith("| ") and not line.startswith("|:"):
            rows[cells[0]] = cells[1:]
    return rows


def index_links(report: Path) -> set[str]:
    return set(re.findall(r"\]\(([^)]+)\)", (report / "index.md").read_text()))


def assert_valid_png(path: Path) -> None:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path
    image = imread(path)
    assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 200, path


def assert_valid_pdf(path: Path) -> None:
    data = path.read_bytes()
    assert data.startswith(b"%PDF-") and b"%%EOF" in data[-64:], path


@pytest.fixture(scope="module")
def ablation_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_report(realistic_ablation(tmp_path_factory.mktemp("ablation") / "heph-ablation"))


@pytest.fixture(scope="module")
def sweep_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_report(realistic_sweep(tmp_path_factory.mktemp("sweep") / "heph-sweep"))


def test_ablation_table_means_stds_and_changes_match_hand_computed_values(tmp_path: Path) -> None:
    report = build_report(small_ablation(tmp_path / "c", {"Full": FULL, "w/o A": WORSE, "w/o B": NOISY}))
    cells = pd.read_csv(report / "ablation.csv").set_index(["variant", "measure"])
    for variant, maes in (("Full", FULL), ("w/o A", WORSE), ("w/o B", NOISY)):
        for measure, scale in (("MAE", 1.0), ("RMSE", 1.6), ("MAPE", 3.0)):
            row = cells.loc[(variant, measure)]
            assert row["n"] == 3
            assert row["mean"] == pytest.approx(scale * statistics.mean(maes))
            assert row["std"] == pytest.approx(scale * statistics.stdev(maes))
            expected_change = (statistics.mean(maes) - statistics.mean(FULL)) / statistics.mean(FULL) * 100
            if variant == "Full":
                assert math.isnan(row["change_pct"])
            else:
                assert row["change_pct"] == pytest.approx(expected_change)
    rows = table_rows((report / "ablation.md").read_text())
    # 19.2667 ± 0.2517, +5.86 % against 18.2; the best mean of the column (Full) in bold
    assert rows["w/o A"][0] == "19.27 ± 0.25 (+5.9%)\\*"
    assert rows["Full (reference)"][0] == "**18.20** ± 0.20"


def test_significance_mark_appears_only_where_the_paired_test_says_so(tmp_path: Path) -> None:
    report = build_report(small_ablation(tmp_path / "c", {"Full": FULL, "w/o A": WORSE, "w/o B": NOISY}))
    cells = pd.read_csv(report / "ablation.csv").set_index(["variant", "measure"])
    assert cells.loc[("w/o A", "MAE"), "p_value"] == pytest.approx(stats.ttest_rel(WORSE, FULL).pvalue)
    assert cells.loc[("w/o B", "MAE"), "p_value"] == pytest.approx(stats.ttest_rel(NOISY, FULL).pvalue)
    assert stats.ttest_rel(WORSE, FULL).pvalue < 0.05 < stats.ttest_rel(NOISY, FULL).pvalue
    markdown = (report / "ablation.md").read_text()
    rows = table_rows(markdown)
    assert all(cell.endswith("\\*") for cell in rows["w/o A"])
    assert not any("*" in cell.replace("**", "") for cell in rows["w/o B"] + rows["Full (reference)"])
    assert "paired t-test" in markdown and "n = 3 seeds" in markdown and "p < 0.05" in markdown
    latex = (report / "ablation.tex").read_text()
    assert latex.count("$^{*}$") == 3 + 1  # three marked cells plus the caption's explanation
    assert r"\toprule" in latex and r"\multicolumn{3}{c}{PEMS04}" in latex


def test_one_seed_reports_no_std_and_no_significance_instead_of_nan(tmp_path: Path) -> None:
    report = build_report(small_ablation(tmp_path / "c", {"Full": FULL[:1], "w/o A": WORSE[:1]}))
    markdown = (report / "ablation.md").read_text()
    rows = table_rows(markdown)
    body = " ".join(rows["Full (reference)"] + rows["w/o A"])
    assert "nan" not in markdown.lower() and "±" not in body and "\\*" not in body
    assert rows["w/o A"][0] == "19.00 (+5.6%)"
    assert "one seed has no std and no test" in markdown
    cells = pd.read_csv(report / "ablation.csv")
    assert cells["std"].isna().all() and not cells["significant"].any()


def test_ablation_report_writes_every_promised_file_and_index_links_them(ablation_report: Path) -> None:
    expected = {
        "index.md", "ablation.md", "ablation.tex", "ablation.csv", "ablation.png", "ablation.pdf",
        "efficiency.md", "efficiency.tex", "efficiency.csv", "failures.md", "failures.csv",
        "routing_pems04.png", "routing_pems04.pdf", "routing_pems08.png", "routing_pems08.pdf",
        "curves.png", "curves.pdf",
    }
    assert {p.name for p in ablation_report.iterdir()} == expected
    assert index_links(ablation_report) == expected - {"index.md"}
    for path in ablation_report.glob("*.png"):
        assert_valid_png(path)
    for path in ablation_report.glob("*.pdf"):
        assert_valid_pdf(path)


def test_failed_trials_are_counted_listed_and_left_out_of_means(ablation_report: Path) -> None:
    index = (ablation_report / "index.md").read_text()
    assert "| failed | 1 |" in index and "| ok | 17 |" in index
    failures = pd.read_csv(ablation_report / "failures.csv")
    assert failures["trial_id"].tolist() == ["wo_pta_pems08_2"]
    assert failures["error"].tolist() == ["CUDA out of memory"]
    assert "w/o PTA on PEMS08: 2 of 3 trials finished (1 failed)" in (ablation_report / "ablation.md").read_text()
    cells = pd.read_csv(ablation_report / "ablation.csv").set_index(["variant", "dataset", "measure"])
    assert cells.loc[("w/o PTA", "PEMS08", "MAE"), "n"] == 2
    assert cells.loc[("w/o PTA", "PEMS08", "MAE"), "n_pairs"] == 2


def test_multi_objective_sweep_report_has_sensitivity_importance_history_pareto(sweep_report: Path) -> None:
    names = {p.name for p in sweep_report.iterdir()}
    for stem in ("sensitivity_1", "sensitivity_2", "importance", "history", "pareto", "curves",
                 "routing_metr-la", "routing_pems08"):
        assert_valid_png(sweep_report / f"{stem}.png")
        assert_valid_pdf(sweep_report / f"{stem}.pdf")
    assert {"best_trials.md", "pareto.md", "pareto.csv", "importance.csv", "efficiency.md", "failures.md"} <= names
    assert index_links(sweep_report) == names - {"index.md"}
    index = (sweep_report / "index.md").read_text()
    assert "| failed | 2 |" in index and "| diverged | 2 |" in index and "| pruned | 4 |" in index
    assert re.search(r"evaluator: (fANOVA|PED-ANOVA)", index)
    importance = pd.read_csv(sweep_report / "importance.csv")
    assert set(importance["objective"]) == {"val_mae", "infer_ms"}
    sums = importance.groupby(["dataset", "objective"])["importance"].sum()
    assert np.allclose(sums, 1.0)


def test_pareto_set_holds_exactly_the_non_dominated_finished_trials(sweep_report: Path) -> None:
    trials = trials_frame(read_records(sweep_report.parent)[0])
    finished = trials[trials["status"] == "ok"]
    expected = set()
    for _, group in finished.groupby("dataset"):
        points = group[["val_mae", "infer_ms"]].to_numpy()
        for trial_id, point in zip(group["trial_id"], points):
            if not any(np.all(other <= point) and np.any(other < point) for other in points):
                expected.add(trial_id)
    assert set(pd.read_csv(sweep_report / "pareto.csv")["trial_id"]) == expected


def test_non_dominated_respects_maximised_objectives() -> None:
    values = np.array([[1.0, 1.0], [2.0, 3.0], [0.5, 0.5]])
    assert non_dominated(values, [False, False]).tolist() == [False, False, True]
    assert non_dominated(values, [False, True]).tolist() == [True, True, True]


def test_parameter_named_bound_resolves_to_the_widest_range() -> None:
    params = {p.name: p for p in space_from_spec(SWEEP_SPACE)}
    assert (params["top_k"].low, params["top_k"].high) == (1.0, 5.0)
    assert params["lr"].log and not params["dropout"].log
    assert params["patch_sizes"].choices == ("[1, 2, 3, 6]", "[1, 3, 6, 12]")


@pytest.mark.parametrize("case", ["no trials yet", "unreadable record", "only failed", "no curves", "no space", "bad routing"])
def test_sparse_or_odd_folders_give_a_report_that_says_what_it_skipped(tmp_path: Path, case: str) -> None:
    folder = tmp_path / "c"
    if case == "no trials yet":
        write_campaign(folder, ablation_manifest(["PEMS04"], [0]), [])
        (folder / "records").mkdir()
    elif case == "unreadable record":
        write_campaign(folder, ablation_manifest(["PEMS04"], [0]), [trial_row("t0", "PEMS04", 18.0)])
        (folder / "records" / "t1.json").write_text("{half a reco")
    elif case == "only failed":
        rows = [trial_row(f"t{seed}", "PEMS04", None, status="failed", seed=seed, error="boom") for seed in range(2)]
        write_campaign(folder, ablation_manifest(["PEMS04"], [0, 1]), rows)
    elif case == "no space":
        rows = [trial_row(f"t{i}", "PEMS08", 13 + i % 3 * 0.1, **{"config.top_k": i % 3 + 1, "config.seed": 0})
                for i in range(6)]
        write_campaign(folder, sweep_manifest(objective={"metric": "val_mae", "mode": "min"}, space=None,
                                              datasets=["PEMS08"]), rows, curves_for(rows))
    else:
        rows = [trial_row(f"t{seed}", "PEMS04", 18 + seed * 0.1, seed=seed) for seed in range(2)]
        write_campaign(folder, ablation_manifest(["PEMS04"], [0, 1]), rows, None if case == "no curves" else curves_for(rows))
        if case == "bad routing":
            (folder / "artifacts" / "t0").mkdir(parents=True)
            np.savez(folder / "artifacts" / "t0" / "routing.npz", gate_probs=np.ones((4, 2)), hour=np.arange(3))
    report = build_report(folder)
    index = (report / "index.md").read_text()
    assert not (report / "errors.log").exists(), (report / "errors.log").read_text()
    expected_reason = {
        "no trials yet": "ablation table: no trial finished",
        "unreadable record": "records/t1.json is not a readable trial record",
        "only failed": "ablation table: no trial finished",
        "no curves": "no trial recorded a per-epoch curve",
        "no space": "the manifest has no search space",
        "bad routing": "routing.npz lacks array(s) target",
    }[case]
    assert expected_reason in index
    if case == "only failed":
        assert "| failed | 2 |" in index and (report / "failures.md").is_file()
    if case == "no space":
        assert (report / "sensitivity_1.png").is_file() and "top_k" in index


def test_lightst_efficiency_table_reports_speedup_over_its_teacher(tmp_path: Path) -> None:
    variants = {"Full": ("full", {}), "Teacher": ("teacher", {})}
    rows = [
        trial_row(f"{name}_{seed}", "PEMS08", 15.0, model="lightst", variant=name, variant_display=display, seed=seed,
                  infer_ms=2.0 if name == "full" else 10.0, device="cuda:0" if seed else "cpu", **{"config.variant": name})
        for display, (name, _) in variants.items()
        for seed in range(2)
    ]
    report = build_report(write_campaign(tmp_path / "c", ablation_manifest(["PEMS08"], [0, 1], "lightst", variants), rows))
    efficiency = pd.read_csv(report / "efficiency.csv").set_index("row")
    assert efficiency.loc["Full", "speedup"] == pytest.approx(5.0)
    assert math.isnan(efficiency.loc["Teacher", "speedup"])
    assert "| 5.0× |" in (report / "efficiency.md").read_text()
    assert "(device: cpu, cuda:0)" in (report / "efficiency.md").read_text()  # where the timings were measured


def test_metric_and_reference_choices_change_the_table(tmp_path: Path) -> None:
    folder = small_ablation(tmp_path / "c", {"Full": FULL, "w/o A": WORSE, "w/o B": NOISY}, test_mae_h12=30.0)
    (folder / "report").mkdir()
    (folder / "report" / "stale.txt").write_text("from an earlier run")
    report = build_report(folder, metric="h12", reference="wo_b")
    cells = pd.read_csv(report / "ablation.csv").set_index(["variant", "measure"])
    assert cells.loc[("Full", "MAE"), "column"] == "test_mae_h12"
    assert cells.loc[("Full", "MAE"), "mean"] == pytest.approx(30.0)
    assert "w/o B (reference)" in table_rows((report / "ablation.md").read_text())
    assert not (report / "stale.txt").exists()


@pytest.mark.parametrize("problem", ["no folder", "no manifest", "bad metric", "unknown reference", "reference on a sweep"])
def test_user_errors_exit_2_with_a_one_line_message(tmp_path: Path, capsys: pytest.CaptureFixture, problem: str) -> None:
    ablation = small_ablation(tmp_path / "ablation", {"Full": FULL})
    sweep = write_campaign(tmp_path / "sweep", sweep_manifest(), [trial_row("t0", "PEMS08", 13.0)])
    (tmp_path / "empty").mkdir()
    argv = {
        "no folder": [str(tmp_path / "missing")],
        "no manifest": [str(tmp_path / "empty")],
        "bad metric": [str(ablation), "--metric", "h5"],
        "unknown reference": [str(ablation), "--reference", "nope"],
        "reference on a sweep": [str(sweep), "--reference", "Full"],
    }[problem]
    assert run_command(main, argv) == 2
    message = capsys.readouterr().err
    assert message.startswith("error: ") and message.count("\n") == 1
    assert not (ablation / "report").exists()


def test_command_line_writes_the_report(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    folder = small_ablation(tmp_path / "c", {"Full": FULL, "w/o A": WORSE})
    write_routing(folder, "full_0")
    assert run_command(main, [str(folder)]) == 0
    assert f"wrote {folder / 'report' / 'index.md'}" in capsys.readouterr().out
    assert (folder / "report" / "routing_pems04.png").is_file()
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["spec"]["reference"] in (folder / "report" / "index.md").read_text()


def test_a_folder_of_version_one_is_read_from_its_trials_csv(tmp_path: Path) -> None:
    rows = [trial_row(f"full_{seed}", "PEMS04", 18.0 + seed) for seed in range(2)]
    report = build_report(write_v1_campaign(tmp_path / "c", ablation_manifest(["PEMS04"], [0, 1]), rows))
    assert table_rows((report / "ablation.md").read_text())["Full (reference)"][0].strip("*") == "18.50"


def test_the_report_says_when_its_campaign_has_not_finished(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    folder = small_ablation(tmp_path / "c", {"Full": FULL})
    manifest = json.loads((folder / "manifest.json").read_text())
    (folder / "manifest.json").write_text(json.dumps({**manifest, "status": "interrupted"}))
    assert run_command(main, [str(folder)]) == 0
    assert "the campaign is interrupted" in capsys.readouterr().out
    assert "interrupted (continue it with --resume)" in (folder / "report" / "index.md").read_text()


def test_the_report_imports_neither_torch_nor_ray() -> None:
    import subprocess
    import sys

    code = "import harness.report, harness.report.__main__, sys; print(sorted({'torch', 'ray'} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
