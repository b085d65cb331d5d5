"""The graph at real scale, in a real JupyterLab and Notebook 7 in Chromium (issue 12).

* a 5,000-electron fan-out is one group node with its count and state words; the
  header counts electrons; labels read at 11 px or more at the first view; the
  group expands page by page; search centres a node, also one inside a group;
* a failing workflow shows a banner naming the failed electron with its exception
  line, jumping to it on click, the traceback one click away; the selected failed
  node keeps its red (selection is a ring), the details pane lies over the canvas
  without resizing it, code scrolls instead of breaking tokens, times are local;
* Cancel while the dispatch runs ends it CANCELLED;
* ``%dispatch``'s end-of-dispatch refresh never redraws the live graph: the
  selection and the zoom survive the end (issue 11), and the static picture under
  it stays hidden where the widget renders.

Each test saves screenshots in test-artifacts/.
"""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.browser

FAN_OUT = '''
import os
import time
import covalent_nb as ct
%load_ext covalent_nb

GATE = {gate!r}

@ct.electron
def featurize(i):
    if i in (1234, 4321):  # two slow ones: the group shows them running
        deadline = time.monotonic() + 300
        while not os.path.exists(GATE) and time.monotonic() < deadline:
            time.sleep(0.05)
    return i * i

@ct.electron
def summarize(features):
    return sum(features)

@ct.lattice
def pipeline(n):
    return summarize([featurize(i) for i in range(n)])
'''

FAILING = '''
import covalent_nb as ct
%load_ext covalent_nb

@ct.electron
def load():
    return {"X_train": [[1, 2]] * 4, "y_train": [0, 1, 0, 1], "X_test": [[1, 2, 3]], "y_test": [1]}

@ct.electron
def fit(X, y, c):
    return {"c": c, "features": len(X[0])}

@ct.electron
def evaluate(model, X, y):
    if len(X[0]) != model["features"]:
        raise ValueError(f"X has {len(X[0])} features, but the model expects {model['features']}")
    return 1.0

@ct.lattice
def experiment(cs):
    data = load()
    models = [fit(data["X_train"], data["y_train"], c) for c in cs]
    return [evaluate(m, data["X_test"], data["y_test"]) for m in models[:1]]
'''


def gated(gate_dir) -> str:
    return f'''
import os
import time
import covalent_nb as ct
%load_ext covalent_nb

def wait_for(name):
    deadline = time.monotonic() + 300
    while not os.path.exists(os.path.join({str(gate_dir)!r}, name)) and time.monotonic() < deadline:
        time.sleep(0.05)

@ct.electron
def first(x):
    wait_for("go")
    return x

@ct.electron
def second(x):
    return x + 1

@ct.electron
def third(x):
    return x * 2

@ct.lattice
def slow(x):
    return third(second(first(x)))
'''


def graph(dispatch_id: str) -> str:
    return f'.cnb-graph[data-dispatch-id="{dispatch_id}"]'


def dispatch_id_of(nb, variable: str) -> str:
    nb.run_cell(f'print("id:", {variable}.dispatch_id)')
    text = nb.wait_for_output("id: ")
    return re.search(r"id: ([0-9a-f-]{36})", text).group(1)


def wait_for_status(nb, dispatch_id: str, status: str, timeout: float = 90) -> None:
    nb.wait_for_selector(f'{graph(dispatch_id)} .cnb-status[data-status="{status}"]', timeout=timeout)


def evaluate(nb, dispatch_id: str, script: str):
    return nb.locator(graph(dispatch_id)).first.evaluate(script)


SMALLEST_LABEL = """(root) => {
    const cy = root.__cy;
    let smallest = Infinity;
    cy.nodes(':visible').forEach((n) => {
        const size = parseFloat(n.style('font-size')) * cy.zoom();
        if (n.data('label')) smallest = Math.min(smallest, size);
    });
    return {smallest, zoom: cy.zoom(), canvas: cy.container().clientHeight};
}"""


