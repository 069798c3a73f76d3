"""Running the harness's commands as a user would: a subprocess, in a scratch folder."""

import os
import shutil
import subprocess
import sys
import tempfile
import time
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


class PrivateRayCluster:
    """Ray nodes started with `ray start` for one test, torn down by their own temporary folder
    (`ray stop` would also stop every other Ray of the machine: a user's campaign, another test
    run). Token authentication is off on every process of it (`ray start --head` turns it on in
    Ray >= 2.5x), so pass `env` to the drivers that join it too."""

    def __init__(self) -> None:
        self.temp_dir = tempfile.mkdtemp(prefix="rt", dir="/tmp")  # short: Ray's socket paths are limited to 107 bytes
        self.env = command_env(RAY_AUTH_MODE="disabled")

    def start(self, *args: str) -> subprocess.CompletedProcess:
        """`ray start ARGS` for one more node of this cluster."""
        return subprocess.run(["ray", "start", f"--temp-dir={self.temp_dir}", *args], env=self.env, capture_output=True, text=True)

    def stop(self) -> None:
        """Kill this cluster's processes (and only those) and remove its folder."""
        subprocess.run(["pkill", "-9", "-f", self.temp_dir], capture_output=True)
        deadline = time.monotonic() + 30
        while subprocess.run(["pgrep", "-f", self.temp_dir], capture_output=True).returncode == 0 and time.monotonic() < deadline:
            time.sleep(0.2)
        shutil.rmtree(self.temp_dir, ignore_errors=True)
