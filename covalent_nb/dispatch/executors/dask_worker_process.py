"""The entry point of a worker process of the kernel's own Dask cluster.

``python -m covalent_nb.dispatch.executors.dask_worker_process SCHEDULER --spec JSON``
runs Dask's own ``dask spec`` command (:mod:`distributed.cli.dask_spec`), which
starts a ``distributed.Nanny`` and its worker, with one addition: a thread that
ends the process when its parent (the kernel) is gone, so a kernel killed with
SIGKILL leaves no worker behind.

Why a process of its own (see :mod:`.dask_cluster`): this process's
``__main__`` is this module, imported by name, so neither it nor the worker the
nanny spawns from it ever imports the user's script.  The TLS credentials
arrive in the environment (Dask's ``DASK_DISTRIBUTED__COMM__TLS__...``
settings), never on the command line, which other users can read.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

from distributed.cli import dask_spec

__all__ = ["main"]

#: How often the parent is checked, and how long a graceful close may take after it is gone.
_POLL_S = 0.5
_GRACE_S = 5.0


def _watch_parent(parent: int) -> None:
    """Stop this process once *parent* has ended (this process was re-parented)."""
    while os.getppid() == parent:
        time.sleep(_POLL_S)
    os.kill(os.getpid(), signal.SIGTERM)  # dask spec closes the nanny and its worker on SIGTERM
    time.sleep(_GRACE_S)
    os._exit(1)


def main(argv: list) -> None:
    """Run ``dask spec`` with *argv*, watching the parent process."""
    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True,
                     name="covalent_nb-parent-watch").start()
    dask_spec.main(args=argv, prog_name="covalent_nb-dask-worker")


if __name__ == "__main__":  # the nanny's spawned worker imports this module as __mp_main__
    main(sys.argv[1:])
