"""Starting and stopping the Dask processes the tests use (shared by conftest and the TLS tests)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import covalent_nb as ct

REPO = Path(ct.__file__).resolve().parents[1]


def start_module(args: list, env: dict) -> subprocess.Popen:
    """``python -m ARGS`` in the repository, its stderr kept for error messages."""
    return subprocess.Popen([sys.executable, "-m", *args], env=env, cwd=str(REPO),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def stop_process(process: subprocess.Popen) -> None:
    """Terminate *process* (killed if it lingers)."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
