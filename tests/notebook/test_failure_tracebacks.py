"""A failed task's stored traceback: IPython's format in a kernel, the plain one elsewhere.

The kernel test executes a real notebook with nbclient: the electron is
defined in a cell, fails on a local executor thread, and the stored error of
the node and of the dispatch must name the cell (``Cell In[N]``) and show
the failing source line, with the exception line last and none of
covalent_nb's frames.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import nbformat
import pytest
from nbclient import NotebookClient

import covalent_nb as ct
from covalent_nb.dispatch.tracebacks import (exception_line, format_failure, get_formatter,
                                             plain_format, set_formatter)

CELLS = [
    "import json\nimport covalent_nb as ct\n",
    # the task's cell: the raise is on its 5th line
    "@ct.electron\n"
    "def check_positive(x):\n"
    "    # a comment, so the line number is not the def's\n"
    "    if x <= 0:\n"
    "        raise ValueError(f'expected a positive number, got {x}')\n"
    "    return x\n"
    "\n"
    "@ct.electron\n"
    "def nested(x):\n"
    "    return check_positive(x)  # an electron called inside another\n"
    "\n"
    "@ct.lattice\n"
    "def guarded(a):\n"
    "    return check_positive(a), nested(a)\n",
    "failed = ct.dispatch_sync(guarded)(-4)\n"
    "print(json.dumps({'status': str(failed.status), 'error': failed.error,\n"
    "                  'node0': failed.get_node_result(0)['error'],\n"
    "                  'nested': failed.get_node_result(2)['error']}))\n",
]


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    path = tmp_path_factory.mktemp("tracebacks")
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS])
    NotebookClient(notebook, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(path)}}).execute()
    [output] = [o for o in notebook.cells[2].outputs if o.get("name") == "stdout"]
    return json.loads(output["text"])


def test_a_failed_node_in_a_kernel_names_the_cell_and_its_source_line(stored):
    error = stored["node0"]
    assert stored["status"] == "FAILED"
    assert "Cell In[2], line 5, in check_positive" in error
    assert "raise ValueError(f'expected a positive number, got {x}')" in error
    assert "ipykernel_" not in error and ".py\"" not in error
    # the exception line is last
    assert error.rstrip().splitlines()[-1] == "ValueError: expected a positive number, got -4"
    assert exception_line(error) == "ValueError: expected a positive number, got -4"


def test_covalent_nb_frames_are_dropped(stored):
    nested = stored["nested"]
    # nested -> (covalent_nb's Electron.__call__) -> check_positive: only the user's frames
    assert "Cell In[2], line 10, in nested" in nested
    assert "Cell In[2], line 5, in check_positive" in nested
    assert "covalent_nb" not in nested
    assert nested.rstrip().splitlines()[-1] == "ValueError: expected a positive number, got -4"


def test_the_dispatch_error_carries_the_formatted_traceback(stored):
    error = stored["error"]
    assert error.startswith("node(s) 0 (check_positive), 2 (nested) failed; first error:\n")
    assert "Cell In[2], line 5, in check_positive" in error
    assert error.rstrip().splitlines()[-1] == "ValueError: expected a positive number, got -4"


# -- outside a kernel -------------------------------------------------------------------
def _helper(x):
    return 1 / x


SCRIPT = """
import json, sys
import covalent_nb as ct

def _helper(x):
    return 1 / x

@ct.electron
def divide(x):
    return _helper(x)

@ct.lattice
def flow(x):
    return divide(x)

result = ct.dispatch_sync(flow)(0)
print(json.dumps(["IPython" in sys.modules, result.get_node_result(0)["error"]]))
"""


def test_without_a_shell_the_plain_format_is_used_without_our_frames(tmp_path):
    # a fresh interpreter: no IPython shell (this process may hold one from other tests)
    script = tmp_path / "flow.py"
    script.write_text(SCRIPT)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120,
                          cwd=tmp_path, env=dict(os.environ, COVALENT_NB_HOME=str(tmp_path / "home")))
    assert done.returncode == 0, done.stderr
    ipython_imported, error = json.loads(done.stdout)
    assert not ipython_imported  # nor does covalent_nb import it
    assert error.startswith("Traceback (most recent call last):\n")
    assert f'File "{script}", line 10, in divide\n' in error and "line 6, in _helper\n" in error
    assert "return 1 / x" in error
    assert "runner.py" not in error and "covalent_nb" not in error
    assert error.rstrip().splitlines()[-1] == "ZeroDivisionError: division by zero"


def test_chained_exceptions_keep_their_causes_and_get_their_tracebacks_back():
    try:
        try:
            _helper(0)
        except ZeroDivisionError as cause:
            raise KeyError("wrapped") from cause
    except KeyError as exc:
        caught = exc
    frames_before = caught.__traceback__
    text = format_failure(caught)
    assert "ZeroDivisionError: division by zero" in text
    assert "The above exception was the direct cause" in text
    assert text.rstrip().splitlines()[-1] == "KeyError: 'wrapped'"
    assert caught.__traceback__ is frames_before  # trimmed only while formatting


def test_an_installed_formatter_is_used_and_a_broken_one_falls_back():
    previous = get_formatter()
    try:
        set_formatter(lambda exc: f"custom {type(exc).__name__}")
        assert format_failure(ValueError("x")) == "custom ValueError\n"
        set_formatter(lambda exc: 1 / 0)
        assert format_failure(ValueError("x")) == "ValueError: x\n"
        set_formatter(lambda exc: None)  # declines: no shell
        assert format_failure(ValueError("x")) == plain_format(ValueError("x"))
    finally:
        set_formatter(previous)


@pytest.mark.parametrize("text, line", [
    ('Traceback (most recent call last):\n  File "x.py", line 3, in f\n    return 1 / x\n'
     "           ~~^~~\nZeroDivisionError: division by zero\n", "ZeroDivisionError: division by zero"),
    ("-" * 75 + "\nValueError" + " " * 32 + "Traceback (most recent call last)\nCell In[2], line 5\n"
     "      3 x = 1\n----> 5 raise ValueError('w')\n\nValueError: wrapped\n  a second line\n",
     "ValueError: wrapped"),
    ("node(s) 3 (x) failed; first error:\nTraceback (most recent call last):\n"
     '  File "x.py", line 3, in f\n    g()\nKeyError: 3', "KeyError: 3"),
    ("-" * 75 + "\nValueError" + " " * 32 + "Traceback (most recent call last)\n"
     "File /home/u/flow.py:118, in check(x)\n    117 if x < 0:\n--> 118     raise ValueError(x)\n\n"
     "ValueError: -4\n", "ValueError: -4"),
    ("pip install failed for numpyy\nERROR: no matching distribution", "pip install failed for numpyy"),
    ("", ""),
    (None, ""),
])
def test_exception_line(text, line):
    assert exception_line(text) == line