def test_a_5000_fan_out_is_one_group_that_expands_page_by_page(jupyter_frontend, tmp_path):
    gate = tmp_path / "gate"
    nb = jupyter_frontend.open_notebook("fan_out.ipynb", [FAN_OUT.format(gate=str(gate)),
                                                          "run = %dispatch pipeline(5000)"])
    nb.run_all()
    dispatch_id = dispatch_id_of(nb, "run")
    root = graph(dispatch_id)
    # live: the group counts its members as they run
    nb.wait_until(lambda: evaluate(nb, dispatch_id, "(root) => root.__cy.getElementById('g0').data('summary')"),
                  done=lambda s: s == "featurize ×5,000: 4,998 done, 2 running", timeout=90,
                  what="the group's live summary")
    assert "4,998 / 5,001 electrons done · 2 running" in nb.locator(f"{root} .cnb-progress").first.inner_text()
    assert nb.locator(f"{root} button.cnb-cancel").first.is_visible()
    nb.locator(root).first.scroll_into_view_if_needed()
    nb.screenshot("grouped-running", selector=root)
    gate.touch()
    wait_for_status(nb, dispatch_id, "COMPLETED")
    group = nb.wait_until(lambda: evaluate(nb, dispatch_id, """(root) => {
        const g = root.__cy.getElementById('g0');
        return g.length ? {count: g.data('count'), summary: g.data('summary'), state: g.data('state'),
                           nodes: root.__cy.nodes().length} : null;
    }"""), done=lambda g: g and g["summary"].endswith("5,000 done"), what="the group's summary")
    assert group == {"count": 5000, "summary": "featurize ×5,000: 5,000 done", "state": "completed",
                     "nodes": 4}  # the group, the list, summarize, the result
    # the header: the id, the elapsed time, electrons (not bookkeeping nodes), per function
    progress = nb.locator(f"{root} .cnb-progress").first
    assert progress.get_attribute("data-done") == "5001" and progress.get_attribute("data-total") == "5001"
    assert "5,001 / 5,001 electrons done" in progress.inner_text()
    assert nb.locator(f"{root} .cnb-dispatch-id").first.inner_text() == dispatch_id
    assert re.match(r"^\d", nb.locator(f"{root} .cnb-elapsed").first.inner_text())
    bar = nb.locator(f'{root} .cnb-functions [data-function="featurize"]').first
    assert bar.get_attribute("data-done") == "5000" and bar.get_attribute("data-total") == "5000"
    assert not nb.locator(f"{root} button.cnb-cancel").first.is_visible()  # it has ended
    # readable at first view: every label at 11 px or more; the canvas follows the graph
    view = evaluate(nb, dispatch_id, SMALLEST_LABEL)
    assert view["smallest"] >= 11 and 200 <= view["canvas"] <= 640, view
    # where the widget renders, the static picture under it is hidden
    static = nb.locator(f".cnb-static-{dispatch_id}").first
    static.wait_for(state="attached")
    assert not static.is_visible()
    nb.locator(root).first.scroll_into_view_if_needed()
    nb.screenshot("grouped", selector=root)

    # a click on the group draws its first page of 100 members, node by node
    nb.click_cy_node("g0", graph_selector=root)
    nb.wait_for_selector(f'{root} .cnb-groupbar [data-group="g0"]', state="visible", timeout=30)
    def drawn():
        return evaluate(nb, dispatch_id, """(root) => root.__cy.nodes().filter(
            (n) => n.data('label') && n.data('label').startsWith('featurize(i=')).map((n) => n.id())""")

    first_page = nb.wait_until(drawn, done=lambda ids: len(ids) == 100, what="the first page")
    assert "0" in first_page and "198" in first_page and "200" not in first_page
    assert "1 / 100" not in nb.locator(f"{root} .cnb-groupbar").first.inner_text()
    assert "nodes 1–100 drawn (page 1 of 50)" in nb.locator(f"{root} .cnb-groupbar").first.inner_text()
    rest = evaluate(nb, dispatch_id, "(root) => root.__cy.getElementById('g0').data('label')")
    assert rest.startswith("featurize (rest) ×4,900\n4,900 done"), rest
    nb.screenshot("expanded", selector=root)
    nb.locator(f'{root} .cnb-groupbar [data-group="g0"] button.cnb-page-next').first.click()
    second_page = nb.wait_until(drawn, done=lambda ids: "200" in ids, what="the second page")
    assert len(second_page) == 100 and "0" not in second_page
    nb.locator(f'{root} .cnb-groupbar [data-group="g0"] button.cnb-collapse').first.click()
    nb.wait_until(lambda: evaluate(nb, dispatch_id, "(root) => root.__cy.nodes().length"),
                  done=lambda n: n == 4, what="the group collapsed again")

    # search: a name centres and selects its node; a node number inside the group expands its page
    search = nb.locator(f"{root} input.cnb-search").first
    search.fill("summar")
    search.press("Enter")
    nb.wait_for_selector(f'{root} .cnb-details[data-node-id="10000"]:not([data-loading="true"])',
                         state="visible", timeout=30)
    assert nb.locator(f"{root} .cnb-search-status").first.inner_text() == "1 / 1"
    centred = evaluate(nb, dispatch_id, """(root) => {
        const cy = root.__cy, n = cy.getElementById('10000'), p = n.renderedPosition();
        const pane = root.querySelector('.cnb-details').offsetWidth;
        return {dx: Math.abs(p.x - (cy.width() - pane) / 2), dy: Math.abs(p.y - cy.height() / 2),
                selected: n.hasClass('cnb-selected')};
    }""")
    assert centred["dx"] < 3 and centred["dy"] < 3 and centred["selected"], centred
    search.fill("4000")
    search.press("Enter")
    nb.wait_for_selector(f'{root} .cnb-details[data-node-id="4000"]:not([data-loading="true"])',
                         state="visible", timeout=30)
    assert nb.locator(f'{root} .cnb-details [data-field="node_name"]').first.inner_text() == "featurize"
    assert nb.locator(f'{root} .cnb-groupbar [data-group="g0"]').first.is_visible()
    nb.screenshot("search-in-group", selector=root)


