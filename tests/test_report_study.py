"""One-at-a-time sensitivity studies (campaign kind "sensitivity") and published numbers: the
study's points against hand computation from the records, the shared base point, skipped values,
the figure's axes; the papers' numbers beside the reproduced ones in the ablation table, the
sensitivity study and the efficiency table, at the right horizon, matched across name spellings."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from figure_checks import captured_figures
from harness.errors import run_command
from harness.records import read_records, trials_frame
from harness.report import build_report
from harness.report.__main__ import main
from harness.report.load import dataset_key
from harness.report.references import REFERENCE_COLUMNS, load_references
from report_fixtures import (
    H12_OVER_AVERAGE,
    ablation_manifest,
    hephaestus_study,
    lightst_study,
    table3_ablation,
    trial_row,
    write_campaign,
)

TABLE3_FULL_METR_LA_MAE = 3.36  # HEPHAESTUS Table 3, horizon 12
FIGURE3 = {("top_k", "1", "METR-LA"): 3.42, ("top_k", "3", "PEMS08"): 13.71, ("rank", "32", "PEMS08"): 13.62}


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Figure]]:
    """The HEPHAESTUS study's report (default --metric paper) and its figures."""
    with captured_figures() as figures:
        report = build_report(hephaestus_study(tmp_path_factory.mktemp("study") / "heph-study"))
    return report, dict(figures)


def points(report: Path) -> pd.DataFrame:
    return pd.read_csv(report / "sensitivity.csv", dtype={"value": str})


def finished_trials(report: Path) -> pd.DataFrame:
    trials = trials_frame(read_records(report.parent)[0])
    return trials[trials["status"] == "ok"]


def test_each_point_is_the_mean_and_std_over_seeds_of_its_trials(study: tuple[Path, dict]) -> None:
    report, _ = study
    trials = finished_trials(report)
    table = points(report).set_index(["parameter", "value", "dataset", "measure"])
    for label, dataset, column in (("num_experts=2", "PEMS08", "test_mae"), ("rank=4", "METR-LA", "test_rmse_h12"),
                                   ("rank=32", "PEMS08", "test_mae")):
        parameter, value = label.split("=")
        values = trials.loc[trials["cell"].str.startswith(f"{label} | {dataset} |"), column]
        row = table.loc[(parameter, value, dataset, "MAE" if "mae" in column else "RMSE")]
        assert row["column"] == column
        assert row["n"] == len(values)
        assert (row["mean"], row["std"]) == (pytest.approx(values.mean()), pytest.approx(values.std()))
    assert table.loc[("rank", "32", "PEMS08", "MAE"), "n"] == 2  # one seed failed


def test_the_base_point_is_shared_by_every_parameter(study: tuple[Path, dict]) -> None:
    report, _ = study
    trials = finished_trials(report)
    base = trials.loc[trials["cell"].str.startswith("base | PEMS08 |"), "test_mae"]
    table = points(report)
    at_base = table[table["is_base"] & (table["dataset"] == "PEMS08") & (table["measure"] == "MAE")]
    assert at_base[["parameter", "value"]].values.tolist() == [["num_experts", "4"], ["top_k", "2"], ["rank", "16"]]
    assert at_base["mean"].tolist() == pytest.approx([base.mean()] * 3) and at_base["n"].tolist() == [3, 3, 3]


def test_skipped_values_and_short_points_are_listed_in_the_index(study: tuple[Path, dict]) -> None:
    report, _ = study
    index = (report / "index.md").read_text()
    assert "## Values not run" in index and "| top_k | 5 | top_k 5 > num_experts 4 at the base |" in index
    assert "rank=32 on PEMS08: 2 of 3 seeds finished" in index
    assert not ((points(report)["parameter"] == "top_k") & (points(report)["value"] == "5")).any()


def test_published_points_come_with_their_gap_at_the_horizon_the_paper_quotes(study: tuple[Path, dict]) -> None:
    report, _ = study
    table = points(report).set_index(["parameter", "value", "dataset", "measure"])
    for (parameter, value, dataset), published in FIGURE3.items():
        row = table.loc[(parameter, value, dataset, "MAE")]
        assert row["published"] == published and row["published_table"] == "Figure 3"
        assert row["horizon"] == row["published_horizon"] == ("h12" if dataset == "METR-LA" else "overall")
        assert row["gap_pct"] == pytest.approx((row["mean"] - published) / published * 100)
    assert math.isnan(table.loc[("rank", "32", "METR-LA", "MAE"), "published"])  # A.5 quotes none
    assert table.xs("RMSE", level="measure")["published"].isna().all()


def test_with_another_horizon_published_points_are_attached_but_not_compared(tmp_path: Path) -> None:
    report = build_report(hephaestus_study(tmp_path / "c"), metric="overall")
    row = points(report).set_index(["parameter", "value", "dataset", "measure"]).loc[("top_k", "1", "METR-LA", "MAE")]
    assert (row["horizon"], row["published_horizon"], row["published"]) == ("overall", "h12", 3.42)
    assert math.isnan(row["gap_pct"])
    assert "the published points of METR-LA are at another horizon and not drawn" in (report / "index.md").read_text()


