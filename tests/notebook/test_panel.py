"""The redispatch panel's logic, in Python, on real dispatches.

The notebook is a real namespace: source code executed in a dict whose
``__name__`` is ``__main__``, exactly how a kernel defines a cell's functions.
The panel's widgets are driven as the browser drives them (a dropdown value,
a field's text, a checkbox, a button click) and the kernel side is read back.
"""

from __future__ import annotations

import logging
import re
import textwrap
import time

import pytest

import covalent_nb as ct
from covalent_nb.dispatch.runtime import RUNTIME
from covalent_nb.notebook.panel import LiveView, live_view
from covalent_nb.notebook.choices import (candidates, changed_since_dispatch, electron_rows,
                                          reuse_groups, reuse_report, reuse_report_html,
                                          similarity)
from covalent_nb.notebook.panel import RedispatchPanel
from covalent_nb.notebook.userspace import KEEP, UserInputError, parse_value
from covalent_nb.widgets import LatticeGraph
from seed_source import SEED_TASKS

NOTEBOOK = SEED_TASKS + """
import threading
from math import hypot

GATE = threading.Event()
FACTOR = 2

def scale(x):
    return x * FACTOR

@ct.electron
def scaled(a):
    return scale(a)

def two_args(x, y):
    return x - y

def one_arg(x):
    return x

def keyword_only(x, *, y):
    return x

def anything(*args):
    return args[0]

def _private(a, b):
    return a

class Shape:
    def __init__(self, a, b):
        pass

not_callable = 42

@ct.electron
def gated(a, b):
    if not GATE.wait(30):
        raise TimeoutError("the test never opened the gate")
    return a * b

@ct.electron
def explode(a, b):
    raise ValueError("task exploded")

@ct.lattice
def workflow(a, b):
    res_0 = task_0(a)
    res_1 = task_1(res_0, b)
    return task_2(res_1, b)

@ct.lattice
def other(a, b):
    return task_1(a, b)

@ct.lattice
def with_helper(a, b=10):
    return task_1(scaled(a), b)

class Point:
    def __init__(self, x):
        self.x = x
    def __eq__(self, other):
        return isinstance(other, Point) and other.x == self.x
"""


def define(namespace: dict, source: str) -> None:
    exec(compile(textwrap.dedent(source), "<cell>", "exec"), namespace)


@pytest.fixture
def ns() -> dict:
    namespace = {"__name__": "__main__"}
    define(namespace, NOTEBOOK)
    return namespace


@pytest.fixture
def parent(ns):
    result = ct.get_result(ct.dispatch(ns["workflow"])(1, 2), wait=True)
    assert result.result == 1.5
    return result


