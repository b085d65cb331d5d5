"""Settings: ``ct.get_config()`` and ``ct.set_config(...)``, in Covalent's style.

Defaults come from environment variables where one exists
(``COVALENT_NB_HOME``), otherwise from :data:`DEFAULTS`.  Settings live for the
kernel's life; nothing is written to disk.
"""

from __future__ import annotations

import os
import threading
from typing import Any, Optional

__all__ = ["get_config", "set_config", "DEFAULTS"]


def _default_home() -> str:
    env = os.environ.get("COVALENT_NB_HOME")
    if env:
        return env
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(base, "covalent_nb")


#: Every setting with its default and what it means.
DEFAULTS: dict = {
    "home": None,  # filled lazily from COVALENT_NB_HOME or the per-user data dir
    "store": "sqlite",  # "sqlite" (durable, in home) or "memory"
    "store_inline_max": 16 * 1024,  # pickled values up to this many bytes live in the database, larger in blob files
    "local_workers": min(32, (os.cpu_count() or 1) + 4),
    "reuse_history": False,  # the default of ct.dispatch(..., reuse_previous_results=): reuse from the store's history
    "deps_pip_install": True,
    "dask_address": None,  # None: start a LocalCluster on first use
    "dask_workers": 2,
    "dask_threads_per_worker": 1,
    "dask_dashboard": False,  # True: on 127.0.0.1:8787; or an address such as "127.0.0.1:8790"
    "dask_allowed_failures": 0,  # LocalCluster: worker deaths a task survives before failing
    "dask_blob_storage": None,  # where Dask workers write large outputs (path or fsspec URL); None: the home's blobs for the kernel's cluster
}

_lock = threading.Lock()
_settings: dict = dict(DEFAULTS)


def get_config(key: Optional[str] = None) -> Any:
    """Return all settings as a dict, or the value of one *key*."""
    with _lock:
        if _settings["home"] is None:
            _settings["home"] = _default_home()
        if key is None:
            return dict(_settings)
        if key not in _settings:
            raise KeyError(f"unknown setting {key!r}; settings are: {', '.join(sorted(_settings))}")
        return _settings[key]


def set_config(new_config: Optional[dict] = None, **settings: Any) -> None:
    """Change settings, given as a dict or as keyword arguments.

    >>> set_config(deps_pip_install=False)
    """
    changes = dict(new_config or {}, **settings)
    unknown = sorted(set(changes) - set(DEFAULTS))
    if unknown:
        raise KeyError(f"unknown setting(s) {', '.join(unknown)}; settings are: {', '.join(sorted(DEFAULTS))}")
    with _lock:
        _settings.update(changes)
    for callback in list(_listeners):
        callback(changes)


_listeners: list = []


def on_change(callback) -> None:
    """Call *callback(changes)* after every :func:`set_config` (used by the store)."""
    _listeners.append(callback)
