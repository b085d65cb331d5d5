"""The kernel's own Dask cluster: what ``executor="dask"`` starts on first use.

A ``distributed.SpecCluster`` made of

the scheduler
    in the kernel's process, on 127.0.0.1 only, as ``LocalCluster``'s is;
worker processes
    each a ``distributed.Nanny`` and its worker, started by
    :mod:`.dask_worker_process` with :mod:`subprocess` (``python -m ...``),
    not with :mod:`multiprocessing`.  Dask's ``LocalCluster`` starts its
    nannies with the *spawn* start method, which re-imports the main module
    from ``sys.modules["__main__"].__file__``: in a plain script without an
    ``if __name__ == "__main__":`` guard (how Covalent's documentation writes
    scripts) every worker re-ran the script and died ("Nanny failed to
    start").  A worker started here imports nothing of the user's; task
    functions reach it by value (cloudpickle), as they always did.

Security: every connection is TLS with mutual authentication, using
credentials made for this cluster alone (``Security.temporary()``, held in
memory).  A process that knows the scheduler's port but not the credentials
is refused before any message is read, so no other local user can run code in
the workers.  The worker processes get the credentials through their
environment (readable only by the same user), never on the command line.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from typing import Optional

import dask
import psutil
from distributed import Scheduler, SpecCluster
from distributed.deploy.spec import ProcessInterface
from distributed.security import Security

__all__ = ["start_cluster", "WorkerProcess", "worker_environment"]

_LAUNCHER = "covalent_nb.dispatch.executors.dask_worker_process"
_START_TIMEOUT_S = 120


class WorkerProcess(ProcessInterface):
    """One worker of the kernel's cluster: a nanny and its worker in a process of their own.

    Created and driven by ``SpecCluster`` on its event loop (``start``/``close``).

    Args:
        scheduler: the scheduler's address.
        name: the worker's name (the key of its entry in the cluster's spec).
        options: keyword arguments of ``distributed.Nanny`` (JSON-serialisable).
        env: the process's environment (with the TLS credentials).
    """

    def __init__(self, scheduler: str, name: Optional[object] = None, *, options: dict, env: dict) -> None:
        self.scheduler = scheduler
        self.name = name
        self.options = options
        self.env = env
        self.process: Optional[asyncio.subprocess.Process] = None
        super().__init__()

    async def start(self) -> None:
        spec = {"cls": "distributed.Nanny", "opts": {**self.options, "name": self.name}}
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", _LAUNCHER, self.scheduler, "--spec", json.dumps(spec), env=self.env)
        await super().start()

    async def close(self) -> None:
        process = self.process
        if process is not None and process.returncode is None:
            process.terminate()  # dask spec closes the nanny and its worker
            try:
                await asyncio.wait_for(process.wait(), 10)
            except (asyncio.TimeoutError, TimeoutError):
                try:
                    for child in psutil.Process(process.pid).children(recursive=True):
                        child.kill()
                except psutil.Error:
                    pass
                process.kill()
                await process.wait()
        self.process = None
        await super().close()


def worker_environment(security: Security, extra: Optional[dict] = None) -> dict:
    """The environment of a worker process: this one's, the kernel's ``sys.path`` and *security*.

    The credentials go in Dask's own settings (``DASK_DISTRIBUTED__COMM__...``),
    which ``Security()`` reads in the worker.  ``sys.path`` goes in ``PYTHONPATH``
    so a worker imports what the kernel can (a module next to the notebook),
    as a spawned process would.
    """
    env = dict(os.environ)
    path = [entry or os.getcwd() for entry in sys.path]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(path))
    env["DASK_LOGGING__DISTRIBUTED"] = "error"  # as quiet as the scheduler in the kernel
    env["DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION"] = "True"
    env["DASK_DISTRIBUTED__COMM__TLS__CA_FILE"] = security.tls_ca_file
    env["DASK_DISTRIBUTED__COMM__TLS__WORKER__CERT"] = security.tls_worker_cert
    env["DASK_DISTRIBUTED__COMM__TLS__WORKER__KEY"] = security.tls_worker_key
    env["DASK_DISTRIBUTED__COMM__TLS__CLIENT__CERT"] = security.tls_client_cert
    env["DASK_DISTRIBUTED__COMM__TLS__CLIENT__KEY"] = security.tls_client_key
    env.update(extra or {})
    return env


def start_cluster(n_workers: int, threads_per_worker: int, dashboard: Optional[str],
                  allowed_failures: int, worker_env: Optional[dict] = None) -> tuple:
    """Start the kernel's cluster; returns ``(cluster, security)``.

    *dashboard* is the dashboard's address, or None for none (the scheduler
    still serves health checks over HTTP, on a free loopback port).
    *worker_env* is added to the workers' environment.
    """
    security = Security.temporary()
    scheduler = {"cls": Scheduler, "options": {
        "host": "127.0.0.1", "port": 0, "protocol": "tls://", "security": security,
        "dashboard": dashboard is not None, "dashboard_address": dashboard or "127.0.0.1:0"}}
    worker = {"cls": WorkerProcess, "options": {
        "env": worker_environment(security, worker_env),
        "options": {"host": "127.0.0.1", "nthreads": threads_per_worker, "dashboard": False,
                    "dashboard_address": "127.0.0.1:0", "silence_logs": logging.ERROR,
                    # the machine's memory shared out, as LocalCluster does
                    "memory_limit": 1.0 / max(1, n_workers),
                    # a worker that cannot reach its scheduler gives up instead of waiting forever
                    "death_timeout": 60}}}
    # A task whose worker dies fails at once (KilledWorker) instead of moving
    # to the next worker, which a task that kills its worker would take down too.
    with dask.config.set({"distributed.scheduler.allowed-failures": allowed_failures}):
        cluster = SpecCluster(workers={i: worker for i in range(n_workers)}, scheduler=scheduler,
                              worker=worker, security=security, silence_logs=logging.ERROR,
                              name="covalent_nb")
    try:  # as LocalCluster does: the cluster is ready when its workers are
        cluster.wait_for_workers(n_workers, timeout=_START_TIMEOUT_S)
    except BaseException as exc:
        cluster.close()
        raise RuntimeError(f"covalent_nb: the Dask worker processes did not start within "
                           f"{_START_TIMEOUT_S} s ({type(exc).__name__}: {exc}); their errors are on "
                           "this process's stderr") from exc
    return cluster, security
