"""Where a campaign's numbers came from: library versions, the git commit, and hashes of the code
that computes a trial's result (the result cache's and the teacher cache's generations)."""

from __future__ import annotations

import hashlib
import platform
import subprocess
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]

# The code that decides a trial's numbers: a change here starts a new result-cache generation.
# Reports, the command line, progress output and the Ray plumbing are left out on purpose.
RESULT_CODE = ("models", "harness/data", "harness/loop.py", "harness/metrics.py", "harness/plan.py", "harness/experiment.py")
# What every model's numbers depend on besides its own package (a teacher's cache key uses these).
SHARED_MODEL_CODE = ("models/base.py", "models/blocks.py", "models/config.py", "harness/loop.py", "harness/metrics.py")
LIBRARIES = ("torch", "ray", "optuna", "numpy", "pandas", "scipy")


def _python_files(paths: Iterable[str | Path]) -> list[Path]:
    files: set[Path] = set()
    for entry in paths:
        path = Path(entry) if Path(entry).is_absolute() else PROJECT_ROOT / entry
        files.update(path.rglob("*.py") if path.is_dir() else [path] if path.is_file() else [])
    return sorted(files)


def code_hash(paths: Iterable[str | Path]) -> str:
    """sha256 (16 hex digits) over the names and contents of the Python files under `paths`."""
    digest = hashlib.sha256()
    for path in _python_files(paths):
        name = path.relative_to(PROJECT_ROOT) if path.is_relative_to(PROJECT_ROOT) else path.name
        digest.update(str(name).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def result_code_version() -> str:
    """The generation of the result cache: a hash of RESULT_CODE."""
    return code_hash(RESULT_CODE)


def model_code_version(module_file: str | Path) -> str:
    """A hash of one model's own code (its package, or its module) and SHARED_MODEL_CODE."""
    module_file = Path(module_file)
    own = module_file if module_file.parent.name == "models" else module_file.parent
    return code_hash([own, *SHARED_MODEL_CODE])


def git_sha() -> str | None:
    """The checkout's commit (with '+dirty' for local changes), or None outside git."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=PROJECT_ROOT, capture_output=True, text=True).stdout.strip()
        return sha + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return None


def versions() -> dict[str, str]:
    """Versions of Python and of the libraries that decide the numbers."""
    found = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def project_version() -> str:
    """This project's own version (from its installed metadata)."""
    try:
        return metadata.version("st-harness")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"
