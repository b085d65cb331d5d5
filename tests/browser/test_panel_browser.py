"""The redispatch panel in a real JupyterLab, driven with the mouse in Chromium.

The seed's workflow is defined with ``%%lattice`` and dispatched with
``%dispatch``; the graph's "Redispatch…" button opens the panel under it; the
test picks ``task_2_redefined`` for ``task_2`` in the dropdown, ticks reuse,
clicks Redispatch, and reads in the page that the new result is 6 with two
electrons reused.  The screenshot it takes goes to test-artifacts/; with
``COVALENT_NB_UPDATE_DOCS=1`` it also replaces the README's illustration
(docs/images/redispatch-panel.png), so an ordinary test run leaves the tree clean.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from seed_source import SEED_LATTICE_MAGIC, SEED_TASKS

pytestmark = pytest.mark.browser

DOCS_IMAGE = Path(__file__).resolve().parents[2] / "docs" / "images" / "redispatch-panel.png"

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


def test_choose_a_replacement_tick_reuse_and_redispatch(lab, artifacts):
    nb = lab.open_notebook("panel.ipynb", CELLS)
    nb.run_all()
    nb.wait_for_output("first result: 1.5")
    view = nb.locator(FIRST)
    view.locator('.cnb-legend [data-state="completed"][data-count="4"]').wait_for()

    # the graph's button opens the panel under the graph
    view.locator("button.cnb-redispatch").click()
    panel = nb.wait_for_selector(PANEL, state="visible")
    rows = panel.locator(".cnb-replace select")
    assert rows.count() == 3  # task_0, task_1, task_2
    dropdown = panel.locator(".cnb-replace-task_2 select")
    # (ipywidgets writes the labels' spaces as no-break spaces)
    labels = [o.replace("\xa0", " ").strip() for o in dropdown.locator("option").all_inner_texts()]
    assert labels[0] == "as dispatched" and "task_2_redefined" in labels
    assert "task_0" not in labels  # one argument: cannot take task_2's two
    assert panel.locator(".cnb-input-a input").input_value() == "1"
    assert panel.locator(".cnb-input-b input").input_value() == "2"

    reuse = panel.locator(".cnb-panel-reuse input[type=checkbox]")
    assert not reuse.is_checked()  # off by default
    dropdown.select_option(label="task_2_redefined")
    reuse.check()
    panel.locator("button.cnb-panel-redispatch").click()

    # the new dispatch's live graph and the summary, in the panel
    summary = panel.locator(".cnb-panel-summary .cnb-summary")
    summary.wait_for(timeout=60_000)
    head = summary.inner_text().strip()
    assert head == "COMPLETED · result 6 · 2 reused · 2 recomputed", head
    reasons = panel.locator(".cnb-summary-reasons").inner_text()
    assert "task_2_redefined (node 4): recomputed: replaced (task_2 -> task_2_redefined)" in reasons
    new_graph = panel.locator(".cnb-panel-output .cnb-graph")
    new_graph.locator('.cnb-legend [data-state="reused"][data-count="2"]').wait_for()
    new_graph.locator('.cnb-legend [data-state="completed"][data-count="2"]').wait_for()

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
    if os.environ.get("COVALENT_NB_UPDATE_DOCS") == "1":
        DOCS_IMAGE.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, DOCS_IMAGE)
