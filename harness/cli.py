"""What every command-line entry point shares: `key=value` parsing and one-line errors.

Bad input never ends in a traceback: a `UsageError`, `ConfigError` or `DataError` raised
anywhere below a command is printed as one line naming the file or flag and the field, and
the command exits with code 2.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

import yaml

from harness.data import DataError
from models.base import ConfigError

EXIT_BAD_INPUT = 2


class UsageError(ValueError):
    """Bad input that is not a model setting or a data problem (flags, spec files, ...)."""


def parse_assignments(items: Sequence[str], flag: str) -> dict[str, Any]:
    """Turn ["lr=0.001", "patch_sizes=[1,3]"] into {"lr": 0.001, "patch_sizes": [1, 3]}.

    Values are read as YAML scalars/lists (safe_load: numbers, booleans, null, lists), and
    kept as plain strings when they are not valid YAML.
    """
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"{flag} {item!r}: expected key=value")
        try:
            out[key] = yaml.safe_load(raw) if raw.strip() else raw
        except yaml.YAMLError:
            out[key] = raw
    return out


def run_command(main: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None = None) -> int:
    """Run a command's main(), turning bad input into a one-line error and exit code 2."""
    try:
        return main(argv)
    except (UsageError, ConfigError, DataError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
