"""A faithful stand-in for a Jupyter notebook, for the false-reuse tests.

In Jupyter, cells run in the namespace of ``__main__``: functions defined in a
cell have ``__module__ == "__main__"`` and their ``__globals__`` is that
namespace (a plain dict).  :class:`Notebook` gives each test its own such
namespace; :meth:`Notebook.run` executes a cell (dedented) in it.

Other helpers:

* :class:`FileGate`: make a task block (inside its body) until the test says
  go, without the task's key seeing anything unusual (the task polls for a
  file whose path is a plain string global), so a test can edit the notebook
  while the dispatch runs;
* :func:`node` / :func:`nodes_named` / :func:`node_ids`: find node records by
  name, never by hard-coded id;
* :func:`run_script`: run Python source in a new process (a "restart"), with
  ``COVALENT_NB_HOME`` pointing at the same store, and return the JSON it
  prints last.
"""

from __future__ import annotations

import builtins
import json
import os
import subprocess
import sys
import textwrap
import time
import types
from pathlib import Path
from typing import Any, Iterable, Optional

import covalent_nb as ct

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent

__all__ = ["Notebook", "restore_main", "FileGate", "node", "node_ids", "nodes_named", "run_script", "HERE", "REPO"]


class Notebook:
    """A notebook kernel's user namespace: cells run in ``__main__``.

    As IPython does, the namespace is the ``__dict__`` of a module that is
    ``sys.modules["__main__"]`` while the notebook is active (so pickle finds
    ``__main__.helper`` by name, as it does in Jupyter).  Creating a notebook,
    running a cell or dispatching makes it the active one; :func:`restore_main`
    puts the original ``__main__`` back (the tests call it at teardown).
    """

    def __init__(self, *cells: str) -> None:
        self.module = types.ModuleType("__main__")
        self.ns: dict = self.module.__dict__
        self.ns.update({"__name__": "__main__", "__builtins__": builtins})
        self.activate()
        self.run("import covalent_nb as ct")
        for cell in cells:
            self.run(cell)

    def activate(self) -> None:
        """Make this notebook's module ``sys.modules["__main__"]`` (as in its kernel)."""
        _ORIGINAL_MAIN.setdefault("module", sys.modules.get("__main__"))
        sys.modules["__main__"] = self.module

    # -- cells ---------------------------------------------------------------------
    def run(self, cell_source: str) -> dict:
        """Execute one cell (dedented) in the notebook's namespace."""
        self.activate()
        exec(compile(textwrap.dedent(cell_source), "<cell>", "exec"), self.ns)
        return self.ns

    def __getitem__(self, name: str) -> Any:
        return self.ns[name]

    def __setitem__(self, name: str, value: Any) -> None:
        self.ns[name] = value

    def __contains__(self, name: str) -> bool:
        return name in self.ns

    # -- dispatching -----------------------------------------------------------------
    def dispatch(self, lattice_name: str, *args: Any, **kwargs: Any) -> str:
        self.activate()
        return ct.dispatch(self.ns[lattice_name])(*args, **kwargs)

    def dispatch_and_wait(self, lattice_name: str, *args: Any, **kwargs: Any) -> Any:
        """A fresh ``ct.dispatch`` of the lattice as it stands now; its Result."""
        return ct.get_result(self.dispatch(lattice_name, *args, **kwargs), wait=True)

    def _replacements(self, replace: Any) -> Optional[dict]:
        if replace is None:
            return None
        if isinstance(replace, str):
            replace = [replace]
        if isinstance(replace, dict):
            return {k: (self.ns[v] if isinstance(v, str) else v) for k, v in replace.items()}
        return {name: self.ns[name] for name in replace}

    def redispatch(self, dispatch_id: str, *args: Any, replace: Any = None, reuse: bool = True,
                   **kwargs: Any) -> str:
        """``ct.redispatch``; *replace* is a name (or names) of live notebook objects to
        pass as replacements under their own names, or a dict name -> object/name."""
        self.activate()
        return ct.redispatch(dispatch_id, replace_electrons=self._replacements(replace),
                             reuse_previous_results=reuse)(*args, **kwargs)

    def redispatch_and_wait(self, dispatch_id: str, *args: Any, replace: Any = None,
                            reuse: bool = True, **kwargs: Any) -> Any:
        return ct.get_result(self.redispatch(dispatch_id, *args, replace=replace, reuse=reuse,
                                             **kwargs), wait=True)


