"""notebooks/tour.ipynb, executed in a real kernel with nbclient, shows what it says."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import nbformat
from nbclient import NotebookClient

TOUR = Path(__file__).resolve().parents[2] / "notebooks" / "tour.ipynb"
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
WIDGET = "application/vnd.jupyter.widget-view+json"


def by_tag(notebook) -> dict:
    return {cell.metadata["tags"][0]: cell for cell in notebook.cells
            if cell.cell_type == "code" and cell.metadata.get("tags")}


def stdout(cell) -> str:
    return "".join(o.get("text", "") for o in cell.outputs
                   if o.output_type == "stream" and o.name == "stdout")


def shown(cell) -> list:
    return [o["data"] for o in cell.outputs if o.output_type in ("display_data", "execute_result")]


def test_the_tour_runs_and_shows_each_step(tmp_path, monkeypatch):
    monkeypatch.setenv("COVALENT_NB_HOME", str(tmp_path / "home"))
    notebook = nbformat.read(TOUR, as_version=4)
    NotebookClient(notebook, timeout=180, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    cells = by_tag(notebook)
    for tag, cell in cells.items():
        assert not [o for o in cell.outputs if o.output_type == "error"], tag
        assert not [o for o in cell.outputs if o.get("name") == "stderr"], (tag, cell.outputs)

    # %%lattice defines, shows nothing
    assert cells["lattice"].outputs == []
    # %dispatch shows the live graph, with its static picture for saved notebooks
    graph, picture = shown(cells["dispatch"])  # the widget, then its picture (graph_widget.show_live)
    assert WIDGET in graph and "<svg" in picture["image/svg+xml"]
    assert stdout(cells["result"]) == "COMPLETED 1.5\n"

    # the failing task: FAILED with the task's own traceback, pointing at its line
    report = stdout(cells["failure-report"])
    assert report.startswith("FAILED\nnode(s) 3 (check_positive) failed; first error:\n")
    # formatted as IPython formats a cell's error: the cell, the line, its source
    assert re.search(r"Cell In\[\d+\], line 4, in check_positive\(x\)\n.*"
                     r"----> 4 +raise ValueError.*\nValueError: expected a positive number, got -4\n$",
                     report, re.S)
    assert len(shown(cells["failure"])) == 2  # the widget and its picture

    # the panel is shown, then driven as the button would
    panel, described = shown(cells["panel"])  # the form, then its description for exported pages
    assert WIDGET in panel and described["text/plain"].startswith("RedispatchPanel: redispatch")
    lines = stdout(cells["panel-code"]).splitlines()
    assert lines[0] == "6"
    assert lines[1] == "COMPLETED · result 6 · 2 reused · 2 recomputed"
    # what was recomputed and why first, then the reused nodes collapsed
    assert lines[2:] == ["recomputed, replaced (1 node)",
                         "  task_2_redefined (node 4): task_2 -> task_2_redefined",
                         "recomputed, bookkeeping (1 node): :postprocess:reconstruct",
                         "reused, same code and inputs (2 nodes): task_0, task_1"]

    # %redispatch with new inputs: the how-to's case III
    out = stdout(cells["redispatch-magic"]).splitlines()
    assert out[0] == "20" and out[1].startswith("{'reused': 1, 'recomputed': 3")

    # the history: a table, newest first, redispatches marked with their parent
    [history] = shown(cells["history"])
    page = history["text/html"]
    assert page.startswith('<table class="cnb-history">')
    assert page.count("<tr data-id=") == 4
    lines = history["text/plain"].splitlines()[2:]
    # the failed dispatch is marked, its failed electron named under it with the exception line
    assert "    ✖ check_positive (node 3): ValueError: expected a positive number, got -4" in lines
    assert "cnb-badge-failed" in page and 'class="cnb-history-failure"' in page
    rows = [line for line in lines if not line.startswith("    ✖ ")]
    # %redispatch, the panel's redispatch, the failing guarded, the first workflow
    assert [row.startswith("↳ ") for row in rows] == [True, True, False, False]
    assert [row.replace("↳ ", "").replace("✖ ", "").split()[1:3] for row in rows] == [
        ["workflow", "COMPLETED"], ["workflow", "COMPLETED"], ["guarded", "FAILED"],
        ["workflow", "COMPLETED"]]
    first_id = rows[3].split()[0]
    assert rows[0].split()[-3:] == [first_id, "1", "3"] and rows[1].split()[-3:] == [first_id, "2", "2"]

    # Dask, when installed; otherwise the cell says what to install
    setup = stdout(cells["dask-setup"])
    if importlib.util.find_spec("distributed") is None:
        assert "pip install 'covalent_nb[dask]'" in setup
        assert stdout(cells["dask-result"]) == "15 on ['local']\n"
    else:
        assert setup.startswith("tasks run on the Dask cluster at ")
        assert stdout(cells["dask-result"]) == "15 on ['dask']\n"
    assert len(shown(cells["dask-run"])) == 2  # the widget and its picture