def wait_for(condition, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


# -- rows and candidates --------------------------------------------------------------------

def test_one_row_per_electron_in_call_order(parent):
    rows = electron_rows(parent)
    assert [(r.name, r.dispatched_name, r.nodes) for r in rows] == [
        ("task_0", "task_0", (0,)), ("task_1", "task_1", (2,)), ("task_2", "task_2", (4,))]
    assert not any(r.replaced for r in rows)


def test_candidates_are_notebook_callables_whose_signature_fits(ns, parent):
    rows = {r.name: r for r in electron_rows(parent)}
    # task_2 is called with two positional arguments
    # (lattices too: other and with_helper would run as sublattices)
    # ranked by how alike the name is: itself, a variant holding the name, a near sibling
    assert candidates(parent, rows["task_2"], ns) == [
        "task_2", "task_2_redefined", "task_1", "two_args", "with_helper", "other", "gated",
        "anything", "explode"]
    # left out: one_arg, scale and scaled (one parameter), keyword_only (y is keyword-only),
    # _private, the class, the imported hypot, the non-callable, workflow itself
    assert sorted(candidates(parent, rows["task_0"], ns)) == [
        "anything", "one_arg", "scale", "scaled", "task_0", "with_helper"]
    assert candidates(parent, rows["task_0"], ns)[0] == "task_0"


def test_equally_alike_candidates_rank_the_latest_definition_first(ns, parent):
    row = {r.name: r for r in electron_rows(parent)}["task_2"]
    define(ns, "def task_2_v1(a, b):\n    return a\n\ndef task_2_v2(a, b):\n    return b\n")
    ranked = candidates(parent, row, ns)
    assert ranked.index("task_2_v2") < ranked.index("task_2_v1")  # equally alike: the later first
    assert similarity("task_2_v1", row) == similarity("task_2_v2", row)
    assert similarity("task_2_redefined", row) > similarity("task_1", row) > similarity("explode", row)


def test_the_dropdown_lists_as_dispatched_then_the_current_definition_then_ranked(ns, parent):
    define(ns, "@ct.electron\ndef task_2(a, b):\n    return a - b\n")  # changed since dispatch
    panel = RedispatchPanel(parent, namespace=ns)
    labels = [label for label, _ in panel.replace["task_2"].options]
    assert labels[:4] == ["as dispatched", "task_2: current definition (changed since dispatch)",
                          "task_2_redefined", "task_1"]
    assert panel.candidates("task_2")[:3] == ["", "task_2", "task_2_redefined"]


def test_a_row_replaced_by_the_dispatch_shows_what_ran(ns, parent):
    child_id = ct.redispatch(parent.dispatch_id, replace_electrons={"task_2": ns["task_2_redefined"]})()
    child = ct.get_result(child_id, wait=True)
    [*_, row] = electron_rows(child)
    assert (row.name, row.dispatched_name, row.replaced) == ("task_2", "task_2_redefined", True)
    panel = RedispatchPanel(child_id, namespace=ns)
    assert panel.replace["task_2"].options[0] == ("as dispatched (task_2_redefined)", "")
    assert "replaced by task_2_redefined in this dispatch" in panel._notes["task_2"].value
    # the original is offered back
    assert "task_2" in panel.candidates("task_2")


# -- changed since dispatch --------------------------------------------------------------------

def test_a_redefined_electron_is_marked_changed_and_offered(ns, parent):
    panel = RedispatchPanel(parent, namespace=ns)
    assert panel.changed("task_2") is None
    assert "task_2" not in panel.candidates("task_2")  # unchanged: same as "as dispatched"
    define(ns, """
        @ct.electron
        def task_2(a, b):
            return a - b
    """)
    panel.refresh()
    assert panel.changed("task_2") == "body of task_2"
    assert panel.replace["task_2"].options[1] == (
        "task_2: current definition (changed since dispatch)", "task_2")
    assert "changed since dispatch: body of task_2" in panel._notes["task_2"].value
    assert panel.changed("task_0") is None and panel._notes["task_0"].value == ""


def test_running_the_same_cell_again_is_not_a_change(ns, parent):
    define(ns, """
        @ct.electron
        def task_2(a, b):
            return a / b  # a new comment, the same code
    """)
    assert changed_since_dispatch(parent, electron_rows(parent)[2], ns) is None


def test_a_changed_helper_counts_as_a_change(ns):
    result = ct.get_result(ct.dispatch(ns["with_helper"])(3), wait=True)
    assert result.result == 16
    row = next(r for r in electron_rows(result) if r.name == "scaled")
    assert changed_since_dispatch(result, row, ns) is None
    define(ns, "def scale(x):\n    return x * FACTOR + 1\n")
    assert changed_since_dispatch(result, row, ns) == "helper 'scale'"
    define(ns, "def scale(x):\n    return x * FACTOR\n")
    ns["FACTOR"] = 3
    assert changed_since_dispatch(result, row, ns) == "helper 'scale'"


def test_a_deleted_or_shadowed_definition_is_not_a_change(ns, parent):
    row = electron_rows(parent)[2]
    del ns["task_2"]
    assert changed_since_dispatch(parent, row, ns) is None
    ns["task_2"] = 5
    assert changed_since_dispatch(parent, row, ns) is None


# -- inputs -------------------------------------------------------------------------------------

def test_inputs_are_prefilled_with_the_parents_arguments(ns):
    parent = ct.get_result(ct.dispatch(ns["with_helper"])(ns["Point"](1) and 2), wait=True)
    panel = RedispatchPanel(parent, namespace=ns)
    assert list(panel.inputs) == ["a", "b"]
    assert panel.inputs["a"].value == "2"
    assert (panel.inputs["b"].value, panel.inputs["b"].placeholder) == ("", "default: 10")


def test_a_value_without_a_literal_stays_as_it_was(ns):
    point = ns["Point"](4)

    @ct.electron
    def x_of(p):
        return p.x

    @ct.lattice
    def takes_point(p, n=1):
        return x_of(p)

    parent = ct.get_result(ct.dispatch(takes_point)(point), wait=True)
    panel = RedispatchPanel(parent, namespace=ns)
    field = panel.inputs["p"]
    assert field.value == "" and field.placeholder.startswith("unchanged: <")
    panel.inputs["n"].value = "2"  # another input changes; p keeps its value
    new_id = panel.redispatch()
    child = ct.get_result(new_id, wait=True)
    # the dispatch runs on its own frozen copy of the point, equal in value, never the notebook's
    kept = child.inputs["args"][0]
    assert kept is not point and kept.x == point.x == 4 and child.result == 4


def test_parse_value_reads_literals_without_running_code_and_evaluates_expressions(ns):
    assert parse_value(" [1, 2] ", ns) == [1, 2]
    assert parse_value("", ns) is KEEP
    assert parse_value("FACTOR * 10", ns) == 20
    assert parse_value("Point(3)", ns) == ns["Point"](3)
    with pytest.raises(UserInputError, match=r"^SyntaxError: "):
        parse_value("1 +", ns)
    with pytest.raises(UserInputError, match=r"^NameError: name 'nope' is not defined$"):
        parse_value("nope + 1", ns)
    with pytest.raises(UserInputError, match=r"^ZeroDivisionError: division by zero$"):
        parse_value("1 / 0", ns)


def test_a_bad_input_shows_its_error_next_to_the_field_and_blocks_the_redispatch(ns, parent):
    panel = RedispatchPanel(parent, namespace=ns)
    before = len(RUNTIME.registry.all_results())
    panel.inputs["b"].value = "nope + 1"  # what the browser sends when the field is left
    assert "NameError: name &#x27;nope&#x27; is not defined" in panel._errors["b"].value
    assert panel.redispatch() is None
    assert panel.message_text == "fix the input(s) marked in red: b"
    panel.inputs["a"].value = "(1,"
    assert "SyntaxError" in panel._errors["a"].value
    assert panel.redispatch() is None and panel.message_text == "fix the input(s) marked in red: a, b"
    assert len(RUNTIME.registry.all_results()) == before  # nothing was dispatched
    panel.inputs["b"].value = "FACTOR * 2"  # fixed: the error goes, the expression is used
    panel.inputs["a"].value = "1"
    assert panel._errors["b"].value == "" and panel._errors["a"].value == ""
    new_id = panel.redispatch()
    assert ct.get_result(new_id, wait=True).result == (1 + 4) / 4


def test_varargs_fields_take_a_tuple(ns):
    define(ns, """
        @ct.lattice
        def spread(*values, **options):
            return task_0(values)
    """)
    parent = ct.get_result(ct.dispatch(ns["spread"])(1, 2, k=3), wait=True)
    panel = RedispatchPanel(parent, namespace=ns)
    assert panel.inputs["values"].value == "(1, 2)" and panel.inputs["options"].value == "{'k': 3}"
    assert panel.submit({}, {"values": "5"}) is None
    assert "*values takes a tuple or list, not int" in panel._errors["values"].value
    assert panel.submit({}, {"options": "{1: 2}"}) is None
    assert "**options takes a dict with str keys" in panel._errors["options"].value
    new_id = panel.submit({}, {"values": "[7, 8]", "options": "{'k': 3}"})
    assert ct.get_result(new_id, wait=True).result == (7, 8)


# -- redispatching -------------------------------------------------------------------------------

def test_choose_reuse_and_redispatch_gives_the_how_tos_answer(ns, parent):
    panel = RedispatchPanel(parent.dispatch_id, namespace=ns)
    assert panel.reuse.value is False  # off by default, as in Covalent
    panel.choose("task_2", "task_2_redefined")
    panel.reuse.value = True
    panel.button.click()  # what the browser's click does
    [new_id] = panel.dispatches
    child = ct.get_result(new_id, wait=True)
    assert child.result == 6 and child.parent_dispatch_id == parent.dispatch_id
    assert child.reuse_summary()["reused"] == 2
    wait_for(lambda: panel.summary.value != "")
    assert panel.summary_text.splitlines()[0] == "COMPLETED · result 6 · 2 reused · 2 recomputed"
    assert panel.summary_text.splitlines()[1:3] == [
        "recomputed, replaced (1 node)", "  task_2_redefined (node 4): task_2 -> task_2_redefined"]
    assert 'data-status="COMPLETED"' in panel.summary.value
    assert panel.message_text == f"dispatch {new_id} ended: COMPLETED"
    [view] = panel.output.children
    assert isinstance(view, LiveView) and view.graph.dispatch_id == new_id


def test_new_inputs_and_reuse_recompute_only_what_changed(ns, parent):
    panel = RedispatchPanel(parent, namespace=ns)
    new_id = panel.submit({"task_2": "task_2_redefined"}, {"b": "4"}, reuse=True)
    child = ct.get_result(new_id, wait=True)
    assert child.result == 20 and child.reused_nodes == [0]  # the how-to's case III
    assert panel.inputs["b"].value == "4"


def test_choosing_the_current_definition_of_a_changed_electron_runs_it(ns, parent):
    define(ns, "@ct.electron\ndef task_2(a, b):\n    return a - b\n")
    panel = RedispatchPanel(parent, namespace=ns)
    kept = ct.get_result(panel.submit({"task_2": ""}), wait=True)
    assert kept.result == 1.5  # "as dispatched" is the code that ran, not the new one
    current = ct.get_result(panel.submit({"task_2": "task_2"}), wait=True)
    assert current.result == 1


def test_the_button_returns_before_the_dispatch_ends(ns, parent):
    ns["GATE"].clear()
    panel = RedispatchPanel(parent, namespace=ns)
    panel.choose("task_2", "gated")
    started = time.monotonic()
    panel.button.click()
    assert time.monotonic() - started < 5
    [new_id] = panel.dispatches
    child = ct.get_result(new_id)
    assert not child.ended  # still running: the kernel is free meanwhile
    assert panel.summary.value == "" and panel.message_text.endswith("running…")
    ns["GATE"].set()
    assert ct.get_result(new_id, wait=True).result == 6
    wait_for(lambda: "result 6" in panel.summary.value)  # filled in by the end callback


def test_a_failed_redispatch_summarises_its_error(ns, parent):
    panel = RedispatchPanel(parent, namespace=ns)
    new_id = panel.submit({"task_2": "explode"}, reuse=True)
    ct.get_result(new_id, wait=True)
    wait_for(lambda: panel.summary.value != "")
    lines = panel.summary_text.splitlines()
    assert lines[0] == "FAILED · 2 reused · 1 recomputed"
    assert lines[1:3] == ["FAILED: 1 of 3 electron(s) failed",
                          "  explode (node 4): ValueError: task exploded"]
    assert "var(--jp-error-color1" in panel.summary.value
    assert "explode (node 4): ValueError: task exploded" in panel.summary.value


def test_the_rejected_name_path(ns, parent):
    ns["SIDE_EFFECTS"] = []
    define(ns, "def boom():\n    SIDE_EFFECTS.append('ran')\n    return task_2_redefined\n")
    panel = RedispatchPanel(parent, namespace=ns)
    before = len(RUNTIME.registry.all_results())
    rejected = {
        "boom()": "rejected: 'boom()' is not a name in the notebook; press Refresh to see what is there now",
        "__import__('os').getcwd": "rejected: \"__import__('os').getcwd\" is not a name in the notebook; "
                                   "press Refresh to see what is there now",
        "ct.electron": "rejected: 'ct.electron' is not a name in the notebook; press Refresh to see "
                       "what is there now",
        "ghost": "rejected: 'ghost' is not a name in the notebook; press Refresh to see what is there now",
        "not_callable": "rejected: not_callable is a int, not a function or electron",
    }
    for name, message in rejected.items():
        assert panel.submit({"task_2": name}, reuse=True) is None
        assert panel.message_text == message
    assert panel.submit({"task_9": "task_2_redefined"}) is None
    assert panel.message_text == "rejected: 'task_9' is not an electron of this lattice"
    assert panel.submit({"task_2": 3}) is None
    assert panel.message_text == "rejected: the choice for task_2 is not a name"
    # a name that was offered, then deleted before the click
    panel.choose("task_2", "task_2_redefined")
    del ns["task_2_redefined"]
    assert panel.redispatch() is None
    assert panel.message_text.startswith("rejected: 'task_2_redefined' is not a name in the notebook")
    assert ns["SIDE_EFFECTS"] == [] and len(RUNTIME.registry.all_results()) == before and panel.dispatches == []


def test_a_signature_that_does_not_fit_is_refused_by_the_kernel(ns, parent):
    panel = RedispatchPanel(parent, namespace=ns)
    assert panel.submit({"task_2": "one_arg"}) is None  # not offered, but the browser sent it
    assert panel.message_text.startswith(
        "not redispatched: replacement one_arg(x) cannot take the arguments of task_2(a, b)")
    with pytest.raises(ValueError, match="'one_arg' is not offered for task_2"):
        panel.choose("task_2", "one_arg")


def test_an_error_in_the_lattice_body_is_one_line(ns):
    define(ns, """
        @ct.lattice
        def fragile(a):
            if a > 1:
                raise RuntimeError("a must be at most 1")
            return task_0(a)
    """)
    parent = ct.get_result(ct.dispatch(ns["fragile"])(1), wait=True)
    panel = RedispatchPanel(parent, namespace=ns)
    assert panel.submit({}, {"a": "5"}) is None
    assert panel.message_text == \
        "not redispatched: RuntimeError: a must be at most 1 (in fragile, line 5)"


# -- ways in ----------------------------------------------------------------------------------------

def test_function_api_defaults_to_the_last_dispatch(ns, parent):
    panel = ct.redispatch_panel(namespace=ns)
    assert panel.parent.dispatch_id == RUNTIME.registry.last_dispatch_id()
    assert RedispatchPanel(parent.dispatch_id, ns).parent is parent
    assert "cnb-panel" in panel._dom_classes
    with pytest.raises(ValueError, match="no dispatch with id 'nope'"):
        RedispatchPanel("nope", ns)


def test_the_graph_button_opens_the_panel_under_a_live_view(ns, parent, caplog):
    view = live_view(parent)
    view.graph.open_panel()
    [panel] = view.slot.children
    assert isinstance(panel, RedispatchPanel) and panel.parent is parent
    # a graph shown some other way has nowhere to put it: it says what to run instead
    alone = LatticeGraph(parent)
    with caplog.at_level(logging.WARNING):
        alone.open_panel()
    assert f"run ct.redispatch_panel('{parent.dispatch_id}') in a cell" in caplog.text


def test_the_reuse_report_lists_every_recomputed_node_first_grouped_by_reason(ns):
    define(ns, """
        @ct.electron
        def featurize(i):
            return i * 2

        @ct.electron
        def total(xs, b):
            return sum(xs) + b

        @ct.lattice
        def wide(n, b):
            return total([featurize(i) for i in range(n)], b)
    """)
    parent = ct.get_result(ct.dispatch(ns["wide"])(20, 1), wait=True)
    child = ct.get_result(ct.redispatch(parent.dispatch_id, reuse_previous_results=True)(20, 5),
                          wait=True)
    assert child.result == 385
    lines = reuse_report(child)
    assert lines[0] == "COMPLETED · result 385 · 21 reused · 2 recomputed"
    # the recomputed electron and its reason come before anything reused, and nothing hides it
    assert lines[1:] == ["recomputed, input changed (1 node)", "  total (node 40): argument 'b'",
                         "recomputed, bookkeeping (1 node): :postprocess:reconstruct",
                         # the reused nodes: one line, counted
                         "reused, same code and inputs (21 nodes): featurize ×20, :electron_list:"]
    assert not any("more node(s)" in line for line in lines)
    groups = reuse_groups(child)
    assert [g.verdict for g in groups] == ["recomputed", "recomputed", "reused"]
    html_summary = reuse_report_html(child)
    # HTML: recomputed groups open, reused collapsed in a closed <details> with its count
    assert html_summary.index('data-reason="input changed"') < html_summary.index('data-verdict="reused"')
    assert '<details class="cnb-summary-group cnb-summary-recomputed" data-verdict="recomputed" ' \
           'data-reason="input changed" data-count="1" open>' in html_summary
    assert 'data-verdict="reused" data-reason="same code and inputs" data-count="21">' in html_summary


def test_many_recomputed_nodes_are_grouped_not_hidden(ns):
    define(ns, """
        @ct.lattice
        def wide(n):
            return [task_0(i) for i in range(n)]
    """)
    parent = ct.get_result(ct.dispatch(ns["wide"])(60), wait=True)
    lines = reuse_report(parent)  # every node recomputed, for one reason
    assert lines[1] == "recomputed, first dispatch (60 nodes)"
    assert lines[2] == "  task_0 (node 0)"
    assert lines[52] == "  and 10 more first dispatch: task_0 ×10"
    assert lines[53] == "recomputed, bookkeeping (2 nodes): :postprocess:reconstruct, :electron_list:"
    assert reuse_report_html(parent).count("<li data-node-id=") == 60 + 2



# -- a failed dispatch's live view ------------------------------------------------------------
def test_a_failed_dispatch_is_marked_once_inside_the_graph_not_again_above_it(ns, parent):
    failed = ct.get_result(ct.redispatch(parent.dispatch_id,
                                         replace_electrons={"task_2": ns["explode"]})(), wait=True)
    view = live_view(failed)
    assert list(view.children) == [view.graph, view.slot]  # no second banner over the graph's own
    (failure,) = view.graph.failures
    assert (failure["node_id"], failure["name"], failure["line"]) == (4, "explode", "ValueError: task exploded")
    assert "ValueError: task exploded" in failure["error"]


def test_the_graphs_banner_appears_when_a_running_dispatch_fails(ns, parent):
    ns["GATE"].clear()
    define(ns, "@ct.electron\ndef gated_explode(a, b):\n    GATE.wait(30)\n    raise KeyError(a)\n")
    running = ct.get_result(ct.redispatch(parent.dispatch_id,
                                          replace_electrons={"task_2": ns["gated_explode"]})())
    view = live_view(running)
    assert view.graph.failures == []
    ns["GATE"].set()
    running.wait(30)
    wait_for(lambda: view.graph.failures != [])
    assert [(f["name"], f["line"]) for f in view.graph.failures] == [("gated_explode", "KeyError: 3")]


def test_the_text_summary_of_a_failed_dispatch_names_what_failed(ns, parent):
    from covalent_nb.notebook.handle import text_summary

    failed = ct.get_result(ct.redispatch(parent.dispatch_id,
                                         replace_electrons={"task_2": ns["explode"]})(), wait=True)
    lines = text_summary(failed).splitlines()
    assert lines[0].startswith(f"dispatch {failed.dispatch_id} of workflow: FAILED")
    assert lines[1:] == ["FAILED: 1 of 3 electron(s) failed",
                         "  explode (node 4): ValueError: task exploded"]
