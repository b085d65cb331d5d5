"""The seed how-to, executed as a real notebook with nbclient, prints what the how-to shows."""

import re
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "how-to-redispatch.ipynb"
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"


def stdout_of(cell) -> str:
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream" and o.name == "stdout")


def test_the_how_to_runs_unchanged_and_prints_what_it_shows(tmp_path, monkeypatch):
    # Twice in one home: the second run's history holds every result of the first, and the
    # how-to must still print what it documents (redispatch reuses from its parent only).
    monkeypatch.setenv("COVALENT_NB_HOME", str(tmp_path / "home"))
    for run in range(2):
        check_one_run(tmp_path)


def check_one_run(tmp_path):
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert code[0].source == "import covalent_nb as ct"
    NotebookClient(notebook, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    for cell in code:
        errors = [o for o in cell.outputs if o.output_type == "error"]
        assert not errors, errors

    first, case_1, case_2, case_2_check, case_3, case_3_check = (stdout_of(code[i]) for i in range(2, 8))
    assert re.fullmatch(rf"Dispatch id: {UUID}\nWorkflow execution status: COMPLETED\nWorkflow output: 1.5\n", first)
    assert re.fullmatch(rf"Redispatch id: {UUID}\nRedispatched workflow execution status: COMPLETED\n"
                        r"Redispatched workflow output: 6\n", case_1)
    assert case_2.endswith("Redispatched workflow execution status: COMPLETED\nRedispatched workflow output: 6\n")
    assert case_2_check == "True\nTrue\n"
    assert case_3.endswith("Redispatched workflow execution status: COMPLETED\nRedispatched workflow output: 20\n")
    assert case_3_check == "True\nFalse\n"

    reasons = stdout_of(code[8])
    assert "0 task_0: reused: same code and inputs as node 0 of" in reasons
    assert "2 task_1: recomputed: input changed (argument 'b')" in reasons
    assert "4 task_2_redefined: recomputed: replaced (task_2 -> task_2_redefined)" in reasons

    shown = code[9].outputs[0]["data"]
    assert "application/vnd.jupyter.widget-view+json" in shown  # the live graph
    picture = code[9].outputs[1]["data"]  # and its picture, for exported and saved notebooks
    assert "<svg" in picture["image/svg+xml"] and "COMPLETED" in picture["image/svg+xml"]
