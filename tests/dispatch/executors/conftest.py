"""Fixtures the Dask tests share: a scheduler and a worker started as processes of their own."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from dask_processes import scheduler_and_worker_processes


@pytest.fixture
def scheduler_and_worker(tmp_path):
    """A plain-TCP scheduler and one worker (no nanny), as a user starts them: ``.address``, ``.worker``."""
    with scheduler_and_worker_processes(tmp_path) as (address, processes):
        yield SimpleNamespace(address=address, worker=processes[1])