_ORIGINAL_MAIN: dict = {}


def restore_main() -> None:
    """Put back the ``__main__`` module that was there before any notebook was activated."""
    if "module" in _ORIGINAL_MAIN:
        original = _ORIGINAL_MAIN.pop("module")
        if original is None:
            sys.modules.pop("__main__", None)
        else:
            sys.modules["__main__"] = original


# -- finding nodes ---------------------------------------------------------------------
def node_ids(result: Any, name: str) -> list:
    """Ids of the nodes called *name* (``:sublattice:`` prefix optional)."""
    found = []
    for i in range(len(result.graph)):
        record = result.get_node_result(i)
        node_name = record["node_name"]
        if node_name == name or node_name == f":sublattice:{name}":
            found.append(i)
    return found


def nodes_named(result: Any, name: str) -> list:
    return [result.get_node_result(i) for i in node_ids(result, name)]


def node(result: Any, name: str) -> dict:
    """The record of the single node called *name*."""
    found = nodes_named(result, name)
    assert len(found) == 1, f"expected one node {name!r}, found {len(found)}: " + \
        repr([result.get_node_result(i)["node_name"] for i in range(len(result.graph))])
    return found[0]


# -- blocking a task while the test edits the notebook ----------------------------------
class FileGate:
    """A gate a task waits on, made of files (invisible to keys: the path is a constant).

    In a cell: ``GATE = {gate.path!r}`` plus :attr:`CELL`'s helper, then call
    ``_wait_gate()`` first thing in the task.  The test calls
    :meth:`wait_started` (the task is inside its body), edits, then
    :meth:`release`.
    """

    CELL = '''
    def _wait_gate():
        import os as _os
        import time as _time
        open(GATE + ".started", "w").close()
        deadline = _time.time() + 30
        while not _os.path.exists(GATE):
            if _time.time() > deadline:
                raise TimeoutError("the test never released the gate")
            _time.sleep(0.005)
    '''

    def __init__(self, directory: Path, name: str = "gate") -> None:
        self.path = str(Path(directory) / name)

    def cell(self) -> str:
        return f"GATE = {self.path!r}\n" + textwrap.dedent(self.CELL)

    def wait_started(self, timeout: float = 20.0) -> None:
        deadline = time.time() + timeout
        while not os.path.exists(self.path + ".started"):
            if time.time() > deadline:
                raise AssertionError("the gated task never started")
            time.sleep(0.005)

    def release(self) -> None:
        Path(self.path).touch()


# -- new processes ---------------------------------------------------------------------
_PRELUDE = """
import json, sys
sys.path[:0] = {paths!r}
from notebook_sim import Notebook, node, node_ids, nodes_named
import covalent_nb as ct
"""


def run_script(source: str, *, home: Any, extra_paths: Iterable = (), env: Optional[dict] = None,
               timeout: float = 90) -> Any:
    """Run *source* in a new Python process and return the JSON of its last stdout line.

    ``notebook_sim`` is importable there; ``COVALENT_NB_HOME`` is *home*, so the
    process sees (and can redispatch) this process's dispatches.
    """
    paths = [str(HERE), str(REPO), *map(str, extra_paths)]
    script = _PRELUDE.format(paths=paths) + textwrap.dedent(source)
    environment = dict(os.environ)
    environment["COVALENT_NB_HOME"] = str(home)
    environment.update(env or {})
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=environment, timeout=timeout, cwd=str(REPO))
    if done.returncode != 0:
        raise AssertionError(f"subprocess failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    assert lines, f"subprocess printed nothing:\n{done.stderr}"
    return json.loads(lines[-1])
