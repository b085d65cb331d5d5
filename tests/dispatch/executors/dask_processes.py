"""Starting and stopping the Dask processes the tests use (shared by conftest and the TLS tests)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

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


@contextlib.contextmanager
def scheduler_and_worker_processes(directory: Path, args: tuple = (), scheduler_args: tuple = (),
                                   env: dict | None = None) -> Iterator[tuple]:
    """A scheduler and one worker (no nanny) started as processes, as a user starts them.

    Yields ``(address, [scheduler, worker])``; *args* go to both (TLS files, say),
    *scheduler_args* to the scheduler alone, *env* over this process's environment.
    """
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
               **(env or {}))
    scheduler_file = directory / "scheduler.json"
    processes = [start_module(["distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0",
                               *scheduler_args, "--no-dashboard", "--scheduler-file", str(scheduler_file),
                               *args], env)]
    try:
        deadline = time.monotonic() + 60
        while not scheduler_file.exists():
            assert processes[0].poll() is None, processes[0].stderr.read().decode()
            assert time.monotonic() < deadline, "the scheduler did not start"
            time.sleep(0.05)
        processes.append(start_module(["distributed.cli.dask_worker", "--scheduler-file", str(scheduler_file),
                                       "--host", "127.0.0.1", "--nthreads", "1", "--no-nanny",
                                       "--no-dashboard", *args], env))
        yield json.loads(scheduler_file.read_text())["address"], processes
    finally:
        for process in reversed(processes):
            stop_process(process)
