"""LatticeGraph on real dispatches: traits, live updates, details, panel hook."""

from __future__ import annotations

import sys
import threading
import time

import pytest

import covalent_nb as ct
from covalent_nb.notebook import graph_widget as gw
from covalent_nb.notebook.publisher import DEFAULT_INTERVAL
from covalent_nb.notebook.states import CODES, PALETTE, STATES, count_states, decode_states, encode_states
from covalent_nb.widgets import LatticeGraph

GATE = threading.Event()


@ct.electron
def double(x):
    return 2 * x


@ct.electron
def add(a, b):
    return a + b


@ct.electron
def gated(x):
    # Holds the dispatch in "running" until the test opens the gate.
    if not GATE.wait(30):
        raise TimeoutError("the test never opened the gate")
    return x


@ct.electron
def noisy(x):
    print("hello from noisy")
    print("careful", file=sys.stderr)
    return list(range(100_000))


@ct.electron
def explode(x):
    raise ValueError(f"kaboom {len(x)}")


@ct.electron
def fast(i):
    return i


@ct.lattice
def flow(a, b):
    return add(double(a), double(b))


@ct.lattice
def slow_flow(a):
    return double(gated(a))


@ct.lattice
def failing(a):
    return explode(noisy(a))


@ct.lattice
def many(n):
    return [fast(i) for i in range(n)]


