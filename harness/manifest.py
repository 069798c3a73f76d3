"""manifest.json: what a campaign folder says about its campaign (the spec and its identity,
versions, code, dataset and model facts the report needs, the Tuner runs, times and state)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from harness.data import PreparedData
from harness.errors import UsageError
from harness.provenance import git_sha, result_code_version, versions
from harness.records import TrialRecord, now, write_json
from harness.spec import Campaign

MANIFEST = "manifest.json"


def read_manifest(campaign_dir: Path) -> dict[str, Any] | None:
    """The campaign's manifest, None when there is none; UsageError when it is unreadable."""
    path = campaign_dir / MANIFEST
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise UsageError(f"{path}: unreadable ({error}); move the folder aside or use another name") from None
    if not isinstance(manifest, dict):
        raise UsageError(f"{path}: not a manifest (expected a JSON object)")
    return manifest


def dataset_facts(data: PreparedData) -> dict[str, Any]:
    """What the report needs to know of a dataset without reading it."""
    meta = data.meta()
    return {"fingerprint": data.fingerprint, "nodes": meta.num_nodes, "steps": int(data.raw.shape[0]), "samples": data.num_samples(),
            "signal": data.info.signal, "interval_minutes": data.info.interval_minutes, "steps_per_day": meta.steps_per_day}


def model_facts(model: str) -> dict[str, Any]:
    """What the report needs to know of the model: its efficiency reference."""
    from models.registry import get_model

    entry = get_model(model)
    return {"speed_reference": entry.speed_reference, "variants": {v.name: v.display for v in entry.variants}}


def new_manifest(spec: Campaign, previous: dict[str, Any] | None, datasets: dict[str, PreparedData], address: str,
                 resumed: bool, command: str) -> dict[str, Any]:
    """The manifest of this run of the campaign (a resumed campaign keeps its start and runs)."""
    previous = previous or {}
    return {
        "campaign": spec.name,
        "kind": spec.kind,
        "status": "running",
        "spec": dict(spec.raw),
        "identity": spec.identity(),
        "spec_file": str(Path(spec.source).resolve()),
        "planned_trials": spec.total_trials,
        "skipped": [dict(s) for s in getattr(spec, "skipped", ())],
        "versions": versions(),
        "git_sha": git_sha(),
        "code_version": result_code_version(),
        "datasets": {name: dataset_facts(d) for name, d in datasets.items()},
        "model": model_facts(spec.model),
        "ray": {"address": address},
        "runs": list(previous.get("runs", [])),
        "started": previous.get("started", now()),
        "resumed": [*previous.get("resumed", []), now()] if resumed else [],
        "finished": None,
        "command": command,
    }


def finish_manifest(path: Path, manifest: dict[str, Any], status: str, records: list[TrialRecord]) -> None:
    """Stamp the manifest with the campaign's state and its trials' statuses."""
    manifest.update(status=status, finished=now() if status == "finished" else None,
                    trials=dict(Counter(r.status for r in records)))
    write_json(path, manifest)
