"""Fixtures shared by every test.

``covalent_nb_home`` (session, autouse): the store's home is a temporary
directory for the whole run, so no test ever writes to the real per-user
home.  It is set in the environment too, so subprocesses and kernels started
by tests inherit it.
"""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session", autouse=True)
def covalent_nb_home(tmp_path_factory):
    """The store's home for this test session (a fresh temporary directory)."""
    home = tmp_path_factory.mktemp("covalent_nb_home")
    previous = os.environ.get("COVALENT_NB_HOME")
    os.environ["COVALENT_NB_HOME"] = str(home)
    import covalent_nb as ct

    ct.set_config(home=str(home))
    yield home
    if previous is None:
        os.environ.pop("COVALENT_NB_HOME", None)
    else:
        os.environ["COVALENT_NB_HOME"] = previous
