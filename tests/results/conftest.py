"""Fixtures for the store's tests: a fresh home per test and a way to run other Pythons on it."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import covalent_nb as ct
from covalent_nb.results import store as store_module

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def home(tmp_path, covalent_nb_home):
    """A fresh, not yet existing store home, active for this test (and its subprocesses)."""
    path = tmp_path / "home"
    ct.set_config(home=str(path), store="sqlite")
    yield path
    store_module._close_durable_stores()
    ct.set_config(home=str(covalent_nb_home), store="sqlite")


def python_env(home: Path) -> dict:
    env = dict(os.environ, COVALENT_NB_HOME=str(home))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    return env


@pytest.fixture
def run_python(home):
    """Run a script in a fresh interpreter on the test's home; return its stdout."""

    def run(code: str, *args: str, timeout: float = 120) -> str:
        completed = subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], env=python_env(home),
                                   capture_output=True, text=True, timeout=timeout, cwd=str(REPO))
        assert completed.returncode == 0, f"subprocess failed:\n{completed.stderr}"
        return completed.stdout

    return run


@pytest.fixture
def spawn_python(home):
    """Start a script in a fresh interpreter on the test's home; return the Popen (killed at teardown)."""
    started: list = []

    def spawn(code: str, *args: str) -> subprocess.Popen:
        process = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *args], env=python_env(home),
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=str(REPO))
        started.append(process)
        return process

    yield spawn
    for process in started:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=30)
