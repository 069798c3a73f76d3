"""YAML as users write it: PyYAML's safe loader, with YAML 1.2's numbers.

PyYAML follows YAML 1.1, where `1e-3` (no dot) is a string, so `lr: 1e-3` or `--set lr=1e-3`
would be refused as "expected float". This loader reads such numbers as floats; it is otherwise
`yaml.SafeLoader` (it never constructs Python objects).
"""

from __future__ import annotations

import re
from typing import Any

import yaml


class NumbersLoader(yaml.SafeLoader):
    """SafeLoader that also reads 1e-3, 5E+2 and .5e1 as floats."""


NumbersLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def load_yaml(text: str) -> Any:
    """Parse YAML text safely (no Python objects), reading exponent numbers as floats."""
    loader = NumbersLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()
