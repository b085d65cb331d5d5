"""The redispatch panel in a real JupyterLab and Notebook 7, driven with the mouse in Chromium.

The seed's workflow is defined with ``%%lattice`` and dispatched with
``%dispatch``; the graph's "Redispatch…" button opens the panel under it; the
test picks ``task_2_redefined`` for ``task_2`` in the dropdown, ticks reuse,
clicks Redispatch, and reads in the page that the new result is 6 with two
electrons reused.  A fan-out redispatched with a new input shows the summary:
recomputed nodes first, grouped by reason, the reused ones collapsed; the
panel's toolbar stays on one line from 800 to 1400 px.  The screenshots go to
test-artifacts/; with ``COVALENT_NB_UPDATE_DOCS=1`` the JupyterLab ones also
replace the README's illustrations (docs/images/redispatch-panel.png and
redispatch-summary.png), so an ordinary test run leaves the tree clean.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from seed_source import SEED_LATTICE_MAGIC, SEED_TASKS

pytestmark = pytest.mark.browser

DOCS_IMAGE = Path(__file__).resolve().parents[2] / "docs" / "images" / "redispatch-panel.png"
SUMMARY_IMAGE = DOCS_IMAGE.with_name("redispatch-summary.png")

CELLS = [
    "%load_ext covalent_nb\n" + SEED_TASKS,
    SEED_LATTICE_MAGIC,
    '''
    run = %dispatch workflow(1, 2)
    print("first result:", run.result().result)
    ''',
]

FIRST = ".cnb-live-view >> nth=0"
PANEL = ".cnb-panel"


def _labels(dropdown) -> list:
    # (ipywidgets writes the labels' spaces as no-break spaces)
    return [o.replace("\xa0", " ").strip() for o in dropdown.locator("option").all_inner_texts()]


def test_choose_a_replacement_tick_reuse_and_redispatch(jupyter_frontend, artifacts):
    nb = jupyter_frontend.open_notebook("panel.ipynb", CELLS)
    nb.run_all()
    nb.wait_for_output("first result: 1.5")
    view = nb.locator(FIRST)
    view.locator('.cnb-legend [data-state="completed"][data-count="3"]').wait_for()  # the electrons

    # the graph's button opens the panel under the graph
    view.locator("button.cnb-redispatch").click()
    panel = nb.wait_for_selector(PANEL, state="visible")
    rows = panel.locator(".cnb-replace select")
    assert rows.count() == 3  # task_0, task_1, task_2
    dropdown = panel.locator(".cnb-replace-task_2 select")
    labels = _labels(dropdown)
    # as dispatched first, then ranked by how alike the name is: the variant, then the sibling
    assert labels[:3] == ["as dispatched", "task_2_redefined", "task_1"], labels
    assert "task_0" not in labels  # one argument: cannot take task_2's two
    assert panel.locator(".cnb-input-a input").input_value() == "1"
    assert panel.locator(".cnb-input-b input").input_value() == "2"

    reuse = panel.locator(".cnb-panel-reuse input[type=checkbox]")
    assert not reuse.is_checked()  # off by default
    dropdown.select_option(label="task_2_redefined")
    reuse.check()
    panel.locator("button.cnb-panel-redispatch").click()

    # the new dispatch's live graph and the summary, in the panel: recomputed first, by reason
    summary = panel.locator(".cnb-panel-summary .cnb-summary")
    summary.wait_for(timeout=60_000)
    head = summary.inner_text().strip()
    assert head == "COMPLETED · result 6 · 2 reused · 2 recomputed", head
    groups = panel.locator(".cnb-summary-group")
    first = groups.nth(0)
    assert first.get_attribute("data-reason") == "replaced"
    assert "task_2_redefined (node 4): task_2 -> task_2_redefined" in first.inner_text()
    assert groups.nth(groups.count() - 1).get_attribute("data-verdict") == "reused"
    new_graph = panel.locator(".cnb-panel-output .cnb-graph")
    new_graph.locator('.cnb-legend [data-state="reused"][data-count="2"]').wait_for()
    new_graph.locator('.cnb-legend [data-state="completed"][data-count="1"]').wait_for()

    # the kernel agrees with the page
    nb.run_cell('''
        from covalent_nb.dispatch.runtime import RUNTIME
        latest = ct.get_result(RUNTIME.registry.last_dispatch_id(), wait=True)
        print("kernel says:", latest.result, latest.reuse_summary()["reused"], latest.parent_dispatch_id == run.dispatch_id)
    ''')
    nb.wait_for_output("kernel says: 6 2 True")

    # tall enough for the graph, the panel and the new graph at once: an element
    # taller than the window is captured under Lab's toolbars
    nb.page.set_viewport_size({"width": 1200, "height": 2400})
    nb.locator(FIRST).scroll_into_view_if_needed()
    nb.page.wait_for_timeout(500)  # the graphs refit to their new size
    shot = nb.screenshot("redispatch-panel", selector=FIRST)
    assert Path(shot).stat().st_size > 10_000
    if os.environ.get("COVALENT_NB_UPDATE_DOCS") == "1" and jupyter_frontend.name == "lab":
        DOCS_IMAGE.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, DOCS_IMAGE)


FAN_OUT = [
    "%load_ext covalent_nb\n" + SEED_TASKS + '''
@ct.electron
def featurize(i, scale):
    return i * scale

@ct.electron
def featurize_fast(i, scale):
    return i * scale

@ct.electron
def total(xs, b):
    return sum(xs) + b

@ct.lattice
def pipeline(n, scale, b):
    return total([featurize(i, scale) for i in range(n)], task_1(task_0(b), b))
''',
    '''
    run = %dispatch pipeline(24, 2, 1)
    print("first result:", run.result().result)
    panel = ct.redispatch_panel(run.dispatch_id)
    panel
    ''',
]


def test_the_summary_puts_recomputed_nodes_first_and_collapses_the_reused(jupyter_frontend, artifacts):
    nb = jupyter_frontend.open_notebook("summary.ipynb", FAN_OUT)
    nb.run_all()
    nb.wait_for_output("first result: 554")
    panel = nb.wait_for_selector(PANEL, state="visible")
    # its static description (the next output, for exported pages) is hidden where the form is drawn
    assert nb.locator(".cnb-panel-static").count() == 1
    assert not nb.locator(".cnb-panel-static").is_visible()

    # the toolbar stays on one line at ordinary widths
    for width in (800, 1000, 1200, 1400):
        nb.page.set_viewport_size({"width": width, "height": 1000})
        nb.page.wait_for_timeout(200)
        reuse, redispatch, refresh = (panel.locator(selector).bounding_box() for selector in (
            ".cnb-panel-reuse", "button.cnb-panel-redispatch", "button.cnb-panel-refresh"))
        assert abs(redispatch["y"] - refresh["y"]) < 2, (width, redispatch, refresh)  # one row
        assert refresh["x"] > redispatch["x"] + redispatch["width"] - 1
        assert reuse["y"] + reuse["height"] <= redispatch["y"] + 1  # the option above the buttons
        # no label cut short: each button is as wide as its text needs
        for button in ("button.cnb-panel-redispatch", "button.cnb-panel-refresh"):
            assert panel.locator(button).evaluate("b => b.scrollWidth <= b.clientWidth"), (width, button)
        if width == 800:
            nb.screenshot("toolbar-800", selector=PANEL)
    nb.page.set_viewport_size({"width": 1200, "height": 1000})

    # featurize's dropdown: its variant first, then the rest
    labels = _labels(panel.locator(".cnb-replace-featurize select"))
    assert labels[:2] == ["as dispatched", "featurize_fast"], labels

    # new b: task_0, task_1 and total recomputed, with their reasons, before the 25 reused nodes
    panel.locator(".cnb-input-b input").fill("5")
    panel.locator(".cnb-input-b input").press("Enter")
    panel.locator(".cnb-panel-reuse input[type=checkbox]").check()
    panel.locator("button.cnb-panel-redispatch").click()
    summary = panel.locator(".cnb-panel-summary .cnb-summary")
    summary.wait_for(timeout=60_000)
    assert summary.inner_text().strip() == "COMPLETED · result 562 · 25 reused · 4 recomputed"
    groups = panel.locator(".cnb-summary-group")
    verdicts = [groups.nth(i).get_attribute("data-verdict") for i in range(groups.count())]
    assert verdicts == ["recomputed", "recomputed", "recomputed", "reused"], verdicts
    changed = groups.nth(0)
    assert changed.get_attribute("data-reason") == "input changed"
    assert changed.get_attribute("open") is not None  # recomputed: shown
    assert "task_0 (node 72): argument 'a'" in changed.inner_text()
    assert groups.nth(1).get_attribute("data-reason") == "upstream recomputed"
    assert "total (node 76): from task_1 (node 74)" in groups.nth(1).inner_text()
    reused = groups.nth(3)
    assert reused.get_attribute("data-count") == "25" and reused.get_attribute("open") is None
    assert "featurize ×24" in reused.locator("summary").inner_text()
    assert not reused.locator("li").first.is_visible()  # collapsed until clicked
    reused.locator("summary").click()
    reused.locator("li").first.wait_for(state="visible")
    reused.locator("summary").click()  # closed again for the picture

    nb.page.set_viewport_size({"width": 1000, "height": 2000})  # the whole panel in view
    panel.scroll_into_view_if_needed()
    nb.page.wait_for_timeout(300)
    shot = nb.screenshot("redispatch-summary", selector=".cnb-panel-summary")
    assert Path(shot).stat().st_size > 3_000
    whole = nb.screenshot("redispatch-summary-panel", selector=PANEL)
    assert Path(whole).stat().st_size > 10_000
    if os.environ.get("COVALENT_NB_UPDATE_DOCS") == "1" and jupyter_frontend.name == "lab":
        shutil.copyfile(whole, SUMMARY_IMAGE)
