"""Covalent's other top-level names: supported, or refused with the reason, never a bare AttributeError."""

import warnings

import pytest

import covalent_nb as ct
from covalent_nb.compat import UNSUPPORTED


@ct.electron
def inc(x):
    return x + 1


@ct.lattice
def flow(x):
    return inc(x)


def test_server_functions_are_harmless_and_say_so_once():
    assert ct.is_covalent_running() is True
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ct.covalent_start()
        ct.covalent_start()
        ct.covalent_stop()
    texts = [str(w.message) for w in caught]
    assert sum("needs no server" in t for t in texts) <= 1 and ct.reload_config() is None


def test_sync_waits_for_the_dispatches():
    ids = [ct.dispatch(flow)(i) for i in range(3)]
    ct.sync(ids[0])
    assert ct.get_result(ids[0]).status == "COMPLETED"
    ct.sync(ids[1:])
    assert all(ct.get_result(i).status == "COMPLETED" for i in ids)


def test_sync_without_ids_waits_for_every_running_dispatch(tmp_path):
    # in a process of its own: here, other tests' dispatches may still be running
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent("""
        import time
        import covalent_nb as ct

        @ct.electron
        def nap(x):
            time.sleep(0.2)
            return x

        @ct.lattice
        def flow(x):
            return nap(x)

        ct.set_config(store="memory")
        ids = [ct.dispatch(flow)(i) for i in range(3)]
        ct.dispatch(flow, disable_run=True)(9)  # never runs: sync must not wait for it
        ct.sync()
        print(" ".join(str(ct.get_result(i).status) for i in ids))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                          cwd=str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["COMPLETED"] * 3


@pytest.mark.parametrize("name", sorted(UNSUPPORTED))
def test_covalent_features_not_here_are_refused_with_the_reason(name):
    with pytest.raises(NotImplementedError, match=rf"ct\.{name} is not supported by covalent_nb: \w"):
        getattr(ct, name)


def test_other_missing_names_are_ordinary_attribute_errors():
    with pytest.raises(AttributeError, match="no attribute 'no_such_thing'"):
        ct.no_such_thing  # noqa: B018
