"""Freezing a dispatch (covalent_nb/dispatch/freeze.py): copies, what stays live, and memory."""

import gc
import threading
import weakref

import numpy as np

import covalent_nb as ct
from covalent_nb.dispatch.freeze import CopyOf, freeze, private_copy, thaw


def cell(source, namespace=None):
    namespace = namespace if namespace is not None else {"__name__": "__main__", "ct": ct}
    exec(compile(source, "<cell>", "exec"), namespace)
    return namespace


def test_thaw_gives_fresh_classes_and_leaves_the_notebooks_class_alone():
    ns = cell("class Cfg:\n    scale = 2\n")
    work = freeze(ns["Cfg"], {}, (ns["Cfg"](),), {})
    ns["Cfg"].scale = 3
    cls, _, (instance,), _ = thaw(work.data)
    assert cls is not ns["Cfg"] and cls.scale == 2 and type(instance) is cls
    thaw(work.data)  # thawing again never writes the old attributes back
    assert ns["Cfg"].scale == 3


def test_objects_that_cannot_be_pickled_stay_live_and_the_rest_is_copied():
    lock = threading.Lock()
    data = [1, 2]
    work = freeze(None, {}, (lock, data), {})
    assert work.live == [lock] and not work.portable
    _, _, (got_lock, got_data), _ = thaw(work.data, work.live)
    assert got_lock is lock and got_data == data and got_data is not data


def test_executors_are_shared_with_the_notebook_not_copied():
    executor = ct.executor.LocalExecutor(max_workers=1)
    try:
        work = freeze(None, {}, (executor,), {})
        assert not work.live  # a reference, not a persistent id: another process gets a copy
        assert thaw(work.data)[2][0] is executor
    finally:
        executor.shutdown()


def test_private_copies_of_arrays_frames_and_objects_are_independent():
    import pandas as pd

    for value in (np.arange(4.0), np.ma.masked_array([1, 2], [0, 1]), pd.DataFrame({"a": [1.0]}),
                  {"k": [1, 2]}):
        copy = private_copy(value)
        assert copy is not value and type(copy) is type(value)
    masked = private_copy(np.ma.masked_array([1, 2], [0, 1]))
    assert masked.mask.tolist() == [False, True]
    assert CopyOf(original=[1]).value() == [1]


def test_a_deleted_dispatch_frees_its_frozen_data():
    ns = cell("""
import numpy as np
BIG = np.ones(1000)

@ct.electron
def first(x):
    return float(BIG[0]) + x

@ct.lattice
def flow(x):
    return first(x)
""")
    result = ct.get_result(ct.dispatch(ns["flow"])(1), wait=True)
    assert result.result == 2.0
    frozen_big = result.graph.functions[0].__globals__["BIG"]
    assert frozen_big is not ns["BIG"]  # the dispatch ran its own copy
    alive = weakref.ref(frozen_big)
    del frozen_big
    ct.delete_dispatch(result.dispatch_id)
    del result
    gc.collect()
    assert alive() is None, "something still holds the deleted dispatch's frozen globals"
