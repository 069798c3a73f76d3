"""Search on the driver: one Optuna study per dataset, served by one Ray Tune searcher, and an
ASHA per dataset, so that a sweep over several datasets runs as one Tuner (a cluster never idles
while one dataset's last trials finish) and no dataset's trials are pruned by another's scale of
error. The studies live in the campaign's Optuna journal, which optuna-dashboard follows live.
"""

from __future__ import annotations

import math
import pickle
from pathlib import Path
from typing import Any

import optuna
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, TrialScheduler
from ray.tune.search import Searcher
from ray.tune.search.optuna import OptunaSearch

from harness.ledger import DATASET_KEY
from harness.records import TrialRecord, tune_metrics
from harness.space import DefineByRun, make_sampler
from harness.spec import SweepSpec

JOURNAL_FILE = "optuna_journal.log"
TUNE_ID_ATTR = "tune_trial_id"  # a journal trial's user attribute: the id of its Tune trial and of its record


class PickledState:
    """Tune's save/restore of a searcher or scheduler on the driver: its whole state, pickled
    into the experiment folder (the campaign folder; storage must be trusted, see README)."""

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as handle:
            pickle.dump(self.__dict__.copy(), handle)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as handle:
            self.__dict__.update(pickle.load(handle))


class RecordedOptunaSearch(OptunaSearch):
    """OptunaSearch that tells its study what the records say: a trial the scheduler stopped is
    PRUNED (not COMPLETE with an early epoch's value), a trial that failed or diverged FAILs,
    and every trial carries its Tune id and status as user attributes. A trial the study
    already holds as finished (it ended after the searcher's last saved state, before a crash)
    is left as it is."""

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if trial_id in self._ot_trials and not result.get("final"):
            try:
                super().on_trial_result(trial_id, result)
            except optuna.exceptions.UpdateFinishedTrialError:
                pass

    def suggest(self, trial_id: str) -> dict | None:
        config = super().suggest(trial_id)
        if trial_id in self._ot_trials:  # so that the journal's trial can be matched with its record later
            self._ot_trials[trial_id].set_user_attr(TUNE_ID_ATTR, trial_id)
        return config

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        ot_trial = self._ot_trials.get(trial_id)
        if ot_trial is None or trial_id in self._completed_trials:
            return  # a trial restored after its searcher state was saved: `reconcile_studies` tells it
        metrics = self._metric if isinstance(self._metric, list) else [self._metric]
        tell_outcome(self._ot_study, ot_trial, result or {}, error, metrics)
        self._completed_trials.add(trial_id)


def tell_outcome(study: optuna.Study, ot_trial: optuna.Trial, result: dict, error: bool, metrics: list[str]) -> None:
    """Tell a study how its trial ended: COMPLETE with the objective values of a final "ok"
    result, PRUNED when the scheduler stopped it, FAIL otherwise; its status as a user attribute
    (its Tune id it got when suggested)."""
    status = result.get("status") if result.get("final") else ("failed" if error else "pruned")
    values = [result.get(m) for m in metrics]
    finished = status == "ok" and all(v is not None and math.isfinite(v) for v in values)
    try:
        ot_trial.set_user_attr("status", status if finished or status != "ok" else "failed")
        if finished:
            study.tell(ot_trial, values if len(values) > 1 else values[0])
        else:
            study.tell(ot_trial, state=optuna.trial.TrialState.PRUNED if status == "pruned" else optuna.trial.TrialState.FAIL)
    except optuna.exceptions.UpdateFinishedTrialError:
        pass


class DatasetStudies(PickledState, Searcher):
    """Serves one Optuna study per dataset from one Tuner: suggestions go round the datasets
    that still have budget; results go back to the study their trial came from."""

    def __init__(self, studies: dict[str, RecordedOptunaSearch], budgets: dict[str, int], metric: str | list[str], mode: str | list[str]):
        super().__init__(metric=metric, mode=mode)
        self.studies = studies
        self.budgets = dict(budgets)
        self.owner: dict[str, str] = {}
        self._turn = 0

    def suggest(self, trial_id: str) -> dict | None:
        open_datasets = [d for d, n in self.budgets.items() if n > 0]
        if not open_datasets:
            return Searcher.FINISHED
        dataset = open_datasets[self._turn % len(open_datasets)]
        self._turn += 1
        config = self.studies[dataset].suggest(trial_id)
        if config is None or config == Searcher.FINISHED:
            return config
        self.budgets[dataset] -= 1
        self.owner[trial_id] = dataset
        return {**config, DATASET_KEY: dataset}

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if trial_id in self.owner:
            self.studies[self.owner[trial_id]].on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if trial_id in self.owner:
            self.studies[self.owner[trial_id]].on_trial_complete(trial_id, result, error)