def test_the_study_figure_has_a_row_per_dataset_and_ticks_at_the_values(study: tuple[Path, dict], tmp_path: Path) -> None:
    _, figures = study
    assert {"sensitivity_mae", "sensitivity_rmse"} <= set(figures)
    axes = [ax for ax in figures["sensitivity_mae"].axes if ax.get_visible()]
    assert [ax.get_ylabel() for ax in axes if ax.get_ylabel()] == ["METR-LA\nTest MAE @h12 (mph)",
                                                                   "PEMS08\nTest MAE (veh/5 min)"]
    assert [ax.get_xlabel() for ax in axes[:3]] == ["num_experts (base 4)", "top_k (base 2)", "rank (base 16)"]
    top_k = axes[1]
    assert [t.get_text() for t in top_k.get_xticklabels()] == ["1", "2", "3", "4"] and top_k.get_xscale() == "linear"
    assert axes[2].get_xscale() == "log"  # rank 4..32
    base_lines = [line for line in top_k.get_lines() if line.get_linestyle() == "--"]
    assert [line.get_xdata()[0] for line in base_lines] == [2]
    published = [line for line in top_k.get_lines() if line.get_marker() == "s"]
    assert published[0].get_ydata().tolist() == [3.42, 3.36, 3.38, 3.40]
    with captured_figures() as lightst:
        build_report(lightst_study(tmp_path / "lightst"))
    lambda1, batch = lightst["sensitivity_mae"].axes[2], lightst["sensitivity_mae"].axes[1]
    assert lambda1.get_xscale() == "log" and [t.get_text() for t in lambda1.get_xticklabels()] == ["0.1", "1", "10", "100"]
    assert batch.get_xscale() == "log" and [t.get_text() for t in batch.get_xticklabels()] == ["8", "16", "32", "64", "128"]
    assert not lambda1.xaxis.get_minorticklocs().size  # no unlabelled clutter between the values


@pytest.mark.parametrize(("first", "second"), [("PEMS08", "PEMSD8"), ("PEMS04", "pems-04"), ("METR-LA", "metr_la"),
                                               ("PEMS-BAY", "PeMS-Bay"), ("PEMS03", "PeMSD3")])
def test_dataset_names_match_across_spellings(first: str, second: str) -> None:
    assert dataset_key(first) == dataset_key(second)


def test_different_datasets_stay_apart() -> None:
    assert len({dataset_key(d) for d in ("PEMS03", "PEMS04", "PEMS07", "PEMS08", "METR-LA", "PEMS-BAY")}) == 6


def test_the_ablation_table_sets_table_3_beside_each_variant_at_its_horizon(tmp_path: Path) -> None:
    report = build_report(table3_ablation(tmp_path / "c"))
    cells = pd.read_csv(report / "ablation.csv").set_index(["variant", "dataset", "measure"])
    full = cells.loc[("Full", "METR-LA", "MAE")]
    assert (full["column"], full["published"], full["published_horizon"]) == ("test_mae_h12", TABLE3_FULL_METR_LA_MAE, "h12")
    assert full["gap_pct"] == pytest.approx((full["mean"] - 3.36) / 3.36 * 100)
    assert cells.loc[("w/o PTA", "PEMS04", "RMSE"), ["column", "published"]].tolist() == ["test_rmse", 30.31]
    markdown = (report / "ablation.md").read_text()
    row = next(line for line in markdown.splitlines() if line.startswith("| Noisy-Routing Only: published (Table 3) |"))
    gap = (cells.loc[("Noisy-Routing Only", "METR-LA", "MAE"), "mean"] - 3.41) / 3.41 * 100
    assert row.split(" | ")[1] == f"3.41 ({gap:+.1f}%)"
    assert "METR-LA (horizon 12) MAE" in markdown and "PEMS04 (average) MAE" in markdown
    assert r"\multicolumn{3}{c}{METR-LA (horizon 12)}" in (report / "ablation.tex").read_text()
    trials = trials_frame(read_records(report.parent)[0])
    mean = trials.query("variant == 'full' and dataset == 'METR-LA'")["test_mae"].mean()
    assert full["mean"] == pytest.approx(mean * H12_OVER_AVERAGE)


def test_at_another_horizon_the_table_shows_the_published_number_without_a_gap(tmp_path: Path) -> None:
    report = build_report(table3_ablation(tmp_path / "c"), metric="overall")
    cells = pd.read_csv(report / "ablation.csv").set_index(["variant", "dataset", "measure"])
    assert math.isnan(cells.loc[("Full", "METR-LA", "MAE"), "gap_pct"])
    assert not math.isnan(cells.loc[("Full", "PEMS04", "MAE"), "gap_pct"])
    markdown = (report / "ablation.md").read_text()
    assert "| Full: published (Table 3) | 3.36 (at horizon 12) |" in markdown
    assert "METR-LA: the published numbers are at horizon 12 (12 steps ahead), the reproduced ones shown at average " \
           "over all forecast steps: not compared" in markdown


