"""The kernel's one widget publisher: batching, throttling, threads.

These tests drive the real event stream (:mod:`covalent_nb.dispatch.events`)
from real threads, as dispatchers do, with a small recording target in place
of a widget.  Timing bounds are deliberately loose: they check that updates
are throttled and batched, never how fast a machine is.
"""

from __future__ import annotations

import threading
import time

import pytest

from covalent_nb.dispatch.runtime import RUNTIME
from covalent_nb.dispatch.events import Event
from covalent_nb.notebook.publisher import Publisher, Update, fold, get_publisher

INTERVAL = 0.1


class Recorder:
    """A publisher target that remembers each update, when and on which thread."""

    def __init__(self, dispatch_id: str, fail_first: bool = False) -> None:
        self.dispatch_id = dispatch_id
        self.updates: list[Update] = []
        self.times: list[float] = []
        self.threads: set[str] = set()
        self.fail_first = fail_first
        self.received = threading.Condition()

    def apply_update(self, update: Update) -> None:
        with self.received:
            self.updates.append(update)
            self.times.append(time.monotonic())
            self.threads.add(threading.current_thread().name)
            self.received.notify_all()
        if self.fail_first and len(self.updates) == 1:
            raise RuntimeError("a broken widget")

    def wait_for(self, predicate, timeout: float = 10.0) -> bool:
        with self.received:
            return self.received.wait_for(lambda: predicate(self), timeout)

    def events_seen(self) -> int:
        return sum(u.events for u in self.updates)

    def final_states(self) -> dict:
        states: dict = {}
        for u in self.updates:
            states.update(u.changes)
        return states


def node_event(dispatch_id: str, node: int, kind: str = "node_completed") -> Event:
    status = {"node_running": "RUNNING", "node_completed": "COMPLETED", "node_failed": "FAILED",
              "node_reused": "COMPLETED", "node_cancelled": "CANCELLED"}[kind]
    return Event(kind, dispatch_id, node, status, time.time())


@pytest.fixture
def publisher():
    pub = Publisher(interval=INTERVAL)
    pub.start()
    yield pub
    pub.stop()


def test_fold_keeps_the_last_state_of_each_node_and_marks_the_start_and_the_end():
    d = "d"
    update = fold(d, [
        Event("dispatch_started", d, None, "RUNNING", 0.0),
        node_event(d, 1, "node_running"),
        node_event(d, 2, "node_running"),
        node_event(d, 1, "node_completed"),
        node_event(d, 3, "node_reused"),
        node_event(d, 2, "node_failed"),
    ])
    assert update.changes == {1: "completed", 2: "failed", 3: "reused"}
    assert update.status == "RUNNING" and update.started and not update.ended and update.events == 6
    # everything comes from the events: nothing asks the target to re-read its result
    assert not update.resync
    ended = fold(d, [node_event(d, 4, "node_cancelled"), Event("dispatch_ended", d, None, "CANCELLED", 0.0)])
    assert ended.changes == {4: "cancelled"} and ended.status == "CANCELLED" and ended.ended
    assert not ended.started and not ended.resync
    quiet = fold(d, [node_event(d, 1, "node_running")])
    assert quiet.status is None and not (quiet.resync or quiet.started or quiet.ended)


def test_a_new_target_is_resynced_first_even_without_events(publisher):
    target = Recorder("resync")
    publisher.watch(target)
    assert target.wait_for(lambda t: t.updates)
    assert target.updates[0].resync and target.updates[0].changes == {}