def journal_storage(campaign_dir: Path) -> optuna.storages.JournalStorage:
    """The campaign's live Optuna journal (`optuna-dashboard <campaign>/optuna_journal.log`)."""
    backend = optuna.storages.journal.JournalFileBackend(str(Path(campaign_dir) / JOURNAL_FILE))
    return optuna.storages.JournalStorage(backend)


def study_name(spec: SweepSpec, dataset: str) -> str:
    return f"{spec.name}/{dataset}"


def dataset_studies(spec: SweepSpec, campaign_dir: Path, budgets: dict[str, int], retry: dict[str, list[dict[str, Any]]]) -> DatasetStudies:
    """The searcher of a sweep: each dataset's study loaded from (or created in) the journal,
    with the sampled values of unfinished trials queued first."""
    metrics = [o.metric for o in spec.objectives]
    modes = [o.mode for o in spec.objectives]
    metric, mode = (metrics[0], modes[0]) if len(metrics) == 1 else (metrics, modes)
    storage = journal_storage(campaign_dir)
    studies = {}
    for dataset, budget in budgets.items():
        if budget <= 0:
            continue
        studies[dataset] = RecordedOptunaSearch(
            space=DefineByRun(spec.space), metric=metric, mode=mode, sampler=make_sampler(spec),
            study_name=study_name(spec, dataset), storage=storage, points_to_evaluate=retry.get(dataset) or None,
        )
    return DatasetStudies(studies, {d: n for d, n in budgets.items() if n > 0}, metric, mode)


def reconcile_studies(spec: SweepSpec, campaign_dir: Path, records: list[TrialRecord], finished: bool) -> None:
    """Make the journal agree with the records. A trial the journal still holds as RUNNING but
    whose record is final (it ended after the searcher's last saved state, and the driver died
    before telling the study) is told its recorded outcome. Once the campaign is `finished`, the
    RUNNING trials left (a dead driver's, re-run under another id) are marked FAIL."""
    storage = journal_storage(campaign_dir)
    final = {r.trial_id: r for r in records if r.final}
    metrics = [o.metric for o in spec.objectives]
    for dataset in spec.datasets:
        try:
            study = optuna.load_study(study_name=study_name(spec, dataset), storage=storage)
        except KeyError:
            continue
        for frozen in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
            record = final.get(frozen.user_attrs.get(TUNE_ID_ATTR, ""))
            if record is not None:
                tell_outcome(study, optuna.Trial(study, frozen._trial_id), tune_metrics(record), False, metrics)
            elif finished:
                study.tell(frozen.number, state=optuna.trial.TrialState.FAIL)


class PerDatasetScheduler(PickledState, FIFOScheduler):
    """ASHA per dataset: trials are only compared with trials of their own dataset."""

    def __init__(self, grace_period: int, reduction_factor: float, metric: str, mode: str):
        super().__init__()
        self._supports_buffered_results = False  # ASHA decides on every epoch
        self.options = {"time_attr": "training_iteration", "metric": metric, "mode": mode, "grace_period": grace_period,
                        "reduction_factor": reduction_factor, "max_t": 100_000}  # max_t: max_epochs is the limit
        self.by_dataset: dict[str, ASHAScheduler] = {}

    def _for(self, trial) -> ASHAScheduler:
        dataset = trial.config.get(DATASET_KEY, "")
        if dataset not in self.by_dataset:
            self.by_dataset[dataset] = ASHAScheduler(**self.options)
        return self.by_dataset[dataset]

    def on_trial_add(self, tune_controller, trial) -> None:
        self._for(trial).on_trial_add(tune_controller, trial)

    def on_trial_result(self, tune_controller, trial, result: dict) -> str:
        if result.get("final") or result.get("last"):
            return TrialScheduler.CONTINUE  # its training is over: a trial is never pruned after its last epoch
        return self._for(trial).on_trial_result(tune_controller, trial, result)

    def on_trial_complete(self, tune_controller, trial, result: dict) -> None:
        self._for(trial).on_trial_complete(tune_controller, trial, result)

    def on_trial_remove(self, tune_controller, trial) -> None:
        self._for(trial).on_trial_remove(tune_controller, trial)

    def debug_string(self) -> str:
        return f"ASHA per dataset ({', '.join(self.by_dataset)})"