def test_a_failure_banner_names_the_electron_and_jumps_to_it(jupyter_frontend):
    nb = jupyter_frontend.open_notebook("failing.ipynb", [FAILING, "bad = %dispatch experiment([0.1, 1.0, 10.0])"])
    nb.run_all()
    dispatch_id = dispatch_id_of(nb, "bad")
    wait_for_status(nb, dispatch_id, "FAILED")
    root = graph(dispatch_id)
    banner = nb.wait_for_selector(f"{root} .cnb-failures .cnb-failure", state="visible", timeout=30)
    node_id = banner.get_attribute("data-node-id")
    assert nb.locator(f"{root} .cnb-failure-name").first.inner_text() == f"evaluate (node {node_id})"
    assert nb.locator(f"{root} .cnb-failure-line").first.inner_text() == \
        "ValueError: X has 3 features, but the model expects 2"
    # readable: bookkeeping as code, repeated names told apart, labels at 11 px or more
    labels = evaluate(nb, dispatch_id, "(root) => root.__cy.nodes().map((n) => n.data('label'))")
    assert 'load["X_train"]' in labels and "fit(c=0.1)" in labels and "fit(c=10.0)" in labels
    assert evaluate(nb, dispatch_id, SMALLEST_LABEL)["smallest"] >= 11
    # the traceback is one click away
    nb.locator(f"{root} .cnb-failure-details summary").first.click()
    traceback = nb.locator(f"{root} pre.cnb-failure-traceback").first
    assert traceback.is_visible() and "ValueError" in traceback.inner_text()
    nb.locator(root).first.scroll_into_view_if_needed()
    nb.screenshot("failure-banner", selector=root)

    width_before = evaluate(nb, dispatch_id, "(root) => root.__cy.container().clientWidth")
    nb.locator(f"{root} .cnb-failure-name").first.click()
    nb.wait_for_selector(f'{root} .cnb-details[data-node-id="{node_id}"]:not([data-loading="true"])',
                         state="visible", timeout=30)
    node = evaluate(nb, dispatch_id, f"""(root) => {{
        const cy = root.__cy, n = cy.getElementById('{node_id}'), p = n.renderedPosition();
        const pane = root.querySelector('.cnb-details');
        return {{selected: n.hasClass('cnb-selected'), fill: n.style('background-color'),
                outline: n.style('outline-color'), palette: root.__cy.scratch('_') || null,
                x: p.x, visibleWidth: cy.width() - pane.offsetWidth, width: cy.container().clientWidth}};
    }}""")
    assert node["selected"]
    assert node["fill"] == "rgb(229,72,77)"  # still the failed red (PALETTE["failed"]), not violet
    assert node["outline"] not in ("rgb(124,92,214)", "rgb(229,72,77)")  # a ring apart from states
    assert 0 < node["x"] < node["visibleWidth"], node  # centred beside the pane, not under it
    assert node["width"] == width_before  # the pane lies over the canvas; the canvas keeps its size
    pane = f"{root} .cnb-details"
    assert "ValueError" in nb.locator(f'{pane} [data-field="error"]').first.inner_text()
    source = nb.locator(f'{pane} [data-field="source"]').first
    assert source.evaluate("(el) => getComputedStyle(el).whiteSpace") == "pre"  # never breaks tokens
    assert source.evaluate("(el) => getComputedStyle(el).overflowX") == "auto"
    start = nb.locator(f'{pane} [data-field="start_time"]').first.inner_text()
    assert re.fullmatch(r"\d{1,2}:\d{2}:\d{2}\.\d{3}", start), start  # the browser's local time
    nb.screenshot("failure-selected", selector=root)


