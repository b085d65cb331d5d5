"""The package's layers import one way, and no modules import each other in a circle.

The contracts live in pyproject.toml (``[tool.importlinter]``) and are checked
by import-linter, the tool made for it; the cycle check covers what a layers
contract cannot see (two modules of one layer importing each other), counting
imports inside functions too.
"""

import pathlib
import subprocess
import sys

import grimp
import networkx as nx

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_the_layer_contracts_hold():
    script = pathlib.Path(sys.executable).parent / "lint-imports"  # the console script beside this Python
    done = subprocess.run([str(script), "--config", str(ROOT / "pyproject.toml"), "--no-cache"], cwd=ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout and "3 kept" in done.stdout, done.stdout


def test_no_modules_import_each_other_in_a_circle():
    graph = grimp.build_graph("covalent_nb")
    edges = nx.DiGraph()
    for module in graph.modules:
        if module == "covalent_nb":
            continue  # the package root re-exports everything: it is nobody's dependency
        for imported in graph.find_modules_directly_imported_by(module):
            # importing a submodule imports its package: the package's own __init__ is no cycle
            if imported != "covalent_nb" and not module.startswith(imported + "."):
                edges.add_edge(module, imported)
    cycles = [sorted(c) for c in nx.strongly_connected_components(edges) if len(c) > 1]
    assert not cycles, f"modules importing each other in a circle: {cycles}"
