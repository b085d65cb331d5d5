"""The live lattice graph in a real JupyterLab (and Notebook 7) in Chromium.

The workflow is the seed's (task_0 -> task_1 -> task_2), so node ids are
Covalent's: 0 task_0, 1 :parameter:1, 2 task_1, 3 :parameter:2, 4 task_2,
5 :parameter:2, 6 :postprocess:reconstruct. The legend counts every node but
the parameters: four nodes.

The slow tasks wait for gate files that the test creates, so each legend
state is read while it holds, not raced against a sleep.
"""

from __future__ import annotations

import re

import pytest

from seed_source import SEED_LATTICE
from seed_source import SEED_TASKS as SEED_SOURCE_TASKS

pytestmark = pytest.mark.browser

COUNTED_NODES = 3  # the legend counts electrons: task_0, task_1, task_2 (not the postprocess)

SEED_TASKS = SEED_SOURCE_TASKS + SEED_LATTICE


def gated_tasks(gate_dir) -> str:
    """The seed's tasks, but task_0 and task_1 each wait for their gate file."""
    return f'''
import os
import time
import covalent_nb as ct

GATE_DIR = {str(gate_dir)!r}

def wait_for_gate(name):
    path = os.path.join(GATE_DIR, name)
    deadline = time.monotonic() + 300
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.05)

@ct.electron
def task_0(a):
    wait_for_gate("task_0")
    return a

@ct.electron
def task_1(a, b):
    wait_for_gate("task_1")
    return a + b

@ct.electron
def task_2(a, b):
    return a / b

@ct.lattice
def workflow(a, b):
    res_0 = task_0(a)
    res_1 = task_1(res_0, b)
    res_2 = task_2(res_1, b)
    return res_2
'''


# -- reading the widget ------------------------------------------------------------------


def graph_selector(dispatch_id: str) -> str:
    return f'.cnb-graph[data-dispatch-id="{dispatch_id}"]'


def legend_counts(nb, dispatch_id: str) -> dict:
    """The legend as the page shows it: state -> count, and the status text."""
    return nb.locator(graph_selector(dispatch_id)).first.evaluate("""(root) => {
        const counts = {};
        for (const el of root.querySelectorAll('.cnb-legend [data-state]'))
            counts[el.dataset.state] = Number(el.dataset.count);
        const status = root.querySelector('.cnb-status');
        counts.status = status ? status.innerText.trim() : null;
        return counts;
    }""")


def wait_for_legend(nb, dispatch_id: str, timeout: float = 60, **expected) -> dict:
    """Wait until the legend shows ``expected`` (e.g. running=1, pending=3,
    status="RUNNING"; the status text is compared case-insensitively)."""
    nb.wait_for_selector(graph_selector(dispatch_id) + " .cnb-legend", timeout=timeout)

    def shows(counts: dict) -> bool:
        return all((str(counts.get(k) or "").upper() == v.upper()) if k == "status"
                   else counts.get(k) == v for k, v in expected.items())

    return nb.wait_until(lambda: legend_counts(nb, dispatch_id), done=shows,
                         timeout=timeout, what=f"legend {expected}")


def printed_id(nb, label: str) -> str:
    """A dispatch id the notebook printed as ``<label> <uuid>``."""
    pattern = re.compile(re.escape(label) + r"\s*([0-9a-f-]{36})")
    nb.wait_for_output(label)
    # print() writes its pieces separately and a front end may show the first
    # before the rest arrives: wait for the whole line.
    texts = nb.wait_until(lambda: nb.outputs()["texts"],
                          done=lambda found: any(pattern.search(t) for t in found),
                          timeout=30, what=f"a dispatch id after {label!r}")
    return next(pattern.search(t) for t in texts if pattern.search(t)).group(1)


def details(nb, *fields: str) -> dict:
    pane = nb.locator(".cnb-details").first
    return {field: pane.locator(f'[data-field="{field}"]').inner_text().strip()
            for field in fields}


# -- tests -------------------------------------------------------------------------------------


