"""dumps: the standard library's bytes when they load anywhere, cloudpickle's when they name ``__main__``."""

from __future__ import annotations

import pickle
import sys
import types

import numpy as np

from covalent_nb.serialization import dumps, loads


def test_values_with_large_buffers_pickle_to_the_bytes_pickle_dumps_gives():
    values = [np.arange(1_000_000, dtype=np.int64), np.ones((400, 300)).T, np.arange(10**6)[::3],
              [np.full(100_000, i, dtype=np.uint8) for i in range(5)], {"a": np.ones(50_000), "b": b"x" * 100_000},
              bytearray(b"y" * 200_000), np.ones(8), {"small": [1, 2, 3]}]
    for value in values:
        data = dumps(value)
        assert data == pickle.dumps(value, protocol=5)
        back = loads(data)
        assert type(back) is type(value)


def test_a_notebook_class_next_to_a_large_array_goes_by_value():
    module = sys.modules["__main__"]
    Holder = types.new_class("Holder", exec_body=lambda ns: ns.update({"__module__": "__main__"}))
    setattr(module, "Holder", Holder)
    try:
        value = [np.ones(200_000), Holder()]
        data = dumps(value)
        assert b"cloudpickle" in data  # by value: another process has no __main__.Holder
        back = loads(data)
        assert type(back[1]).__name__ == "Holder" and type(back[1]) is not Holder
        assert back[0].shape == (200_000,)
    finally:
        delattr(module, "Holder")


def test_raw_data_that_spells_main_does_not_send_a_large_array_to_cloudpickle():
    array = np.frombuffer(b"__main__" * 100_000, dtype=np.uint8)
    data = dumps(array)
    assert b"cloudpickle" not in data and data == pickle.dumps(array, protocol=5)
    assert bytes(loads(data)) == b"__main__" * 100_000
