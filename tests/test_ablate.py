"""`python -m harness.ablate`: smoke campaigns of both shipped files, the result cache, LightST
teachers trained once per (dataset, seed), and bad campaign files."""

import json

import pandas as pd
import pytest

from campaign_helpers import ROOT, run_command
from harness.ablate import main as ablate_main
from harness.cli import run_command as run_in_process

pytestmark = pytest.mark.slow


def smoke(name: str, storage, *extra: str):
    done = run_command("harness.ablate", str(ROOT / "ablations" / f"{name}.yaml"), "--smoke", "--storage", str(storage), *extra, cwd=storage, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:] + done.stdout[-3000:]
    return done


@pytest.fixture(scope="module")
def hephaestus_campaign(tmp_path_factory):
    storage = tmp_path_factory.mktemp("hephaestus")
    first = smoke("hephaestus", storage)
    second = smoke("hephaestus", storage, "--fresh")  # all from the cache, artifacts included
    return storage / "hephaestus-ablation-smoke", first, second


def test_hephaestus_smoke_campaign_has_one_record_per_variant_dataset_and_seed(hephaestus_campaign):
    folder, first, _ = hephaestus_campaign
    trials = pd.read_csv(folder / "trials.csv")
    assert len(trials) == 7 * 1 * 2
    cells = set(zip(trials["variant_display"], trials["dataset"], trials["seed"]))
    expected = {"Full", "w/o AMS-MoE", "w/o PTA", "w/o HSA", "Fixed-Scale MoE", "Noisy-Routing Only", "+ gap-aware RevIN"}
    assert {c[0] for c in cells} == expected and len(cells) == 14
    assert (trials["status"] == "ok").all()
    variants = dict(zip(trials["variant_display"], trials["variant"]))
    assert variants["w/o PTA"] == "wo_pta" and variants["Full"] == "full"


def test_second_run_of_the_same_campaign_is_served_entirely_from_the_cache(hephaestus_campaign):
    folder, first, second = hephaestus_campaign
    trials = pd.read_csv(folder / "trials.csv")
    assert trials["cached"].all()
    assert "14 from the cache" in second.stdout


def test_cached_records_equal_the_original_ones(hephaestus_campaign):
    folder, _, _ = hephaestus_campaign
    trials = pd.read_csv(folder / "trials.csv")
    cache = [json.loads(p.read_text()) for p in (folder.parent / "cache").glob("*/record.json")]
    by_cell = {(c["variant_display"], c["seed"]): c["test"]["overall"]["mae"] for c in cache}
    for row in trials.itertuples():
        assert row.test_mae == pytest.approx(by_cell[(row.variant_display, row.seed)])


def test_campaign_report_of_cached_trials_has_the_ablation_table_and_routing_figure(hephaestus_campaign):
    folder, first, second = hephaestus_campaign
    report = folder / "report"
    assert (report / "index.md").is_file()
    table = (report / "ablation.md").read_text()
    for display in ("Full", "w/o AMS-MoE", "Noisy-Routing Only"):
        assert display in table
    assert list(report.glob("routing_*.png"))
    assert "report:" in first.stdout and "report:" in second.stdout


def test_no_cache_flag_runs_every_trial_again(tmp_path):
    spec = tmp_path / "tiny.yaml"
    spec.write_text(
        "name: tiny\nmodel: stid\ndatasets: [synthetic]\ndata_options: {nodes: 5, days: 4}\nseeds: [0]\n"
        "base: {max_epochs: 1, max_batches_per_epoch: 3}\nvariants: {Full: {}}\n"
    )
    cached = []
    for flags in ([], ["--fresh", "--no-cache"]):  # (that a second run is served from the cache: see above)
        done = run_command("harness.ablate", str(spec), "--storage", str(tmp_path), "--no-report", *flags, cwd=tmp_path)
        assert done.returncode == 0, done.stderr[-2000:]
        cached += pd.read_csv(tmp_path / "tiny" / "trials.csv")["cached"].tolist()
    assert cached == [False, False]
    assert len(list(tmp_path.glob("tiny.replaced-*"))) == 1  # --fresh keeps the earlier folder


def test_lightst_ablation_on_a_sweeps_best_yaml_ablates_every_variant_and_trains_one_teacher_per_seed(tmp_path):
    # A sweep's best.yaml with searched, non-zero distillation weights: no variant may train the
    # full model under its own name (the variants' switches win over the base).
    (tmp_path / "best.yaml").write_text("model: lightst\nsmoke: true\nconfig: {lambda1: 4.2, lambda2: 0.37}\n")
    spec = tmp_path / "lightst.yaml"
    spec.write_text((ROOT / "ablations" / "lightst.yaml").read_text().replace("base_from: null", f"base_from: {tmp_path / 'best.yaml'}"))
    done = run_command("harness.ablate", str(spec), "--smoke", "--storage", str(tmp_path), "--no-report", cwd=tmp_path, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:] + done.stdout[-3000:]
    trials = pd.read_csv(tmp_path / "lightst-ablation-smoke" / "trials.csv")
    assert len(trials) == 7 * 2 and (trials["status"] == "ok").all()
    assert (trials["config.lambda1"] == 4.2).all() and not trials["cached"].any()
    switches = ["config.prediction_kd", "config.spatial_kd", "config.temporal_kd", "config.predictor"]
    seed0 = trials[trials["seed"] == 0].set_index("variant")
    assert len(seed0[switches].drop_duplicates()) == 7, seed0[switches]  # every variant resolves differently
    assert seed0["test_mae"].nunique() == 7, seed0["test_mae"]  # and gives its own result
    assert not seed0.loc["wo_p_kd", "config.prediction_kd"] and not seed0.loc["student_only", ["config.spatial_kd", "config.temporal_kd"]].any()
    needing = trials[trials["variant"] != "student_only"]
    assert (trials.loc[trials["variant"] == "student_only", "teacher"] == "none").all()
    assert (needing.groupby("seed")["teacher"].apply(lambda s: (s == "trained").sum()) == 1).all()
    assert (needing["teacher"].isin(["trained", "reused"])).all()
    assert len(list((tmp_path / "teachers").glob("*/teacher.pt"))) == 2  # one per seed


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda s: s.replace("w/o PTA: {variant: wo_pta}", "w/o PTA: {wings: 2}"), "variants.w/o PTA.wings"),
        (lambda s: s.replace("reference: Full", "reference: Best"), "reference: 'Best' is not among the variants"),
        (lambda s: s.replace("seeds: [0, 1, 2]", "seeds: [0, 1.5]"), "seeds[1]: must be an integer"),
        (lambda s: s.replace("base_from: null", "base_from: missing/best.yaml"), "base_from: no such file"),
    ],
)
def test_bad_campaign_file_exits_2_before_anything_starts(tmp_path, capsys, edit, message):
    spec = tmp_path / "bad.yaml"
    spec.write_text(edit((ROOT / "ablations" / "hephaestus.yaml").read_text()))
    assert run_in_process(ablate_main, [str(spec), "--storage", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()
