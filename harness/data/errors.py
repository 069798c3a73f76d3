"""The one exception every data problem raises."""

from __future__ import annotations


class DataError(Exception):
    """A missing, malformed or inconsistent data file or setting.

    The message is one line that names the file (or option) and the field at fault, e.g.
    "/d/PEMS04/PEMS04.npz: key 'data' has rank 2, expected (T, N, C)".
    """
