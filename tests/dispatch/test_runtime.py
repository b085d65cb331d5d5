"""The runtime: one object owns what the package keeps, and one shutdown ends it all."""

import sys

import covalent_nb as ct
from covalent_nb.dispatch.runtime import RUNTIME
from covalent_nb.notebook.publisher import get_publisher
from covalent_nb.results.store import active_store


@ct.electron
def shout(text):
    print(text)
    return text.upper()


@ct.lattice
def flow(text):
    return shout(text)


def test_shutdown_stops_every_part_and_the_next_dispatch_starts_afresh():
    assert ct.dispatch_sync(flow)("a").result == "A"  # local threads, a store, the capture routers
    store = active_store()
    get_publisher()
    assert RUNTIME.executors and RUNTIME.peek("stores") is not None and RUNTIME.peek("publisher") is not None
    workers = list(RUNTIME.executors["local"]._threads)
    assert workers and all(t.is_alive() for t in workers)

    ct.shutdown()

    assert not RUNTIME.executors and RUNTIME.peek("stores") is None and RUNTIME.peek("publisher") is None
    assert not any(t.is_alive() for t in workers)
    assert type(sys.stdout).__name__ != "_Router" and type(sys.stderr).__name__ != "_Router"
    if hasattr(store, "writer"):  # the durable store flushed and let its writer thread go
        store.writer.thread.join(5)
        assert not store.writer.thread.is_alive()

    again = ct.dispatch_sync(flow)("b")  # everything comes back on first use
    assert again.result == "B" and again.get_node_result(0)["stdout"] == "b\n"
    assert ct.get_result(again.dispatch_id).status == "COMPLETED"
