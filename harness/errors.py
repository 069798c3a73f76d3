"""The exceptions of bad input that every command turns into one line and exit code 2.

They live in a module of their own, free of torch and Ray, so that the report (which imports
neither) and the command line share them. Every one of them survives pickling intact, because a
Ray trial raises them in a worker and the driver unpickles them.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable, Sequence

EXIT_BAD_INPUT = 2


class UsageError(ValueError):
    """Bad input that is not a model setting or a data problem (flags, campaign files, folders)."""


class SpecError(UsageError):
    """A campaign file problem: '<file>: <field>: <what is wrong>'."""

    def __init__(self, source: object, where: str, message: str):
        super().__init__(f"{source}: {where}: {message}" if where else f"{source}: {message}")
        self.source, self.where, self.message = str(source), where, message

    def __reduce__(self):
        return type(self), (self.source, self.where, self.message)


def one_line_warning(message, category, filename, lineno, line=None) -> str:
    """Warnings as commands show them: 'warning: <message>', without the source line."""
    return f"warning: {message}\n"


def run_command(main: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None = None,
                bad_input: tuple[type[Exception], ...] = (UsageError,)) -> int:
    """Run a command's main(), turning bad input into a one-line error and exit code 2, and
    warnings into one line each."""
    warnings.formatwarning = one_line_warning
    try:
        return main(argv)
    except bad_input as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
