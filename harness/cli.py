"""What every command-line entry point shares: `key=value` parsing and one-line errors.

Bad input never ends in a traceback: a `UsageError`, `ConfigError` or `DataError` raised
anywhere below a command is printed as one line naming the file or flag and the field, and
the command exits with code 2.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import yaml

from harness.data import DataError
from harness.errors import UsageError
from harness.errors import run_command as run_errors_command
from harness.yamlfile import load_yaml
from models.base import ConfigError


def parse_assignments(items: Sequence[str], flag: str) -> dict[str, Any]:
    """Turn ["lr=0.001", "patch_sizes=[1,3]"] into {"lr": 0.001, "patch_sizes": [1, 3]}.

    Values are read as YAML scalars/lists (numbers, 1e-3 included, booleans, null, lists), and
    kept as plain strings when they are not valid YAML.
    """
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"{flag} {item!r}: expected key=value")
        try:
            out[key] = load_yaml(raw) if raw.strip() else raw
        except yaml.YAMLError:
            out[key] = raw
    return out


def run_command(main: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None = None) -> int:
    """Run a command's main(), turning bad input (a UsageError, ConfigError or DataError) into
    a one-line error and exit code 2."""
    return run_errors_command(main, argv, (UsageError, ConfigError, DataError))
