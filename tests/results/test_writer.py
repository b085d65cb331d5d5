"""The writer and the files its records name: a reused blob deleted before the record naming it is committed.

The race of issue 15, made deterministic: a redispatch has decided to reuse
its parent's large output (a blob file); just before its writer commits the
records naming that file, another process deletes the parent, and the file
goes with it (no committed record names it).  The writer checks under the
write lock: bytes it still holds are written back; otherwise the node's
record says its output was not stored, and why.
"""

from __future__ import annotations

import itertools

import pytest

import covalent_nb as ct
from covalent_nb.dispatch.runtime import RUNTIME
from covalent_nb.results import store as store_module
from covalent_nb.results.store import active_store
from covalent_nb.results.values import NotStored, dumps
from covalent_nb.results.writer import Writer


class Stamped:
    """A value that pickles to new bytes each time (a counter in its state), as a set of strings
    does in another process: bytes pickled again never match the blob's name."""

    stamps = itertools.count()

    def __init__(self, items: list) -> None:
        self.items = items

    def __reduce__(self):
        return (Stamped, (self.items,), {"stamp": next(Stamped.stamps)})


@ct.electron
def make_big(n):
    return list(range(n))  # about 60 kB pickled: a blob file


@ct.electron
def make_stamped(n):
    return Stamped(list(range(n)))


@ct.electron
def count(items):
    return len(items if isinstance(items, list) else items.items)


@ct.lattice
def with_blob(n):
    return count(make_big(n))


@ct.lattice
def with_stamped(n):
    return count(make_stamped(n))


@pytest.fixture
def delete_first(monkeypatch, run_python):
    """Arm: the next transaction that writes node records first has another process delete *dispatch_id*."""
    fired: list = []

    def arm(dispatch_id: str) -> list:
        commit = Writer._transaction

        def deleting(writer, tx):
            if tx.batches and not fired:
                fired.append(run_python("""
                    import sys, covalent_nb as ct
                    print(ct.delete_dispatch(sys.argv[1]).blob_bytes)
                """, dispatch_id))
            return commit(writer, tx)

        monkeypatch.setattr(Writer, "_transaction", deleting)
        return fired

    return arm


def _from_the_store(dispatch_id: str):
    """The dispatch as a new process would load it (this kernel's live result and stores let go)."""
    store_module._close_durable_stores()
    RUNTIME.registry.forget(dispatch_id)
    return active_store().load(dispatch_id)


def test_a_reused_blob_deleted_meanwhile_is_written_again_from_the_bytes_at_hand(home, delete_first, run_python):
    parent = ct.get_result(ct.dispatch(with_blob)(20000), wait=True)
    fired = delete_first(parent.dispatch_id)
    child = ct.get_result(ct.redispatch(parent.dispatch_id, reuse_previous_results=True)(), wait=True)
    assert child.status == ct.Status.COMPLETED and child.result == 20000
    big = child.graph.names.index("make_big")
    assert child.get_node_result(big)["reused"]
    assert fired == [f"{len(dumps(list(range(20000))))}\n"]  # the delete removed the blob file
    assert [row["id"] for row in ct.list_dispatches()] == [child.dispatch_id]
    assert run_python("""
        import sys, covalent_nb as ct
        r = ct.get_result(sys.argv[1])
        print(len(r.get_node_result(r.graph.names.index("make_big"))["output"]), r._table.unstorable)
    """, child.dispatch_id).split() == ["20000", "{}"]


def test_a_reused_blob_deleted_meanwhile_without_its_bytes_at_hand_leaves_a_clear_record(home, delete_first):
    parent_id = ct.get_result(ct.dispatch(with_stamped)(20000), wait=True).dispatch_id
    _from_the_store(parent_id)  # the child reuses a loaded parent: its output is pickled again
    fired = delete_first(parent_id)
    child = ct.get_result(ct.redispatch(parent_id, reuse_previous_results=True)(), wait=True)
    assert child.status == ct.Status.COMPLETED and child.result == 20000  # this kernel has the value
    assert len(fired) == 1 and int(fired[0]) > 50_000  # the delete removed the blob file
    big = child.graph.names.index("make_stamped")

    back = _from_the_store(child.dispatch_id)
    why = back._table.unstorable[big]
    assert why.startswith("its output's blob file ") and "was removed (the dispatches naming it were deleted) " \
        "before this dispatch's record naming it was committed, and this process no longer has those bytes" in why
    assert back.get_node_result(big)["output"] == NotStored(why)
    assert back.get_node_result(big)["status"] == ct.Status.COMPLETED and back.get_node_result(big)["reused"]
    assert back.result == 20000  # every other record reads as before
    assert ct.list_dispatches()[0]["reused"] == len(child.reused_nodes)  # the counts are unchanged

    again = ct.get_result(ct.redispatch(child.dispatch_id, reuse_previous_results=True)(), wait=True)
    assert again.status == ct.Status.COMPLETED and again.result == 20000
    assert again.get_node_result(big)["reason"] == f"recomputed: previous output was not stored ({why})"
    assert again.get_node_result(back.graph.names.index("count"))["reused"]  # its input did not change