def lightst_ablation(folder: Path, datasets: tuple[str, ...] = ("PEMS08",)) -> Path:
    variants = {"LightST": ("full", {}), "w/o E-KD": ("wo_e_kd", {}), "Teacher (GCN+TCN)": ("teacher", {})}
    rows = [trial_row(f"{name}_{d}_{seed}", d, 15.0 + k, model="lightst", variant=name, variant_display=display, seed=seed)
            for d in datasets for k, (display, (name, _)) in enumerate(variants.items()) for seed in range(2)]
    return write_campaign(folder, ablation_manifest(list(datasets), [0, 1], "lightst", variants, reference="LightST"), rows)


def test_lightst_table_1_matches_pemsd_names_and_the_registry_name_of_a_renamed_variant(tmp_path: Path) -> None:
    report = build_report(lightst_ablation(tmp_path / "c"))
    cells = pd.read_csv(report / "ablation.csv").set_index(["variant", "dataset", "measure"])
    assert cells.loc[("LightST", "PEMS08", "MAE"), ["published", "published_table"]].tolist() == [15.43, "Table 1"]
    assert cells.loc[("w/o E-KD", "PEMS08", "MAE"), "published_table"] != "Table 1"
    assert "| LightST: published (Table 1) | 15.43 (-2.8%) | 24.52" in (report / "ablation.md").read_text()


def write_references(path: Path, rows: list[dict]) -> Path:
    pd.DataFrame([{c: "" for c in REFERENCE_COLUMNS} | row for row in rows]).to_csv(path, index=False)
    return path


def test_references_from_the_command_line_match_display_names_and_win(tmp_path: Path) -> None:
    extra = write_references(tmp_path / "mine.csv", [
        {"model": "LightST", "table": "my Table 9", "dataset": "PeMSD8", "variant": "w/o E-KD", "metric": "mae",
         "horizon": "overall", "number": "16.5", "source": "a reading of Figure 3"},
        {"model": "lightst", "table": "my Table 9", "dataset": "PEMS08", "variant": "full", "metric": "mae",
         "horizon": "overall", "number": "15.0", "source": "a rerun"},
    ])
    folder = lightst_ablation(tmp_path / "c")
    assert run_command(main, [str(folder), "--references", str(extra)]) == 0
    cells = pd.read_csv(folder / "report" / "ablation.csv").set_index(["variant", "dataset", "measure"])
    assert cells.loc[("w/o E-KD", "PEMS08", "MAE"), ["published", "published_table"]].tolist() == [16.5, "my Table 9"]
    assert cells.loc[("LightST", "PEMS08", "MAE"), "published"] == 15.0  # the given file wins over Table 1
    assert cells.loc[("LightST", "PEMS08", "RMSE"), "published"] == 24.52  # where it says nothing, Table 1 stays


@pytest.mark.parametrize("problem", ["missing column", "not a number", "unknown horizon", "no such file"])
def test_a_bad_reference_file_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture, problem: str) -> None:
    row = {"model": "lightst", "table": "T", "dataset": "PEMS08", "variant": "full", "metric": "mae",
           "horizon": "overall", "number": "15", "source": "s"}
    path = tmp_path / "refs.csv"
    if problem == "missing column":
        write_references(path, [row]).write_text(path.read_text().replace("source", "origin"))
    elif problem != "no such file":
        write_references(path, [row | ({"number": "n/a"} if problem == "not a number" else {"horizon": "h24"})])
    assert run_command(main, [str(lightst_ablation(tmp_path / "c")), "--references", str(path)]) == 2
    message = capsys.readouterr().err
    assert message.startswith("error: ") and message.count("\n") == 1 and str(path) in message


def test_the_shipped_references_hold_every_table_the_specs_quote() -> None:
    hephaestus = load_references("hephaestus")
    counts = hephaestus.groupby("table").size().to_dict()
    assert counts == {"Table 3": 6 * 4 * 3, "Figure 3": 3 * 2 + 4 * 2 + 4 + 3, "Table 4": 6}
    assert hephaestus.query("table == 'Table 3' and variant == 'wo_ams_moe' and dataset == 'PEMS-BAY' and metric == 'rmse'")[
        "number"].tolist() == [4.57]
    lightst = load_references("lightst")
    assert lightst.groupby("horizon").size().to_dict() == {"overall": 15}
    assert load_references("stid").empty


def test_the_efficiency_table_lists_table_4_under_the_campaign_rows(tmp_path: Path) -> None:
    report = build_report(table3_ablation(tmp_path / "c"))
    efficiency = pd.read_csv(report / "efficiency.csv")
    published = efficiency[efficiency["row"] == "published: full (Table 4)"]
    assert published["dataset"].tolist() == ["PEMS04"] and np.isnan(published["n"]).all()
    costs = published[["parameters", "train_ms_per_iter", "infer_ms", "peak_mem_mb"]]
    assert costs.values.tolist() == [[716000, 98, 31, 5475]]
    pems04 = efficiency.index[efficiency["dataset"] == "PEMS04"]
    assert published.index[0] == pems04.max()  # after the dataset's own rows
    assert "batch size 16" in (report / "efficiency.md").read_text()
