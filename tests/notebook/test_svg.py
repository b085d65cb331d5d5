"""The static SVG that saved notebooks show without a kernel."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import nbformat
import pytest
from nbconvert import HTMLExporter

import covalent_nb as ct
from covalent_nb.notebook.graph_widget import LatticeGraph, graph_payload
from covalent_nb.notebook.states import PALETTE, STATES
from covalent_nb.notebook.svg import MAX_DRAWN_NODES, graph_svg, text_colour_on

SVG = "{http://www.w3.org/2000/svg}"


@ct.electron
def double(x):
    return 2 * x


@ct.electron
def add(a, b):
    return a + b


@ct.electron
def explode(x):
    raise RuntimeError("no")


@ct.lattice
def flow(a, b):
    return add(double(a), double(b))


@ct.lattice
def failing(a):
    return explode(double(a))


@ct.electron
def step(x):
    return x


@ct.lattice
def wide(n):
    return [step(i) for i in range(n)]


def legend(root) -> dict:
    return {g.get("data-state"): g for g in root.iter(f"{SVG}g") if g.get("data-state") and
            g.find(f"{SVG}text") is not None and g.get("data-count") is not None}


def node_groups(root) -> dict:
    return {g.get("data-state"): g for g in root.iter(f"{SVG}g") if g.get("class") == "cnb-nodes"}


def test_a_completed_dispatch_draws_every_node_in_the_completed_colour_with_its_legend():
    result = ct.dispatch_sync(flow)(1, 2)
    svg = LatticeGraph(result).to_svg()
    root = ET.fromstring(svg)  # well-formed XML
    items = legend(root)
    assert set(items) == set(STATES)
    # Counted: double, double, add, postprocess (parameters are not counted).
    assert items["completed"].find(f"{SVG}text").text == "completed 4"
    assert items["completed"].get("data-count") == "4"
    assert items["pending"].find(f"{SVG}text").text == "pending 0"
    assert items["completed"].find(f"{SVG}rect").get("fill") == PALETTE["completed"]
    groups = node_groups(root)
    assert set(groups) == {"completed"}
    drawn = groups["completed"]
    assert drawn.get("fill") == PALETTE["completed"]
    boxes, dots = drawn.findall(f"{SVG}rect"), drawn.findall(f"{SVG}circle")
    assert len(boxes) == 4 and len(dots) == 2  # three electrons and the result chip; two parameters
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert "double(x=1)" in texts and "add" in texts and "1" in texts and "2" in texts
    assert "result" in texts
    assert "COMPLETED" in texts


def test_a_failed_node_is_red_and_counted_and_its_dependants_are_not_completed():
    result = ct.dispatch_sync(failing)(1)
    assert result.status == "FAILED"
    root = ET.fromstring(LatticeGraph(result).to_svg())
    items = legend(root)
    assert items["failed"].find(f"{SVG}text").text == "failed 1"
    groups = node_groups(root)
    assert groups["failed"].get("fill") == PALETTE["failed"]
    assert len(groups["failed"].findall(f"{SVG}rect")) == 1


def test_states_replaced_nodes_and_hidden_parameters():
    graph = flow.build_graph(1, 2)
    payload = graph_payload(graph)
    # double(1), :parameter:1, double(2), :parameter:2, add, postprocess
    states = ["completed", "completed", "reused", "completed", "running", "pending"]
    root = ET.fromstring(graph_svg(payload, states, status="RUNNING", dispatch_id="abc",
                                   replaced=[4]))
    items = legend(root)
    assert items["reused"].find(f"{SVG}text").text == "reused 1"
    assert items["running"].find(f"{SVG}text").text == "running 1"
    assert items["completed"].find(f"{SVG}text").text == "completed 1"
    assert node_groups(root)["reused"].get("fill") == PALETTE["reused"]
    marker = [g for g in root.iter(f"{SVG}g") if g.get("data-marker") == "replaced"]
    assert marker and marker[0].get("data-count") == "1"
    assert any(g.get("stroke") == PALETTE["replaced"] for g in root.iter(f"{SVG}g"))

    hidden = ET.fromstring(graph_svg(payload, states, status="RUNNING", dispatch_id="abc",
                                     hide_params=True))
    assert not any(g.findall(f"{SVG}circle") for g in node_groups(hidden).values())
    assert legend(hidden)["completed"].find(f"{SVG}text").text == "completed 1"


def test_labels_are_escaped():
    graph = wide.build_graph(1)
    payload = graph_payload(graph)
    payload["labels"][0] = "<b>&"
    svg = graph_svg(payload, "p" * len(graph), status="RUNNING", dispatch_id="x")
    assert "&lt;b&gt;&amp;" in svg
    ET.fromstring(svg)


def test_a_graph_too_big_to_draw_gets_the_legend_and_a_note():
    graph = wide.build_graph(MAX_DRAWN_NODES // 2 + 1)
    assert len(graph) > MAX_DRAWN_NODES
    payload = graph_payload(graph, group=False)  # grouped, it is three items
    svg = graph_svg(payload, "c" * len(graph), status="COMPLETED", dispatch_id="big")
    root = ET.fromstring(svg)
    assert node_groups(root) == {}
    assert legend(root)["completed"].find(f"{SVG}text").text == f"completed {len(graph) - graph.kinds.count('parameter')}"
    assert "too many to draw" in svg
    assert len(svg) < 10_000


def test_the_palette_colours_every_state_and_replaced_each_its_own():
    # The one palette: the SVG draws it, and the live view gets it in graph["palette"].
    assert set(PALETTE) == set(STATES) | {"replaced"}
    assert len(set(PALETTE.values())) == len(PALETTE)  # reused tells apart from completed


def test_label_colour_contrasts_with_the_fill():
    assert text_colour_on("#ffffff") == "#000000"
    assert text_colour_on("#000000") == "#ffffff"
    assert text_colour_on("#1a237e") == "#ffffff"
    assert text_colour_on("nonsense") == "#000000"
    for state in STATES:
        assert text_colour_on(PALETTE[state]) in ("#000000", "#ffffff")


def test_the_widget_mime_bundle_carries_the_view_and_the_svg():
    result = ct.dispatch_sync(flow)(3, 4)
    data, _ = LatticeGraph(result)._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in data
    assert data["image/svg+xml"].startswith("<svg")
    assert "completed 4" in data["image/svg+xml"]
    assert "COMPLETED" in data["text/plain"]
    # A Result displays as its graph.
    data, _ = result._repr_mimebundle_()
    assert "completed 4" in data["image/svg+xml"]


@pytest.mark.timeout(180)
def test_nbconvert_html_of_an_executed_notebook_shows_the_static_graph(tmp_path):
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            "import covalent_nb as ct\n"
            "@ct.electron\ndef double(x):\n    return 2 * x\n"
            "@ct.electron\ndef add(a, b):\n    return a + b\n"
            "@ct.lattice\ndef flow(a, b):\n    return add(double(a), double(b))\n"),
        nbformat.v4.new_code_cell("ct.dispatch_sync(flow)(1, 2)"),
    ]
    # No widget state is saved, as when a notebook is shared without it:
    # nbconvert cannot render the widget and must fall back to the picture.
    NotebookClient(nb, timeout=120, kernel_name="python3", store_widget_state=False,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    widget, picture = nb.cells[1].outputs  # the widget, then its picture (show_live)
    assert "application/vnd.jupyter.widget-view+json" in widget["data"]
    assert "image/svg+xml" not in widget["data"]  # one picture, not a second stale one
    assert picture["data"]["image/svg+xml"] in picture["data"]["text/html"]
    html, _ = HTMLExporter().from_notebook_node(nb)
    # nbconvert inlines the text/html picture; the widget, without its state, is its text.
    pictures = re.findall(r'<svg [^>]*class="cnb-graph-svg".*?</svg>\s*</svg>', html, re.S)
    assert len(pictures) == 1
    assert "completed 4" in pictures[0] and "COMPLETED" in pictures[0]
    assert "&lt;Result " in html
