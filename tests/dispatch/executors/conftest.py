"""Fixtures the Dask tests share: a scheduler and a worker started as processes of their own."""

from __future__ import annotations

import json
import os
import time
from types import SimpleNamespace

import pytest

from dask_processes import REPO, start_module, stop_process


@pytest.fixture
def scheduler_and_worker(tmp_path):
    """A plain-TCP scheduler and one worker (no nanny), as a user starts them: ``.address``, ``.worker``."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    scheduler_file = tmp_path / "scheduler.json"
    processes = [start_module(["distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0",
                               "--no-dashboard", "--scheduler-file", str(scheduler_file)], env)]
    try:
        deadline = time.monotonic() + 60
        while not scheduler_file.exists():
            assert processes[0].poll() is None, processes[0].stderr.read().decode()
            assert time.monotonic() < deadline, "the scheduler did not start"
            time.sleep(0.05)
        processes.append(start_module(["distributed.cli.dask_worker", "--scheduler-file", str(scheduler_file),
                                       "--host", "127.0.0.1", "--nthreads", "1", "--no-nanny",
                                       "--no-dashboard"], env))
        yield SimpleNamespace(address=json.loads(scheduler_file.read_text())["address"], worker=processes[1])
    finally:
        for process in reversed(processes):
            stop_process(process)
