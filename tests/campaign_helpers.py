"""Running the harness's commands as a user would: a subprocess, in a scratch folder."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = Path(__file__).resolve().parent / "plugins"


def command_env(**extra: str) -> dict[str, str]:
    """The environment of a command: the project and the test plugins importable everywhere."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(PLUGINS), env.get("PYTHONPATH", "")])
    env.pop("RAY_ADDRESS", None)
    env.update(extra)
    return env


def run_command(module: str, *args: str, cwd: Path, timeout: float = 300, **env: str) -> subprocess.CompletedProcess:
    """`python -m module args...` in `cwd`; returns the finished process (never raises on exit code)."""
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        env=command_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