def wait_until(predicate, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


@pytest.fixture
def gate():
    GATE.clear()
    yield GATE
    GATE.set()  # never leave a dispatch hanging


# -- state encoding ---------------------------------------------------------------------

def test_state_codes_are_single_distinct_characters_and_round_trip():
    assert set(CODES) == set(STATES)
    assert all(len(code) == 1 for code in CODES.values())
    assert len(set(CODES.values())) == len(STATES)
    states = ["pending", "running", "completed", "reused", "failed", "cancelled", "completed"]
    assert encode_states(states) == "prcufxc"
    assert decode_states(encode_states(states)) == states
    assert decode_states("?") == ["pending"]
    with pytest.raises(KeyError):
        encode_states(["sleeping"])


def test_counts_leave_parameters_out():
    counts = count_states("ccr", ["electron", "parameter", "electron"])
    assert counts == {"pending": 0, "running": 1, "completed": 1, "reused": 0, "failed": 0,
                      "cancelled": 0}


# -- construction ----------------------------------------------------------------------------

def test_built_from_a_dispatch_id_or_a_result_with_the_graph_and_states():
    result = ct.dispatch_sync(flow)(1, 2)
    by_id = LatticeGraph(result.dispatch_id)
    by_result = LatticeGraph(result)
    for widget in (by_id, by_result):
        assert widget.result is result
        assert widget.dispatch_id == result.dispatch_id
        assert widget.status == "COMPLETED"
        assert widget.states == encode_states(result.node_states())
        graph = widget.graph
        n = len(result.graph)
        # Two calls of one function are told apart by the argument that differs.
        assert graph["labels"] == ["double(x=1)", "1", "double(x=2)", "2", "add", "result"]
        assert graph["ids"] == [str(i) for i in range(n)] and graph["n"] == n
        assert graph["roles"] == "epepea" and graph["kinds"] == "epepeb"
        assert all(len(graph[key]) == n for key in ("x", "y", "w", "h"))
        assert graph["groups"] == []
        assert graph["functions"] == [{"name": "double", "count": 2, "runs": [[0, 2, 2]]}]
        assert len(graph["edges"]) == 2 * len(result.graph.edges)
        assert graph["codes"] == {code: state for state, code in CODES.items()}
        assert graph["palette"] == dict(PALETTE)  # the browser's only colours (js/src/style.js)
        assert widget.counts()["completed"] == 3  # the electrons: not parameters nor the postprocess
    with pytest.raises(TypeError):
        LatticeGraph(42)
    with pytest.raises(ValueError):
        LatticeGraph("no-such-dispatch")


def test_the_widget_ships_the_built_bundle():
    assert gw.BUNDLE.is_file()
    widget = LatticeGraph(ct.dispatch_sync(flow)(1, 2))
    esm = widget._esm
    assert len(esm) > 100_000 and "cnb-legend" in esm and "open_panel" in esm


def test_a_missing_bundle_is_a_clear_error(monkeypatch, tmp_path):
    result = ct.dispatch_sync(flow)(1, 2)
    monkeypatch.setattr(gw, "BUNDLE", tmp_path / "graph.js")
    with pytest.raises(RuntimeError, match="npm"):
        LatticeGraph(result)


# -- live updates ----------------------------------------------------------------------------

def test_live_updates_come_from_the_publisher_thread_and_follow_the_dispatch(gate):
    dispatch_id = ct.dispatch(slow_flow)(5)
    widget = LatticeGraph(dispatch_id)
    seen: list = []
    widget.observe(lambda c: seen.append((c["name"], c["new"], threading.current_thread().name)),
                   names=["states", "status"])
    # Node 0 is gated: running until the gate opens, double (node 2) pending.
    assert wait_until(lambda: widget.states[0] == CODES["running"]), widget.states
    assert widget.status == "RUNNING"
    assert widget.counts()["running"] == 1 and widget.counts()["pending"] == 1  # electrons only
    gate.set()
    assert wait_until(lambda: widget.status == "COMPLETED"), widget.status
    assert widget.states == encode_states(["completed"] * 4)
    assert widget.counts()["completed"] == 2
    assert seen, "no live update reached the widget"
    assert {thread for *_, thread in seen} == {"covalent-nb-widget-publisher"}
    # the header's clock: the start and end times arrive with the events
    assert wait_until(lambda: widget.ended_at > widget.started_at > 0), (widget.started_at, widget.ended_at)


def test_on_ended_runs_once_on_the_publisher_thread_after_the_final_states_are_drawn(gate):
    dispatch_id = ct.dispatch(slow_flow)(5)
    widget = LatticeGraph(dispatch_id)
    calls: list = []
    widget.on_ended(lambda: calls.append((widget.status, widget.states, widget.to_svg(),
                                          threading.current_thread().name)))
    assert wait_until(lambda: widget.states[0] == CODES["running"])
    assert calls == []  # not while it runs
    gate.set()
    assert wait_until(lambda: calls), "on_ended never ran"
    [(status, states, svg, thread)] = calls
    assert status == "COMPLETED" and states == encode_states(["completed"] * 4)
    assert "RUNNING" not in svg and "COMPLETED" in svg  # what a saved notebook keeps is final
    assert thread == "covalent-nb-widget-publisher"
    # registered after the end: it runs at once, on the caller's thread
    late: list = []
    widget.on_ended(lambda: late.append(threading.current_thread().name))
    assert late == [threading.current_thread().name]
    time.sleep(3 * DEFAULT_INTERVAL)
    assert len(calls) == 1


def test_a_widget_made_after_the_dispatch_ended_shows_the_end_state():
    result = ct.dispatch_sync(failing)(3)
    widget = LatticeGraph(result)
    assert widget.status == "FAILED"
    assert decode_states(widget.states) == result.node_states()
    assert widget.counts()["failed"] == 1


def test_a_large_fast_dispatch_is_drawn_with_few_batched_updates():
    widget_box: list = []
    changes: list = []
    started = time.monotonic()
    dispatch_id = ct.dispatch(many)(300)
    widget = LatticeGraph(dispatch_id)
    widget.observe(lambda c: changes.append(time.monotonic()), names=["states"])
    widget_box.append(widget)
    assert wait_until(lambda: widget.status in ("COMPLETED", "FAILED"), 60)
    assert widget.status == "COMPLETED"
    elapsed = time.monotonic() - started
    # ~600 node events arrive, but at most one states update per tick.
    assert len(changes) <= elapsed / DEFAULT_INTERVAL + 3
    assert set(widget.states) == {CODES["completed"]}


def test_redispatch_with_reuse_shows_reused_and_replaced_nodes():
    parent = ct.dispatch_sync(flow)(1, 2)

    @ct.electron
    def add(a, b):  # noqa: F811 - the replacement of flow's add
        return a - b

    child_id = ct.redispatch(parent.dispatch_id, replace_electrons={"add": add},
                             reuse_previous_results=True)()
    ct.get_result(child_id, wait=True)
    widget = LatticeGraph(child_id)
    assert widget.status == "COMPLETED"
    counts = widget.counts()
    assert counts["reused"] == 2  # both doubles
    assert counts["completed"] == 1  # the replaced add (the legend counts electrons only)
    assert widget.replaced == [4]
    assert "reused 2" in widget.to_svg()


# -- details -----------------------------------------------------------------------------------

FIELDS = {"node_name", "node_id", "status", "executor", "start_time", "end_time", "duration",
          "inputs", "output", "stdout", "stderr", "error", "reason", "source"}


def test_selecting_a_node_sends_its_details():
    result = ct.dispatch_sync(flow)(1, 2)
    widget = LatticeGraph(result)
    widget.selected = 4  # add
    details = widget.details
    assert FIELDS <= set(details)
    assert details["node_id"] == 4 and details["node_name"] == "add"
    assert details["status"] == "completed"
    assert details["executor"]
    assert details["start_time"] and details["end_time"] and details["duration"].endswith("s")
    assert details["inputs"] == "a = 2\nb = 4"
    assert details["output"] == "6"
    assert "def add(a, b):" in details["source"]
    assert details["reason"]
    widget.selected = -1
    assert widget.details == {}


def test_details_of_a_failed_run_have_streams_traceback_and_short_reprs():
    result = ct.dispatch_sync(failing)(3)
    details = gw.node_details(result, 0)  # noisy
    assert details["stdout"] == "hello from noisy\n"
    assert details["stderr"] == "careful\n"
    assert details["output"].startswith("[0, 1, 2") and len(details["output"]) < 200
    failed = gw.node_details(result, 2)  # explode
    assert failed["status"] == "failed"
    assert "ValueError" in failed["error"] and "kaboom 100000" in failed["error"]
    assert failed["output"] == ""
    assert failed["inputs"].startswith("x = [0, 1, 2") and len(failed["inputs"]) < 200
    downstream = gw.node_details(result, 3)  # postprocess, never ran
    assert downstream["status"] == "pending" and "not done" in downstream["inputs"]


def test_details_of_the_selected_node_refresh_as_it_runs(gate):
    dispatch_id = ct.dispatch(slow_flow)(5)
    widget = LatticeGraph(dispatch_id)
    widget.selected = 0
    assert wait_until(lambda: widget.details.get("status") == "running"), widget.details
    assert widget.details["duration"] == "running" and widget.details["output"] == ""
    gate.set()
    assert wait_until(lambda: widget.details.get("status") == "completed"), widget.details
    assert widget.details["output"] == "5"


def test_a_broken_repr_does_not_break_the_details():
    class Nasty:
        def __repr__(self):
            raise RuntimeError("no repr for you")

    assert "Nasty" in gw._short_repr(Nasty())
    assert len(gw._short_repr("x" * 100_000)) <= 2000


# -- controls ------------------------------------------------------------------------------

def test_the_redispatch_button_message_calls_the_panel_hook(monkeypatch):
    widget = LatticeGraph(ct.dispatch_sync(flow)(1, 2))
    opened: list = []
    monkeypatch.setattr(LatticeGraph, "default_open_panel", lambda w: opened.append(("default", w)))
    widget._handle_custom_msg({"event": "open_panel"}, [])
    assert opened == [("default", widget)]
    own = lambda w: opened.append(("own", w))  # noqa: E731
    widget.on_open_panel(own)
    widget._handle_custom_msg({"event": "open_panel"}, [])
    assert opened[-1] == ("own", widget) and len(opened) == 2
    widget.on_open_panel(own, remove=True)
    widget._handle_custom_msg({"event": "something else"}, [])
    assert len(opened) == 2


def test_parameters_start_hidden_only_on_big_graphs():
    small = LatticeGraph(ct.dispatch(many, disable_run=True)(10))
    assert small.hide_params is False
    big = LatticeGraph(ct.dispatch(many, disable_run=True)(gw.AUTO_HIDE_PARAMS // 2 + 1))
    assert len(big.result.graph) > gw.AUTO_HIDE_PARAMS
    assert big.hide_params is True
    assert LatticeGraph(big.result, hide_params=False).hide_params is False


def test_hide_params_and_close():
    widget = LatticeGraph(ct.dispatch_sync(flow)(1, 2), hide_params=True)
    assert widget.hide_params is True
    assert "<circle" not in widget.to_svg()
    from covalent_nb.notebook.publisher import get_publisher

    assert widget.dispatch_id in get_publisher().watched()
    widget.close()
    assert widget.dispatch_id not in get_publisher().watched()


def test_details_of_a_redispatch_show_the_source_of_snapshot_functions():
    namespace = {"__name__": "__main__", "ct": ct}
    exec(compile("@ct.electron\ndef shout(x):\n    return str(x).upper()\n\n"
                 "@ct.lattice\ndef loud(x):\n    return shout(x)\n", "<cell-shout>", "exec"), namespace)
    import linecache
    source = "@ct.electron\ndef shout(x):\n    return str(x).upper()\n\n@ct.lattice\ndef loud(x):\n    return shout(x)\n"
    linecache.cache["<cell-shout>"] = (len(source), None, source.splitlines(True), "<cell-shout>")
    parent = ct.dispatch_sync(namespace["loud"])("a")
    child = ct.get_result(ct.redispatch(parent.dispatch_id)("b"), wait=True)  # retraced from the snapshot
    # the frozen copy keeps its cell's file name (marshal, not cloudpickle's "<dynamic-code>")
    assert child.graph.functions[0].__code__.co_filename == "<cell-shout>"
    assert child.graph.functions[0] is not namespace["shout"].function
    from covalent_nb.notebook.graph_widget import _source_text

    assert "return str(x).upper()" in _source_text(child.graph, 0)


# -- at scale: groups, progress, failures, cancel ------------------------------------------------

@ct.electron
def feature(i):
    return i


@ct.electron
def fails_on_three(i):
    if i == 3:
        raise KeyError(f"no row {i}")
    return i


@ct.electron
def summed(xs):
    return sum(xs)


@ct.lattice
def wide(n):
    return summed([feature(i) for i in range(n)])


@ct.lattice
def wide_failing(n):
    return [fails_on_three(i) for i in range(n)]


@ct.lattice
def gated_wide(n):
    return [gated(i) for i in range(n)]


def test_a_fan_out_is_sent_as_one_group_item_with_its_members_as_runs():
    result = ct.dispatch_sync(wide)(500)
    widget = LatticeGraph(result)
    graph = widget.graph
    assert graph["n"] == len(result.graph) and len(graph["kinds"]) == graph["n"]
    [group] = graph["groups"]
    assert group["label"] == "feature" and group["count"] == 500 and group["kind"] == "e"
    assert group["page"] == -1 and group["shown"] is None and group["pages"] == 5
    assert graph["ids"][group["item"]] == "g0" and graph["roles"][group["item"]] == "g"
    members = [v for v, name in enumerate(result.graph.names) if name == "feature"]
    from covalent_nb.notebook.grouping import decode_runs
    assert decode_runs(group["runs"]) == members
    assert len(graph["ids"]) == 4  # the group, the list, summed, the result
    assert graph["functions"] == [{"name": "feature", "count": 500, "runs": group["runs"]}]
    # the header counts electrons only: 500 features and summed
    assert widget.electrons() == {**dict.fromkeys(STATES, 0), "completed": 501, "total": 501}
    assert widget.started_at > 0 and widget.ended_at >= widget.started_at


def test_expanding_a_group_draws_a_page_of_its_members_and_collapsing_redraws_the_group():
    widget = LatticeGraph(ct.dispatch_sync(wide)(250))
    widget.expand("g0", 1)
    graph = widget.graph
    [group] = graph["groups"]
    assert group["page"] == 1 and group["shown"] == [100, 199]
    assert group["item"] >= 0  # 150 members are still the group
    drawn = {int(i) for i in graph["ids"] if i != "g0"}
    members = [v for v, name in enumerate(widget.result.graph.names) if name == "feature"]
    assert set(members[100:200]) <= drawn and not set(members[:100] + members[200:]) & drawn
    assert len(graph["x"]) == len(graph["ids"]) == len(graph["labels"])
    widget.collapse("g0")
    assert widget.graph["groups"][0]["page"] == -1 and len(widget.graph["ids"]) == 4
    widget.expanded = {"g9": 0, "g0": 0}  # an unknown group is ignored
    assert widget.graph["groups"][0]["page"] == 0


def test_failures_name_each_failed_electron_with_its_exception_line_and_full_text():
    result = ct.dispatch_sync(wide_failing)(8)
    widget = LatticeGraph(result)
    [failure] = widget.failures
    node = failure["node_id"]
    assert result.graph.names[node] == "fails_on_three" and failure["name"] == "fails_on_three"
    assert failure["line"] == "KeyError: 'no row 3'"
    assert failure["error"] == str(result.get_node_result(node)["error"])[-4000:]
    assert widget.electrons()["failed"] == 1


def test_failures_arrive_live_from_the_publisher(gate):
    dispatch_id = ct.dispatch(failing)(1)
    widget = LatticeGraph(dispatch_id)
    assert wait_until(lambda: widget.failures), widget.states
    assert widget.failures[0]["line"] == "ValueError: kaboom 100000"


def test_the_cancel_message_cancels_the_running_dispatch(gate):
    dispatch_id = ct.dispatch(gated_wide)(3)
    widget = LatticeGraph(dispatch_id)
    assert wait_until(lambda: widget.status == "RUNNING")
    assert wait_until(lambda: widget.started_at > 0)
    assert not widget.cancel_requested
    widget._handle_custom_msg({"event": "cancel"}, [])  # what the Cancel button sends
    assert widget.cancel_requested  # the button now reads "Cancelling…"
    gate.set()  # running tasks finish; the dispatch still ends cancelled
    result = ct.get_result(dispatch_id, wait=True)
    assert result.status == "CANCELLED"
    assert wait_until(lambda: widget.status == "CANCELLED"), widget.status
    assert wait_until(lambda: widget.ended_at > 0)
    widget._handle_custom_msg({"event": "cancel"}, [])  # after the end: nothing happens


def test_details_carry_epoch_milliseconds_for_local_times():
    result = ct.dispatch_sync(flow)(1, 2)
    details = gw.node_details(result, 0)
    record = result.get_node_result(0)
    assert details["start_ms"] == pytest.approx(record["start_time"].timestamp() * 1000)
    assert details["end_ms"] >= details["start_ms"] > 0


def test_static_bundle_holds_the_svg_twice_with_the_class_the_widget_hides():
    widget = LatticeGraph(ct.dispatch_sync(flow)(1, 2))
    bundle = gw.static_bundle(widget)
    assert bundle["image/svg+xml"].startswith("<svg")
    html = bundle["text/html"]
    assert html.startswith('<div class="cnb-static-graph cnb-static-') and bundle["image/svg+xml"] in html
    assert gw.static_class(widget.dispatch_id) in html
    assert gw.static_class("a b\"<c") == "cnb-static-abc"


# -- what the kernel sends (issue 11): the saved picture is the final one --------------------------

@pytest.mark.timeout(180)
def test_the_kernel_publishes_the_final_picture_last_and_never_redraws_the_widget():
    """A real kernel, read at the level of its IOPub messages: for every display id, the
    last ``image/svg+xml`` published says COMPLETED, and the widget's own output is
    published once and never updated (so Lab never re-renders it: zoom and selection stay)."""
    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(kernel_name="python3")
    try:
        def execute(code: str) -> list:
            msg_id = kc.execute(code)
            messages = []
            while True:
                msg = kc.get_iopub_msg(timeout=120)
                if msg["parent_header"].get("msg_id") == msg_id or msg["msg_type"] == "update_display_data":
                    messages.append(msg)
                if (msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle"
                        and msg["parent_header"].get("msg_id") == msg_id):
                    return messages

        def errors(messages):
            return [m["content"] for m in messages if m["msg_type"] == "error"]

        setup = execute(
            "import time\nimport covalent_nb as ct\n%load_ext covalent_nb\n"
            "@ct.electron\ndef slow(x):\n    time.sleep(1.0)\n    return x\n"
            "@ct.lattice\ndef flow(x):\n    return slow(slow(x))\n")
        assert not errors(setup)
        shown = execute("run = %dispatch flow(1)")
        assert not errors(shown)
        waited = execute("print(run.result().status)")
        assert not errors(waited)
        assert any("COMPLETED" in m["content"].get("text", "") for m in waited)
        messages = shown + waited
        displays = [m for m in messages if m["msg_type"] in ("display_data", "update_display_data")]
        widget = [m for m in displays if "application/vnd.jupyter.widget-view+json" in m["content"]["data"]]
        assert len(widget) == 1 and widget[0]["msg_type"] == "display_data"
        assert "image/svg+xml" not in widget[0]["content"]["data"]  # no picture to go stale
        last_svg: dict = {}
        for m in displays:
            svg = m["content"]["data"].get("image/svg+xml")
            display_id = m["content"].get("transient", {}).get("display_id")
            if svg and display_id:
                last_svg[display_id] = (m["msg_type"], svg)
        [(kind, svg)] = last_svg.values()
        first = next(m for m in displays if "image/svg+xml" in m["content"]["data"])
        assert "RUNNING" in first["content"]["data"]["image/svg+xml"]  # shown while it ran
        assert kind == "update_display_data"
        assert ">COMPLETED<" in svg and "running 0" in svg and "pending 0" in svg
        assert "2 / 2 electrons done" in svg
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


@pytest.mark.dask
@pytest.mark.timeout(180)
def test_details_say_where_a_dask_value_lives_without_fetching_it(tmp_path):
    """Issue 15: a Dask output kept outside the kernel shows its place, size and durability."""
    import numpy as np

    from covalent_nb.dispatch.executors.dask import close_local_cluster
    from covalent_nb.dispatch.executors.remote import RemoteValue

    @ct.electron(executor="dask")
    def make_big(n):
        return np.ones(n, dtype=np.uint8)

    @ct.electron(executor="dask")
    def count(a):
        return int(a.sum())

    @ct.lattice
    def big_flow(n):
        big = make_big(n)
        return count(big), big

    keys = ("home", "store", "dask_address", "dask_workers", "dask_blob_storage")
    settings = {key: ct.get_config(key) for key in keys}
    try:
        for store, where in (("memory", "Dask worker memory"), ("sqlite", "blob storage")):
            ct.set_config(home=str(tmp_path / store), store=store, dask_address=None, dask_workers=1,
                          dask_blob_storage=None)
            result = ct.dispatch_sync(big_flow)(2_000_000)
            assert result.status == ct.Status.COMPLETED, result.error
            names = list(result.graph.names)
            made, counted = names.index("make_big"), names.index("count")
            post = result.graph.kinds.index("postprocess")
            reference = result._table.output.raw[made]
            assert type(reference) is RemoteValue
            details = gw.node_details(result, made)
            assert where in details["location"] and "2.0 MB" in details["location"]
            assert ("· durable" in details["location"]) == (store == "sqlite")
            if store == "memory":
                assert "not durable: the store is 'memory'" in details["location"]
            assert "2.0 MB" in details["output"]  # the reference's repr, not the array's
            assert "2.0 MB" in gw.node_details(result, counted)["inputs"]
            assert gw.node_details(result, counted)["location"] == ""  # a small output came to the kernel
            assert where in gw.node_details(result, post)["location"]
            assert not reference.fetched  # nothing above brought the value into the kernel
    finally:
        close_local_cluster()
        ct.set_config(settings)


def test_a_graph_displayed_in_ipython_is_the_widget_then_its_picture():
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output

    shell = InteractiveShell.instance()
    result = ct.dispatch_sync(wide_failing)(8)
    shell.user_ns.update(graph=LatticeGraph(result), result=result)
    for name in ("graph", "result"):
        with capture_output() as captured:
            shell.run_cell(name, store_history=False)
        widget, picture = captured.outputs
        assert "application/vnd.jupyter.widget-view+json" in widget.data
        assert "image/svg+xml" not in widget.data
        assert "FAILED" in picture.data["image/svg+xml"]
        assert gw.static_class(result.dispatch_id) in picture.data["text/html"]
    # a FAILED Result keeps its failure lines as the text a console shows
    assert widget.data["text/plain"].startswith("FAILED")
    assert "fails_on_three" in widget.data["text/plain"]