def test_legend_follows_a_running_dispatch(jupyter_frontend, tmp_path):
    """Pending -> running -> completed, read off the legend while it happens; the
    updates keep flowing after the dispatching cell ended and while another
    cell keeps the kernel busy."""
    gates = tmp_path / "gates"
    gates.mkdir()
    nb = jupyter_frontend.open_notebook("live_graph.ipynb", [
        gated_tasks(gates),
        '''
        dispatch_id = ct.dispatch(workflow)(1, 2)
        print("dispatch id:", dispatch_id)
        ct.show(dispatch_id)
        ''',
    ])
    nb.run_all()
    dispatch_id = printed_id(nb, "dispatch id:")

    # task_0 waits at its gate: nothing has completed, the two other electrons are pending
    wait_for_legend(nb, dispatch_id, running=1, pending=2, completed=0, status="RUNNING")
    nb.screenshot("running")

    (gates / "task_0").touch()
    wait_for_legend(nb, dispatch_id, completed=1, running=1, pending=1)

    # keep the kernel busy in another cell; the graph must still move
    nb.run_cell('import time; time.sleep(120); print("busy cell done")')
    nb.wait_until(nb.kernel_status, done=lambda s: s == "busy", timeout=20,
                  what="the kernel to be busy")
    (gates / "task_1").touch()
    counts = wait_for_legend(nb, dispatch_id, completed=COUNTED_NODES, pending=0, running=0,
                             status="COMPLETED")
    assert nb.kernel_status() == "busy", "the legend should move while another cell runs"
    assert counts["failed"] == counts["cancelled"] == counts["reused"] == 0
    nb.screenshot("completed", selector=graph_selector(dispatch_id))


def test_redispatch_with_reuse_and_node_details(lab):
    """The seed's Case II in the page: task_0 and task_1 reused, task_2 replaced;
    clicking a node opens its details."""
    nb = lab.open_notebook("redispatch_graph.ipynb", [
        SEED_TASKS,
        '''
        dispatch_id = ct.dispatch(workflow)(1, 2)
        print("first output:", ct.get_result(dispatch_id, wait=True).result)
        ''',
        '''
        redispatch_id = ct.redispatch(
            dispatch_id,
            replace_electrons={"task_2": task_2_redefined},
            reuse_previous_results=True,
        )()
        print("redispatch id:", redispatch_id)
        ct.get_result(redispatch_id, wait=True)
        ct.show(redispatch_id)
        ''',
    ])
    nb.run_all()
    nb.wait_for_output("first output: 1.5")
    redispatch_id = printed_id(nb, "redispatch id:")
    graph = graph_selector(redispatch_id)

    wait_for_legend(nb, redispatch_id, reused=2, completed=COUNTED_NODES - 2,
                    pending=0, running=0, failed=0, status="COMPLETED")
    replaced = nb.locator(f'{graph} .cnb-legend [data-marker="replaced"]').first
    assert replaced.get_attribute("data-count") == "1"

    # As a person does: the pointer crosses the graph, the notebook scrolls a
    # little, then a click. (cytoscape caches where its canvas is on screen;
    # the widget must keep that right when the notebook scrolls.)
    nb.locator(graph).first.scroll_into_view_if_needed()
    nb.locator(f"{graph} .cnb-canvas").first.hover()
    nb.scroll_by(60)

    # a reused node: task_1 (node 2) says so, with the parent's output
    nb.click_cy_node("2", graph_selector=graph)
    nb.wait_for_selector('.cnb-details[data-node-id="2"]:not([data-loading="true"])',
                         state="visible", timeout=15)
    fields = details(nb, "node_name", "node_id", "status", "output", "reason", "source")
    assert fields["node_name"] == "task_1"
    assert fields["node_id"] == "2"
    assert fields["status"].lower() == "reused"
    assert fields["output"] == "3"
    assert dispatch_id_in(fields["reason"]), fields["reason"]
    assert "def task_1" in fields["source"]
    nb.screenshot("details-reused")

    # the replaced, recomputed node: task_2 became task_2_redefined and gave 3 * 2
    nb.click_cy_node("4", graph_selector=graph)
    nb.wait_for_selector('.cnb-details[data-node-id="4"]:not([data-loading="true"])',
                         state="visible", timeout=15)
    fields = details(nb, "node_name", "status", "output", "inputs", "duration")
    assert fields["node_name"] == "task_2_redefined"
    assert fields["status"].lower() == "completed"
    assert fields["output"] == "6"
    assert "3" in fields["inputs"] and "2" in fields["inputs"]
    assert fields["duration"]
    nb.screenshot("details-replaced")


def dispatch_id_in(text: str) -> bool:
    return re.search(r"[0-9a-f]{8}-[0-9a-f]{4}-", text or "") is not None