def test_a_burst_of_events_from_a_dispatcher_thread_is_batched_and_throttled(publisher):
    target = Recorder("burst")
    publisher.watch(target)
    assert target.wait_for(lambda t: t.updates)  # the initial resync
    nodes = 400
    duration = 1.0

    def dispatcher():
        # About 400 single-event batches over a second, as a busy dispatch sends them.
        for node in range(nodes):
            RUNTIME.events.publish([node_event("burst", node, "node_running")])
            RUNTIME.events.publish([node_event("burst", node, "node_completed")])
            time.sleep(duration / nodes)

    producer = threading.Thread(target=dispatcher, name="fake-dispatcher-thread")
    started = time.monotonic()
    producer.start()
    producer.join()
    elapsed = time.monotonic() - started
    assert target.wait_for(lambda t: t.events_seen() == 2 * nodes), target.events_seen()

    updates = target.updates[1:]
    # Throttled: no more ticks than the interval allows (+ slack for the edges),
    # though there were 800 events in 800 batches.
    assert len(updates) <= elapsed / INTERVAL + 3, (len(updates), elapsed)
    # ... but live: several updates while the dispatch ran, not one at the end.
    assert len(updates) >= 3
    gaps = [b - a for a, b in zip(target.times, target.times[1:])]
    assert min(gaps) >= INTERVAL * 0.5, gaps
    # Nothing lost: every node ends completed.
    assert target.final_states() == {node: "completed" for node in range(nodes)}
    # Applied on the publisher's own thread, never the dispatcher's.
    assert target.threads == {"covalent-nb-widget-publisher"}


def test_updates_keep_flowing_while_the_main_thread_is_busy(publisher):
    # In a kernel, the main thread runs the next cell; the publisher must not need it.
    target = Recorder("busy")
    publisher.watch(target)

    def dispatcher():
        for node in range(20):
            RUNTIME.events.publish([node_event("busy", node)])
            time.sleep(0.05)

    producer = threading.Thread(target=dispatcher)
    producer.start()
    busy_from = time.monotonic()
    time.sleep(1.5)  # a busy cell: this thread does nothing for the publisher
    busy_until = time.monotonic()
    producer.join()
    during = [t for t in target.times if busy_from < t < busy_until]
    assert len(during) >= 3
    assert target.final_states() == {node: "completed" for node in range(20)}


def test_targets_get_only_their_dispatch(publisher):
    a, b = Recorder("A"), Recorder("B")
    publisher.watch(a)
    publisher.watch(b)
    RUNTIME.events.publish([node_event("A", 1), node_event("B", 2), node_event("nobody", 3)])
    assert a.wait_for(lambda t: t.final_states() == {1: "completed"})
    assert b.wait_for(lambda t: t.final_states() == {2: "completed"})
    time.sleep(3 * INTERVAL)
    assert a.final_states() == {1: "completed"} and b.final_states() == {2: "completed"}


def test_unwatched_targets_get_nothing_more(publisher):
    target = Recorder("gone")
    publisher.watch(target)
    assert target.wait_for(lambda t: t.updates)
    publisher.unwatch(target)
    assert "gone" not in publisher.watched()
    RUNTIME.events.publish([node_event("gone", 1)])
    time.sleep(3 * INTERVAL)
    assert target.final_states() == {}


def test_a_failing_target_does_not_stop_the_publisher(publisher):
    broken, healthy = Recorder("X", fail_first=True), Recorder("X")
    publisher.watch(broken)
    publisher.watch(healthy)
    assert broken.wait_for(lambda t: t.updates)
    RUNTIME.events.publish([node_event("X", 5)])
    assert broken.wait_for(lambda t: t.final_states() == {5: "completed"})
    assert healthy.wait_for(lambda t: t.final_states() == {5: "completed"})
    assert publisher.thread.is_alive()


def test_stop_unsubscribes_and_ends_the_thread():
    pub = Publisher(interval=INTERVAL)
    target = Recorder("after-stop")
    pub.watch(target)
    assert target.wait_for(lambda t: t.updates)  # the initial resync
    thread = pub.thread
    pub.stop()
    assert not thread.is_alive()
    RUNTIME.events.publish([node_event("after-stop", 1)])
    time.sleep(3 * INTERVAL)
    assert target.final_states() == {} and len(target.updates) == 1


def test_the_kernel_has_one_publisher():
    first = get_publisher()
    assert get_publisher() is first
    assert first.thread.is_alive() and first.thread.daemon