def test_cancel_ends_a_running_dispatch(jupyter_frontend, tmp_path):
    gates = tmp_path / "gates"
    gates.mkdir()
    nb = jupyter_frontend.open_notebook("cancel.ipynb", [gated(gates), "run = %dispatch slow(1)"])
    nb.run_all()
    dispatch_id = dispatch_id_of(nb, "run")
    wait_for_status(nb, dispatch_id, "RUNNING")
    root = graph(dispatch_id)
    cancel = nb.wait_for_selector(f"{root} button.cnb-cancel", state="visible", timeout=30)
    cancel.click()
    # Python called ct.cancel; the running task goes on until it returns
    nb.wait_for_selector(f'{root} button.cnb-cancel[data-requested="true"]:disabled', timeout=30)
    assert nb.locator(f'{root} button.cnb-cancel').first.inner_text() == "Cancelling…"
    assert nb.locator(f'{root} .cnb-legend [data-state="running"]').first.get_attribute("data-count") == "1"
    nb.screenshot("cancelling", selector=root)
    (gates / "go").touch()  # the running task finishes, nothing else starts, the dispatch ends
    wait_for_status(nb, dispatch_id, "CANCELLED")
    nb.wait_for_selector(f'{root} .cnb-legend [data-state="cancelled"][data-count="2"]', timeout=30)
    assert not nb.locator(f"{root} button.cnb-cancel").first.is_visible()
    nb.screenshot("cancelled", selector=root)


def test_the_end_of_a_dispatch_keeps_the_selection_and_the_zoom(jupyter_frontend, tmp_path):
    gates = tmp_path / "gates"
    gates.mkdir()
    nb = jupyter_frontend.open_notebook("keep_view.ipynb", [gated(gates), "run = %dispatch slow(1)"])
    nb.run_all()
    dispatch_id = dispatch_id_of(nb, "run")
    wait_for_status(nb, dispatch_id, "RUNNING")
    root = graph(dispatch_id)
    nb.click_cy_node("0", graph_selector=root)
    nb.wait_for_selector(f'{root} .cnb-details[data-node-id="0"]', state="visible", timeout=30)
    nb.locator(f"{root} button.cnb-zoom-in").first.click()
    before = evaluate(nb, dispatch_id, """(root) => {
        root.__keep = 'the same element';
        const cy = root.__cy;
        return {zoom: cy.zoom(), pan: cy.pan()};
    }""")
    (gates / "go").touch()
    wait_for_status(nb, dispatch_id, "COMPLETED")
    nb.page.wait_for_timeout(1500)  # past the end-of-dispatch refresh
    after = evaluate(nb, dispatch_id, """(root) => {
        const cy = root.__cy;
        return {keep: root.__keep || null, zoom: cy.zoom(), pan: cy.pan(),
                selected: cy.getElementById('0').hasClass('cnb-selected'),
                pane: root.querySelector('.cnb-details').dataset.nodeId,
                graphs: document.querySelectorAll('.cnb-graph').length};
    }""")
    assert after["keep"] == "the same element"  # never re-rendered
    assert after["zoom"] == before["zoom"] and after["pan"] == before["pan"]
    assert after["selected"] and after["pane"] == "0"
    assert after["graphs"] == 1
    assert not nb.locator(f".cnb-static-{dispatch_id}").first.is_visible()
    nb.screenshot("kept-view", selector=root)
