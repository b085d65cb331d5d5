"""A notebook exported with ``jupyter nbconvert --execute --to html`` shows the graph's
picture, offline, although nbclient saved the widget state (issue 11).

nbconvert prefers a widget view whose state is saved to any other representation,
and the page needs scripts from a CDN to draw it: offline, the widget's place is
empty.  The graph's static picture is therefore a second output of its own
(``graph_widget.show_live``), which the live widget hides where it renders.  The
test runs the real command, then loads the HTML in headless Chromium with every
network request refused, and looks at what is on screen.
"""

from __future__ import annotations

import json
import subprocess
import sys

import nbformat
import pytest

from .jupyter import VIEWPORT, new_notebook

pytestmark = pytest.mark.browser

CELLS = [
    """
    import covalent_nb as ct
    %load_ext covalent_nb

    @ct.electron
    def double(x):
        return 2 * x

    @ct.electron
    def add(a, b):
        return a + b

    @ct.lattice
    def flow(a, b):
        return add(double(a), double(b))
    """,
    "run = %dispatch flow(1, 2)",
    "result = run.result()\nresult",          # a Result shown as a cell's value
    "ct.show(run.dispatch_id)",               # the view ct.show returns
    "ct.redispatch_panel(run.dispatch_id)",   # the redispatch panel (ipywidgets)
]


@pytest.mark.timeout(300)
def test_nbconvert_html_with_widget_state_shows_the_pictures_offline(browser, tmp_path, artifacts,
                                                                     jupyter_home):
    path = tmp_path / "exported.ipynb"
    nbformat.write(new_notebook(CELLS), path)
    done = subprocess.run(
        [sys.executable, "-m", "jupyter", "nbconvert", "--execute", "--to", "html",
         "--ExecutePreprocessor.kernel_name=python3", str(path)],
        env=jupyter_home.env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    html_path = tmp_path / "exported.html"
    html = html_path.read_text()
    # The scenario of the issue: the widget state is in the page, and nbconvert chose
    # the widget view for each graph (a <script> only a CDN's manager can draw).
    assert "application/vnd.jupyter.widget-state+json" in html
    assert html.count('<script type="application/vnd.jupyter.widget-view+json">') == 4

    context = browser.new_context(viewport=VIEWPORT, offline=True)
    refused: list[str] = []

    def refuse(route):
        refused.append(route.request.url)
        route.abort()

    context.route(lambda url: not url.startswith("file:"), refuse)
    page = context.new_page()
    try:
        page.goto(html_path.as_uri(), wait_until="load")
        page.wait_for_timeout(500)
        pictures = page.locator(".cnb-static-graph svg.cnb-graph-svg")
        assert pictures.count() == 3
        for k in range(3):
            picture = pictures.nth(k)
            assert picture.is_visible()
            box = picture.bounding_box()
            assert box["width"] > 300 and box["height"] > 100, box
            text = picture.evaluate("(svg) => svg.textContent")
            assert "COMPLETED" in text and "3 / 3 electrons done" in text, text
        # every graph's picture sits right after its (empty) widget output
        assert page.locator(".jp-OutputArea-output .cnb-static-graph").count() == 3
        # and the panel is described, never shown as ipywidgets' repr of its children
        described = page.locator(".jp-OutputArea-output .cnb-panel-static")
        assert described.count() == 1 and described.is_visible()
        assert "Redispatch panel for flow" in described.inner_text()
        assert "children=" not in page.locator("body").inner_text()
        page.locator(".cnb-static-graph").first.scroll_into_view_if_needed()
        page.screenshot(path=str(artifacts.path("nbconvert-offline.png")), full_page=True)
    finally:
        context.close()
    # The page did try the CDN (the widget manager), and that was all it wanted.
    assert all("cdn" in url or "unpkg" in url or "jsdelivr" in url or "cdnjs" in url
               for url in refused), json.dumps(refused)
