"""The redispatch panel in an exported notebook: a static description, never ipywidgets' repr.

A real notebook is executed by ``jupyter nbconvert --execute`` (a real
kernel), then exported to HTML twice: as nbconvert writes it (with the
widgets' state, which the page renders with the widgets' own JavaScript) and
as a notebook saved without widget state (JupyterLab's default, GitHub),
where nbconvert falls back to the output's ``text/html``.
"""

from __future__ import annotations

import json
import subprocess
import sys

import nbformat
from nbconvert import HTMLExporter

CELLS = [
    "import covalent_nb as ct\n"
    "@ct.electron\ndef task_1(a, b):\n    return a + b\n"
    "@ct.electron\ndef task_2(a, b):\n    return a / b\n"
    "@ct.lattice\ndef workflow(a, b):\n    return task_2(task_1(a, b), b)\n"
    "dispatch_id = ct.dispatch(workflow)(1, 2)\n"
    "print(dispatch_id, ct.get_result(dispatch_id, wait=True).result)\n",
    "ct.redispatch_panel(dispatch_id)\n",
]


def test_an_exported_panel_says_what_it_is_and_which_dispatch(tmp_path):
    source = tmp_path / "panel.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS]),
                   source)
    subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--execute", "--to", "notebook",
                    "--output", "executed.ipynb", str(source)], check=True, cwd=tmp_path,
                   capture_output=True, timeout=240)
    executed = nbformat.read(tmp_path / "executed.ipynb", as_version=4)
    dispatch_id, result = executed.cells[0].outputs[0]["text"].split()
    assert result == "1.5"
    form, described = executed.cells[1].outputs  # the form, then its static description
    assert "application/vnd.jupyter.widget-view+json" in form["data"]  # a live notebook gets the form
    data = described["data"]
    assert data["text/plain"].startswith(f"RedispatchPanel: redispatch workflow (dispatch {dispatch_id})")
    assert "children=" not in data["text/plain"] + form["data"]["text/plain"]
    # the form hides its description where it is drawn
    model_id = form["data"]["application/vnd.jupyter.widget-view+json"]["model_id"]
    assert f'class="cnb-panel-static cnb-panel-static-{model_id}"' in data["text/html"]
    state = json.dumps(executed.metadata["widgets"])
    assert f".cnb-panel-static-{model_id} {{ display: none !important; }}" in state

    # as nbconvert exports it, with the widget state (drawn by scripts from a CDN, so nothing
    # offline): the description is in the page as an output of its own
    page, _ = HTMLExporter().from_notebook_node(executed)
    assert "RedispatchPanel(children=" not in page and "children=(" not in page
    assert f'<div class="cnb-panel-static cnb-panel-static-{model_id}"' in page

    # saved without widget state: the static description is what the page shows
    del executed.metadata["widgets"]
    page, _ = HTMLExporter().from_notebook_node(executed)
    assert "RedispatchPanel(children=" not in page
    assert '<div class="cnb-panel-static cnb-panel-static-' in page
    assert f"<b>Redispatch panel</b> for <code>workflow</code>, dispatch <code>{dispatch_id}</code>" in page
    assert "<li><code>task_1</code></li><li><code>task_2</code></li>" in page
    assert "<code>a=1</code>, <code>b=2</code>" in page
