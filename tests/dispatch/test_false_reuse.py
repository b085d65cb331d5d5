"""False reuse (issue 10): a redispatch with reuse returns exactly what a fresh dispatch computes.

One named test per class of false reuse listed in the issue (parametrized where the
issue gives several examples), the "reuse missed" cases, and the escape hatch
(``@ct.electron(reuse_key=fn)``).

The pattern: notebook code lives in ``__main__`` (see ``notebook_sim.Notebook``);
dispatch, make the edit the class describes, redispatch with
``reuse_previous_results=True``, and compare with a *fresh* ``ct.dispatch`` of the
same code and inputs.  Where a node may instead be "not reusable", the assertion is
still on the value (a recomputed node gives the fresh value).
"""

from __future__ import annotations

import importlib
import shutil
import sys
import textwrap
import uuid
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import covalent_nb as ct
from notebook_sim import FileGate, Notebook, node, restore_main, run_script


def wait(dispatch_id):
    return ct.get_result(dispatch_id, wait=True)


def completed(result):
    assert result.status == ct.Status.COMPLETED, (result.status, [
        (result.get_node_result(i)["node_name"], result.get_node_result(i)["error"])
        for i in range(len(result.graph)) if result.get_node_result(i)["error"]])
    return result


def assert_recomputed_or_equal(child, name, fresh_value):
    """The child's value is the fresh one; a node the key could not see is not reused."""
    completed(child)
    assert child.result == fresh_value, (
        f"stale value: redispatch gave {child.result!r}, a fresh dispatch gives {fresh_value!r}; "
        f"node {name!r}: {node(child, name)['reason']!r}")


@pytest.fixture(autouse=True)
def _main_module_restored():
    """Each test's notebooks replace ``sys.modules["__main__"]`` (as IPython does); undo it."""
    yield
    restore_main()


# -- local module files (sys.path / sys.modules cleaned at teardown) -------------------------
class LocalCode:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.uid = uuid.uuid4().hex[:8]

    def name(self, base: str) -> str:
        """A module name unique to this test (so no test sees another's module)."""
        return f"{base}_{self.uid}"

    def write(self, relpath: str, source: str) -> Path:
        path = self.root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))
        for cache in self.root.rglob("__pycache__"):  # never let a stale .pyc answer for an edit
            shutil.rmtree(cache, ignore_errors=True)
        importlib.invalidate_caches()
        return path


@pytest.fixture
def local_code(tmp_path):
    root = tmp_path / "code"
    root.mkdir()
    sys.path.insert(0, str(root))
    importlib.invalidate_caches()
    try:
        yield LocalCode(root)
    finally:
        if str(root) in sys.path:
            sys.path.remove(str(root))
        for name, module in list(sys.modules.items()):
            file = getattr(module, "__file__", None) or ""
            try:
                paths = [str(p) for p in (getattr(module, "__path__", None) or [])]
            except Exception:
                paths = []
            if file.startswith(str(root)) or any(p.startswith(str(root)) for p in paths):
                del sys.modules[name]
        importlib.invalidate_caches()


@pytest.fixture
def open_gate(tmp_path):
    """A gate that is already open (for reference notebooks that share gated code)."""
    gate = FileGate(tmp_path, "always-open")
    gate.release()
    return gate


# =====================================================================================
# Class 1: edits while a dispatch runs (and mutation of the arguments afterwards)
# =====================================================================================
GATED = """
OFFSET = 10

def scale(x):
    return x * 2

@ct.electron
def transform(a):
    _wait_gate()
    return (scale(a) + OFFSET).tolist()

@ct.lattice
def flow(a):
    return transform(a)
"""

EDITS_WHILE_RUNNING = {
    "helper_cell_edited": lambda nb, arg: nb.run("def scale(x):\n    return x * 3\n"),
    "global_changed": lambda nb, arg: nb.run("OFFSET = 1000\n"),
    "argument_mutated_in_place": lambda nb, arg: arg.__setitem__(slice(None), [7, 8, 9]),
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("edit", sorted(EDITS_WHILE_RUNNING))
def test_class01_edits_while_running(edit, tmp_path, open_gate):
    reference = Notebook(open_gate.cell(), GATED)  # the code as dispatched, never edited
    as_dispatched = completed(reference.dispatch_and_wait("flow", np.array([1, 2, 3]))).result
    assert as_dispatched == [12, 14, 16]

    gate = FileGate(tmp_path)
    nb = Notebook(gate.cell(), GATED)
    arg = np.array([1, 2, 3])
    parent_id = nb.dispatch("flow", arg)
    try:
        gate.wait_started()
        EDITS_WHILE_RUNNING[edit](nb, arg)  # while the task is inside its body
    finally:
        gate.release()
    parent = completed(wait(parent_id))
    # Freeze at dispatch: the dispatch runs the code and inputs its keys describe.
    assert parent.result == as_dispatched, f"the running dispatch saw the {edit.replace('_', ' ')}"
    assert np.array_equal(parent.inputs["args"][0], [1, 2, 3])

    # A redispatch of the workflow as dispatched, with reuse: the stored value is the
    # dispatched code's value.
    child = completed(nb.redispatch_and_wait(parent_id, np.array([1, 2, 3])))
    assert child.result == as_dispatched, node(child, "transform")["reason"]

    # The edited notebook, passed in: what a fresh dispatch of it computes.
    fresh = completed(nb.dispatch_and_wait("flow", np.array([1, 2, 3])))
    replaced = nb.redispatch_and_wait(parent_id, np.array([1, 2, 3]), replace="transform")
    assert_recomputed_or_equal(replaced, "transform", fresh.result)


@pytest.mark.parametrize("container", ["ndarray", "list", "dict"])
def test_class01_edits_while_running_argument_mutated_after_the_run(container, open_gate):
    nb = Notebook(open_gate.cell(), """
    @ct.electron
    def total(values):
        return float(sum(values.values()) if isinstance(values, dict) else sum(values))

    @ct.lattice
    def flow(values):
        return total(values)
    """)
    arg = {"ndarray": np.array([1.0, 2.0, 3.0]), "list": [1.0, 2.0, 3.0],
           "dict": {"a": 1.0, "b": 2.0, "c": 3.0}}[container]
    parent_id = nb.dispatch("flow", arg)
    parent = completed(wait(parent_id))
    assert parent.result == 6.0
    # The notebook goes on using its object.
    if container == "dict":
        arg["d"] = 100.0
    elif container == "list":
        arg.append(100.0)
    else:
        arg *= 100
    recorded = parent.inputs["args"][0]
    assert (sum(recorded.values()) if container == "dict" else float(sum(recorded))) == 6.0, \
        "the parent's recorded inputs changed with the caller's object"
    # A no-argument redispatch runs the parent's inputs, as they were passed.
    for reuse in (True, False):
        child = completed(nb.redispatch_and_wait(parent_id, reuse=reuse))
        assert child.result == 6.0, node(child, "total")["reason"]


# =====================================================================================
# Class 2: local code in a namespace package taken for a library
# =====================================================================================
@pytest.mark.parametrize("style", ["module_attribute", "imported_function"])
def test_class02_namespace_package_module_is_user_code(style, local_code):
    pkg = local_code.name("src")  # a folder without __init__.py: a namespace package
    local_code.write(f"{pkg}/features.py", "def build(x):\n    return x + 1\n")
    importer = {"module_attribute": f"from {pkg} import features\n",
                "imported_function": f"from {pkg}.features import build\n"}[style]
    call = {"module_attribute": "features.build(x)", "imported_function": "build(x)"}[style]
    nb = Notebook(importer, f"""
    @ct.electron
    def feat(x):
        return {call}

    @ct.lattice
    def flow(x):
        return feat(x)
    """)
    parent_id = nb.dispatch("flow", 1)
    assert completed(wait(parent_id)).result == 2

    local_code.write(f"{pkg}/features.py", "def build(x):\n    return x + 100\n")
    importlib.reload(sys.modules[f"{pkg}.features"])
    nb.run(importer)  # the user re-runs the import cell
    nb.run(f"@ct.electron\ndef feat(x):\n    return {call}\n")  # and the task's cell
    fresh = completed(nb.dispatch_and_wait("flow", 1))
    assert fresh.result == 101
    child = nb.redispatch_and_wait(parent_id, replace="feat")
    assert_recomputed_or_equal(child, "feat", fresh.result)


# =====================================================================================
# Class 3: state of local modules
# =====================================================================================
@pytest.mark.parametrize("case", ["runtime_module_attribute", "reloaded_class_instance_global",
                                  "reloaded_class_instance_argument"])
def test_class03_local_module_state(case, local_code):
    config, shapes = local_code.name("config"), local_code.name("shapes")
    local_code.write(f"{config}.py", "SCALE = 2\n")
    shape_v1 = """
    class Scaler:
        def __init__(self, k):
            self.k = k

        def apply(self, x):
            return x * self.k
    """
    local_code.write(f"{shapes}.py", shape_v1)
    nb = Notebook(f"""
    import importlib
    import {config} as config
    import {shapes} as shapes
    S = shapes.Scaler(2)

    @ct.electron
    def via_module(x):
        return x * config.SCALE

    @ct.electron
    def via_global(x):
        return S.apply(x)

    @ct.electron
    def via_argument(s, x):
        return s.apply(x)

    @ct.lattice
    def flow_module(x):
        return via_module(x)

    @ct.lattice
    def flow_global(x):
        return via_global(x)

    @ct.lattice
    def flow_argument(s, x):
        return via_argument(s, x)
    """)
    if case == "runtime_module_attribute":
        parent_id = nb.dispatch("flow_module", 5)
        assert completed(wait(parent_id)).result == 10
        nb.run("config.SCALE = 3")
        fresh = completed(nb.dispatch_and_wait("flow_module", 5))
        assert fresh.result == 15
        child = nb.redispatch_and_wait(parent_id, replace="via_module")
        assert_recomputed_or_equal(child, "via_module", fresh.result)
        return

    shape_v2 = shape_v1.replace("return x * self.k", "return x * self.k + 100")
    if case == "reloaded_class_instance_global":
        parent_id = nb.dispatch("flow_global", 5)
        assert completed(wait(parent_id)).result == 10
        local_code.write(f"{shapes}.py", shape_v2)
        nb.run("importlib.reload(shapes)\nS = shapes.Scaler(2)")
        fresh = completed(nb.dispatch_and_wait("flow_global", 5))
        assert fresh.result == 110
        child = nb.redispatch_and_wait(parent_id, replace="via_global")
        assert_recomputed_or_equal(child, "via_global", fresh.result)
    else:
        parent_id = nb.dispatch("flow_argument", nb["S"], 5)
        assert completed(wait(parent_id)).result == 10
        local_code.write(f"{shapes}.py", shape_v2)
        nb.run("importlib.reload(shapes)\nS = shapes.Scaler(2)")
        fresh = completed(nb.dispatch_and_wait("flow_argument", nb["S"], 5))
        assert fresh.result == 110
        child = nb.redispatch_and_wait(parent_id, nb["S"], 5)
        assert_recomputed_or_equal(child, "via_argument", fresh.result)


# =====================================================================================
# Class 4: wrapped callables keyed by name
# =====================================================================================
WRAPPED = {
    "lru_cache": ("import functools\n@functools.lru_cache(maxsize=None)\ndef helper(x):\n    return x * {k}\n"),
    "functools_cache": ("import functools\n@functools.cache\ndef helper(x):\n    return x * {k}\n"),
    "toolz_curry": ("import toolz\n@toolz.curry\ndef helper(x, y=1):\n    return x * {k}\n"),
    "decorator_without_wraps": ("def deco(f):\n    def inner(*a):\n        return f(*a)\n    return inner\n"
                                "@deco\ndef helper(x):\n    return x * {k}\n"),
    "callable_object": ("class Helper:\n    def __call__(self, x):\n        return x * {k}\n"
                        "helper = Helper()\n"),
    "functools_partial": ("import functools\ndef _mul(x, k):\n    return x * k\n"
                          "helper = functools.partial(_mul, k={k})\n"),
}


@pytest.mark.parametrize("wrapper", sorted(WRAPPED))
def test_class04_wrapped_callables(wrapper):
    nb = Notebook(WRAPPED[wrapper].format(k=2), """
    @ct.electron
    def task(x):
        return helper(x)

    @ct.lattice
    def flow(x):
        return task(x)
    """)
    parent_id = nb.dispatch("flow", 5)
    assert completed(wait(parent_id)).result == 10
    nb.run(WRAPPED[wrapper].format(k=3))  # the helper's cell, edited
    fresh = completed(nb.dispatch_and_wait("flow", 5))
    assert fresh.result == 15
    child = nb.redispatch_and_wait(parent_id, replace="task")
    assert_recomputed_or_equal(child, "task", fresh.result)


# =====================================================================================
# Class 5: dynamic lookups
# =====================================================================================
GLOBALS_BY_NAME = """
def double(x):
    return 2 * x

@ct.electron
def apply(name, x):
    return globals()[name](x)

@ct.lattice
def flow(name, x):
    return apply(name, x)
"""


def test_class05_dynamic_lookup_globals_by_name():
    nb = Notebook(GLOBALS_BY_NAME)
    parent_id = nb.dispatch("flow", "double", 5)
    assert completed(wait(parent_id)).result == 10
    # A plain redispatch runs (today: KeyError, the snapshot lacks the global).
    assert completed(nb.redispatch_and_wait(parent_id, reuse=False)).result == 10
    assert completed(nb.redispatch_and_wait(parent_id, "double", 5, reuse=False)).result == 10
    nb.run("def double(x):\n    return 20 * x\n")
    fresh = completed(nb.dispatch_and_wait("flow", "double", 5))
    assert fresh.result == 100
    child = nb.redispatch_and_wait(parent_id, replace="apply")
    assert_recomputed_or_equal(child, "apply", fresh.result)


@pytest.mark.parametrize("case", ["helper_function_attribute", "task_reads_getattr_of_module_global"])
def test_class05_dynamic_lookup_attributes(case):
    source = {
        "helper_function_attribute": """
        def scale(x):
            return x * scale.factor
        scale.factor = 2

        @ct.electron
        def task(x):
            return scale(x)
        """,
        "task_reads_getattr_of_module_global": """
        import types
        SETTINGS = types.SimpleNamespace(factor=2)

        @ct.electron
        def task(x):
            return x * getattr(SETTINGS, "fac" + "tor")
        """,
    }[case]
    nb = Notebook(source, "@ct.lattice\ndef flow(x):\n    return task(x)\n")
    parent_id = nb.dispatch("flow", 5)
    assert completed(wait(parent_id)).result == 10
    nb.run({"helper_function_attribute": "scale.factor = 3",
            "task_reads_getattr_of_module_global": "SETTINGS.factor = 3"}[case])
    fresh = completed(nb.dispatch_and_wait("flow", 5))
    assert fresh.result == 15
    child = nb.redispatch_and_wait(parent_id, replace="task")
    assert_recomputed_or_equal(child, "task", fresh.result)


# =====================================================================================
# Class 6: values that hash alike but differ
# =====================================================================================
def _values_alike():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PendingDeprecationWarning)  # np.matrix
        return _VALUES_ALIKE()


def _VALUES_ALIKE():
    return {
        "dict_int_keys_order": ({1: "a", 2: "b"}, {2: "b", 1: "a"}),
        "dict_str_keys_order": ({"a": 1, "b": 2}, {"b": 2, "a": 1}),
        "dict_tuple_keys_order": ({(1,): 1, (2,): 2}, {(2,): 2, (1,): 1}),
        "masked_array_mask": (np.ma.array([1, 2, 3], mask=[0, 0, 1]), np.ma.array([1, 2, 3], mask=[1, 0, 0])),
        "ndarray_vs_matrix": (np.array([[1, 2], [3, 4]]), np.matrix([[1, 2], [3, 4]])),
        "structured_renamed_fields": (np.array([(1, 2.0)], dtype=[("a", "i8"), ("b", "f8")]),
                                      np.array([(1, 2.0)], dtype=[("x", "i8"), ("y", "f8")])),
        "int_vs_bool_in_list": ([1, 0], [True, False]),
        "float_negative_zero": ([0.0], [-0.0]),
    }


DESCRIBE = """
import numpy as np

@ct.electron
def describe(v):
    if isinstance(v, dict):
        return repr(list(v.items()))
    if isinstance(v, np.ndarray):
        return repr((type(v).__name__, v.dtype.names,
                     (v * v).tolist() if v.dtype.names is None else v.tolist(),
                     float(np.ma.sum(v)) if np.ma.isMaskedArray(v) else None))
    return repr(v)

@ct.lattice
def flow(v):
    return describe(v)
"""


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")  # np.matrix
@pytest.mark.parametrize("case", sorted(_values_alike()))
def test_class06_values_that_hash_alike_but_differ(case):
    first, second = _values_alike()[case]
    nb = Notebook(DESCRIBE)
    parent_id = nb.dispatch("flow", first)
    parent = completed(wait(parent_id))
    fresh = completed(nb.dispatch_and_wait("flow", second))
    assert fresh.result != parent.result  # the task does see the difference
    child = nb.redispatch_and_wait(parent_id, second)
    assert_recomputed_or_equal(child, "describe", fresh.result)


def test_class06_code_constants_that_hash_alike_but_differ():
    nb = Notebook("""
    @ct.electron
    def task(x):
        return repr(x + 0)

    @ct.lattice
    def flow(x):
        return task(x)
    """)
    parent_id = nb.dispatch("flow", 1)
    assert completed(wait(parent_id)).result == "1"
    nb.run("@ct.electron\ndef task(x):\n    return repr(x + 0.0)\n")  # 0 -> 0.0
    fresh = completed(nb.dispatch_and_wait("flow", 1))
    assert fresh.result == "1.0"
    assert_recomputed_or_equal(nb.redispatch_and_wait(parent_id, replace="task"), "task", fresh.result)


# =====================================================================================
# Class 7: sublattices
# =====================================================================================
def test_class07_sublattice_inner_reusable_false_is_recomputed():
    nb = Notebook("""
    import uuid

    @ct.electron(reusable=False)
    def token(x):
        return f"{x}-{uuid.uuid4().hex}"

    @ct.lattice
    def inner(x):
        return token(x)

    @ct.lattice
    def outer(x):
        return ct.electron(inner)(x)
    """)
    parent_id = nb.dispatch("outer", 1)
    parent = completed(wait(parent_id))
    child = completed(nb.redispatch_and_wait(parent_id))
    record = node(child, "inner")
    assert not record["reused"], record["reason"]
    assert child.result != parent.result, "the inner reusable=False electron was reused"


@pytest.mark.parametrize("change", ["hook_body_edited", "hook_added"])
def test_class07_sublattice_changed_call_before_inside_is_seen(change):
    before = {
        "hook_body_edited": """
        def offset():
            return 1

        @ct.electron(call_before=[ct.DepsCall(offset, retval_keyword="off")])
        def add(x, off=0):
            return x + off
        """,
        "hook_added": """
        def offset():
            return 100

        @ct.electron
        def add(x, off=1):
            return x + off
        """,
    }[change]
    after = {
        "hook_body_edited": before.replace("return 1\n", "return 100\n"),
        "hook_added": before.replace("@ct.electron\n",
                                     '@ct.electron(call_before=[ct.DepsCall(offset, retval_keyword="off")])\n'),
    }[change]
    lattices = """
    @ct.lattice
    def inner(x):
        return add(x)

    @ct.lattice
    def outer(x):
        return ct.electron(inner)(x)
    """
    nb = Notebook(before, lattices)
    parent_id = nb.dispatch("outer", 1)
    assert completed(wait(parent_id)).result == 2
    nb.run(after)
    nb.run(lattices)
    fresh = completed(nb.dispatch_and_wait("outer", 1))
    assert fresh.result == 101
    child = nb.redispatch_and_wait(parent_id, replace="inner")
    assert_recomputed_or_equal(child, "inner", fresh.result)


# =====================================================================================
# Class 8: wait edges
# =====================================================================================
def test_class08_wait_edge_child_recomputed_with_recomputed_parent(tmp_path):
    nb = Notebook("""
    @ct.electron
    def write(path, text):
        with open(path, "w") as handle:
            handle.write(text)
        return text

    @ct.electron
    def read(path):
        with open(path) as handle:
            return handle.read()

    @ct.lattice
    def flow(path, text):
        written = write(path, text)
        content = read(path)
        ct.wait(content, [written])
        return content
    """)
    path = str(tmp_path / "data.txt")
    parent_id = nb.dispatch("flow", path, "first")
    assert completed(wait(parent_id)).result == "first"
    child = nb.redispatch_and_wait(parent_id, path, "second")
    assert not node(child, "write")["reused"]
    expected = completed(nb.dispatch_and_wait("flow", path, "second")).result
    assert expected == "second"
    assert_recomputed_or_equal(child, "read", expected)
    assert not node(child, "read")["reused"], "a wait child was reused after its parent was recomputed"


# =====================================================================================
# Class 9: in-place mutation downstream
# =====================================================================================
@pytest.mark.parametrize("mutation", ["numpy_inplace_divide", "list_append", "dataframe_new_column"])
def test_class09_inplace_mutation_downstream(mutation):
    load, consume_v1, consume_v2 = {
        "numpy_inplace_divide": (
            "return np.arange(1.0, n + 1)",
            "a /= a.max()\n        return a.tolist()",
            "return (a * 10).tolist()"),
        "list_append": (
            "return list(range(n))",
            "a.append(99)\n        return len(a)",
            "return sum(a)"),
        "dataframe_new_column": (
            "return pd.DataFrame({'x': list(range(n))})",
            "a['y'] = a['x'] * 2\n        return int(a['y'].sum())",
            "return list(a.columns)"),
    }[mutation]
    template = f"""
    import numpy as np
    import pandas as pd

    @ct.electron
    def load(n):
        {load}

    @ct.electron
    def consume(a):
        CONSUME

    @ct.lattice
    def flow(n):
        return consume(load(n))
    """
    nb = Notebook(template.replace("CONSUME", consume_v1))
    parent_id = nb.dispatch("flow", 3)
    parent = completed(wait(parent_id))
    reference = Notebook(template.replace("CONSUME", "return a"))
    untouched = completed(reference.dispatch_and_wait("flow", 3)).result
    stored = node(parent, "load")["output"]
    if isinstance(untouched, pd.DataFrame):
        assert stored.equals(untouched), "load's stored output was changed by its consumer"
    elif isinstance(untouched, np.ndarray):
        assert np.array_equal(stored, untouched), "load's stored output was changed by its consumer"
    else:
        assert stored == untouched, "load's stored output was changed by its consumer"

    nb.run(textwrap.dedent(template.replace("CONSUME", consume_v2)).split("@ct.lattice")[0])
    fresh = completed(nb.dispatch_and_wait("flow", 3))
    child = nb.redispatch_and_wait(parent_id, replace="consume")
    assert_recomputed_or_equal(child, "consume", fresh.result)


# =====================================================================================
# Class 10: a redispatch must not modify the user's objects
# =====================================================================================
@pytest.mark.parametrize("change", ["class_attribute", "method_assigned_onto_class"])
def test_class10_redispatch_does_not_modify_notebook_objects(change):
    nb = Notebook("""
    class Cfg:
        scale = 2

        def apply(self, x):
            return x * self.scale

    @ct.electron
    def task(x):
        return Cfg().apply(x)

    @ct.lattice
    def flow(x):
        return task(x)
    """)
    parent_id = nb.dispatch("flow", 5)
    assert completed(wait(parent_id)).result == 10
    if change == "class_attribute":
        nb.run("Cfg.scale = 3")
        expected_now = 15
    else:
        nb.run("def _apply(self, x):\n    return x * 100\nCfg.apply = _apply")
        expected_now = 500
    live_cls = nb["Cfg"]
    live_state = (live_cls.__dict__["scale"], live_cls.__dict__["apply"])

    for args in ((), (5,), (6,)):  # rerun as it stands, and retraced
        completed(nb.redispatch_and_wait(parent_id, *args))
        assert nb["Cfg"] is live_cls
        assert (live_cls.__dict__["scale"], live_cls.__dict__["apply"]) == live_state, \
            "the redispatch wrote the dispatched class back onto the notebook's class"
    completed(nb.redispatch_and_wait(parent_id, reuse=False))
    assert (live_cls.__dict__["scale"], live_cls.__dict__["apply"]) == live_state
    assert live_cls().apply(5) == expected_now
    # A later fresh dispatch uses the notebook's current class.
    assert completed(nb.dispatch_and_wait("flow", 5)).result == expected_now


# =====================================================================================
# Class 11: bound methods of builtin objects
# =====================================================================================
BOUND = {
    "dict_get": ('LABELS = {{"a": "{v}"}}\nhelper = LABELS.get\n', '"a"'),
    "regex_sub": ('import re\nhelper = re.compile("{v}").sub\n', None),
    "str_format": ('helper = "{{:.{v}f}}".format\n', "3.14159"),
    "ndarray_dot": ('import numpy as np\nW = np.array([{v}, 1.0])\nhelper = W.dot\n', "[1.0, 1.0]"),
}


@pytest.mark.parametrize("case", sorted(BOUND))
def test_class11_bound_methods_of_builtin_objects(case):
    template, arg = BOUND[case]
    first, second = {"dict_get": ("A", "Z"), "regex_sub": ("a", "b"), "str_format": ("2", "4"),
                     "ndarray_dot": ("2.0", "5.0")}[case]
    call = {"regex_sub": 'helper("-", "abc")'}.get(case, f"helper({arg})")
    if case == "ndarray_dot":
        call = f"float(helper({arg}))"
    nb = Notebook(template.format(v=first), f"""
    @ct.electron
    def task(x):
        return (x, {call})

    @ct.lattice
    def flow(x):
        return task(x)
    """)
    parent_id = nb.dispatch("flow", 1)
    parent = completed(wait(parent_id))
    nb.run(template.format(v=second))  # rebinding the helper to another object
    fresh = completed(nb.dispatch_and_wait("flow", 1))
    assert fresh.result != parent.result
    child = nb.redispatch_and_wait(parent_id, replace="task")
    assert_recomputed_or_equal(child, "task", fresh.result)


@pytest.mark.parametrize("case", ["dict_get", "str_format"])
def test_class11_bound_methods_of_builtin_objects_as_arguments(case):
    nb = Notebook("""
    @ct.electron
    def call(f, x):
        return f(x)

    @ct.lattice
    def flow(f, x):
        return call(f, x)
    """)
    first, second, x = {"dict_get": ({"a": "A"}.get, {"a": "Z"}.get, "a"),
                        "str_format": ("{:.2f}".format, "{:.4f}".format, 3.14159)}[case]
    parent_id = nb.dispatch("flow", first, x)
    parent = completed(wait(parent_id))
    fresh = completed(nb.dispatch_and_wait("flow", second, x))
    assert fresh.result != parent.result
    child = nb.redispatch_and_wait(parent_id, second, x)
    assert_recomputed_or_equal(child, "call", fresh.result)


# =====================================================================================
# Class 12: class members the key skips
# =====================================================================================
MEMBERS = {
    "property_setter": ("""
    class Box:
        def __init__(self):
            self._v = 0

        @property
        def v(self):
            return self._v

        @v.setter
        def v(self, value):
            self._v = value * FACTOR
    """, "b = Box()\n    b.v = x\n    return b.v"),
    "property_deleter": ("""
    class Box:
        def __init__(self):
            self._v = 1

        @property
        def v(self):
            return self._v

        @v.deleter
        def v(self):
            self._v = -FACTOR
    """, "b = Box()\n    del b.v\n    return b._v * x"),
    "cached_property": ("""
    import functools

    class Box:
        def __init__(self, x):
            self.x = x

        @functools.cached_property
        def v(self):
            return self.x * FACTOR
    """, "return Box(x).v"),
    "metaclass_method": ("""
    class Meta(type):
        def make(cls, x):
            return x * FACTOR

    class Box(metaclass=Meta):
        pass
    """, "return Box.make(x)"),
}


@pytest.mark.parametrize("member", sorted(MEMBERS))
def test_class12_class_members_the_key_skips(member):
    cls_source, body = MEMBERS[member]
    task = f"@ct.electron\ndef task(x):\n    {body}\n"
    nb = Notebook(textwrap.dedent(cls_source).replace("FACTOR", "2"), task,
                  "@ct.lattice\ndef flow(x):\n    return task(x)\n")
    parent_id = nb.dispatch("flow", 5)
    parent = completed(wait(parent_id))
    nb.run(textwrap.dedent(cls_source).replace("FACTOR", "3"))  # the class's cell, edited
    nb.run(task)
    fresh = completed(nb.dispatch_and_wait("flow", 5))
    assert fresh.result != parent.result
    child = nb.redispatch_and_wait(parent_id, replace="task")
    assert_recomputed_or_equal(child, "task", fresh.result)


# =====================================================================================
# Class 13: functools.singledispatch
# =====================================================================================
SINGLEDISPATCH = """
from functools import singledispatch

@singledispatch
def fmt(x):
    return "object BASE"

@fmt.register
def _(x: int):
    return f"int INT {x}"
"""


@pytest.mark.parametrize("edit", ["new_registration", "implementation_edited", "base_edited"])
def test_class13_singledispatch(edit):
    nb = Notebook(SINGLEDISPATCH.replace("BASE", "v1").replace("INT", "v1"), """
    @ct.electron
    def task(x):
        return fmt(x)

    @ct.lattice
    def flow(x):
        return task(x)
    """)
    arg = {"new_registration": 1.5, "implementation_edited": 7, "base_edited": "s"}[edit]
    parent_id = nb.dispatch("flow", arg)
    parent = completed(wait(parent_id))
    if edit == "new_registration":
        nb.run("@fmt.register\ndef _(x: float):\n    return 'a float'\n")
    elif edit == "implementation_edited":
        nb.run("@fmt.register\ndef _(x: int):\n    return f'int v2 {x}'\n")
    else:
        nb.run(SINGLEDISPATCH.replace("BASE", "v2").replace("INT", "v1"))
    nb.run("@ct.electron\ndef task(x):\n    return fmt(x)\n")
    fresh = completed(nb.dispatch_and_wait("flow", arg))
    assert fresh.result != parent.result
    child = nb.redispatch_and_wait(parent_id, replace="task")
    assert_recomputed_or_equal(child, "task", fresh.result)


# =====================================================================================
# Class 14: code reached through strings and library registries
# =====================================================================================
@pytest.fixture
def pandas_names():
    """Accessors and methods a test adds to pandas classes, removed at teardown."""
    added = []
    yield added
    for cls, name in added:
        if name in cls.__dict__:
            delattr(cls, name)
        getattr(cls, "_accessors", set()).discard(name)


@pytest.mark.parametrize("case", ["query_at_global", "eval_at_global", "registered_accessor",
                                  "method_patched_onto_dataframe"])
def test_class14_code_reached_through_strings_and_registries(case, pandas_names):
    accessor = f"acc_{uuid.uuid4().hex[:6]}"
    method = f"meth_{uuid.uuid4().hex[:6]}"
    setup = {
        "query_at_global": ("T = 1\n", "T = 2\n", 'return int(df.query("x > @T")["x"].sum())'),
        "eval_at_global": ("F = 2\n", "F = 3\n", 'return df.eval("x * @F").tolist()'),
        "registered_accessor": (
            "import warnings\nwarnings.simplefilter('ignore')\n"
            f"@pd.api.extensions.register_dataframe_accessor({accessor!r})\n"
            "class Acc:\n    def __init__(self, df):\n        self._df = df\n"
            "    def total(self):\n        return int(self._df['x'].sum()) * FACTOR\n",
            None, f"return df.{accessor}.total()"),
        "method_patched_onto_dataframe": (
            f"def _m(self):\n    return (self['x'] * FACTOR).tolist()\npd.DataFrame.{method} = _m\n",
            None, f"return df.{method}()"),
    }[case]
    first, second, body = setup
    if second is None:
        first, second = first.replace("FACTOR", "2"), first.replace("FACTOR", "3")
    pandas_names.extend([(pd.DataFrame, accessor), (pd.DataFrame, method)])
    nb = Notebook("import pandas as pd\n" + first, f"""
    @ct.electron
    def task(df):
        {body}

    @ct.lattice
    def flow(df):
        return task(df)
    """)
    df = pd.DataFrame({"x": [1, 2, 3]})
    parent_id = nb.dispatch("flow", df)
    parent = completed(wait(parent_id))
    nb.run(second)
    fresh = completed(nb.dispatch_and_wait("flow", pd.DataFrame({"x": [1, 2, 3]})))
    assert fresh.result != parent.result
    child = nb.redispatch_and_wait(parent_id, pd.DataFrame({"x": [1, 2, 3]}), replace="task")
    assert_recomputed_or_equal(child, "task", fresh.result)


# =====================================================================================
# Class 15: imports inside the task body
# =====================================================================================
IMPORT_INSIDE = """
@ct.electron
def feat(x):
    from MOD import build
    return build(x)

@ct.lattice
def flow(x):
    return feat(x)
"""


def test_class15_imports_inside_the_task_body_after_reload(local_code):
    mod = local_code.name("features")
    local_code.write(f"{mod}.py", "def build(x):\n    return x + 1\n")
    nb = Notebook(IMPORT_INSIDE.replace("MOD", mod))
    parent_id = nb.dispatch("flow", 1)
    assert completed(wait(parent_id)).result == 2
    local_code.write(f"{mod}.py", "def build(x):\n    return x + 100\n")
    importlib.reload(sys.modules[mod])
    fresh = completed(nb.dispatch_and_wait("flow", 1))
    assert fresh.result == 101
    child = nb.redispatch_and_wait(parent_id, replace="feat")
    assert_recomputed_or_equal(child, "feat", fresh.result)


@pytest.mark.timeout(120)
def test_class15_imports_inside_the_task_body_after_restart(local_code, covalent_nb_home):
    mod = local_code.name("features")
    local_code.write(f"{mod}.py", "def build(x):\n    return x + 1\n")
    source = IMPORT_INSIDE.replace("MOD", mod)
    nb = Notebook(source)
    parent_id = nb.dispatch("flow", 1)
    assert completed(wait(parent_id)).result == 2
    local_code.write(f"{mod}.py", "def build(x):\n    return x + 100\n")
    # A new kernel: the notebook's cells are run again, then a redispatch with reuse.
    out = run_script(f"""
    nb = Notebook({source!r})
    child = nb.redispatch_and_wait({parent_id!r}, replace="feat")
    fresh = nb.dispatch_and_wait("flow", 1)
    print(json.dumps({{"child": child.result, "fresh": fresh.result, "status": str(child.status),
                      "reason": node(child, "feat")["reason"]}}))
    """, home=covalent_nb_home, extra_paths=[local_code.root])
    assert out["fresh"] == 101
    assert out["child"] == out["fresh"], f"stale value after a restart: {out}"


# =====================================================================================
# Class 16: names used as data
# =====================================================================================
def test_class16_names_used_as_data_renamed_helper():
    nb = Notebook("""
    import pandas as pd

    def spread(s):
        return s.max() - s.min()

    AGGS = [spread]

    @ct.electron
    def summarize(df):
        return df.agg(AGGS).index.tolist()

    @ct.lattice
    def flow(df):
        return summarize(df)
    """)
    df = pd.DataFrame({"x": [1, 5, 3]})
    parent_id = nb.dispatch("flow", df)
    assert completed(wait(parent_id)).result == ["spread"]
    nb.run("def value_range(s):\n    return s.max() - s.min()\nAGGS = [value_range]\n")
    fresh = completed(nb.dispatch_and_wait("flow", df))
    assert fresh.result == ["value_range"]
    child = nb.redispatch_and_wait(parent_id, replace="summarize")
    assert_recomputed_or_equal(child, "summarize", fresh.result)


@pytest.mark.parametrize("where", ["global_instance", "global_class_object", "instance_argument"])
def test_class16_names_used_as_data_renamed_class(where):
    nb = Notebook("""
    class LinearModel:
        def fit(self, x):
            return x

    MODEL = LinearModel()

    @ct.electron
    def label(x):
        return type(MODEL).__name__

    MODEL_CLASS = LinearModel

    @ct.electron
    def label_cls(x):
        return MODEL_CLASS.__name__

    @ct.electron
    def label_of(m):
        return type(m).__name__

    @ct.lattice
    def flow(x):
        return label(x)

    @ct.lattice
    def flow_cls(x):
        return label_cls(x)

    @ct.lattice
    def flow_arg(m):
        return label_of(m)
    """)
    rename = ("class Linear:\n    def fit(self, x):\n        return x\n"
              "MODEL = Linear()\nMODEL_CLASS = Linear\n")
    if where in ("global_instance", "global_class_object"):
        lattice, name = {"global_instance": ("flow", "label"),
                         "global_class_object": ("flow_cls", "label_cls")}[where]
        parent_id = nb.dispatch(lattice, 1)
        assert completed(wait(parent_id)).result == "LinearModel"
        nb.run(rename)
        fresh = completed(nb.dispatch_and_wait(lattice, 1))
        child = nb.redispatch_and_wait(parent_id, replace=name)
    else:
        parent_id = nb.dispatch("flow_arg", nb["MODEL"])
        assert completed(wait(parent_id)).result == "LinearModel"
        nb.run(rename)
        fresh = completed(nb.dispatch_and_wait("flow_arg", nb["MODEL"]))
        child = nb.redispatch_and_wait(parent_id, nb["MODEL"])
        name = "label_of"
    assert fresh.result == "Linear"
    assert_recomputed_or_equal(child, name, fresh.result)


# =====================================================================================
# Class 17: reusable=False kept when an electron is called directly by another
# =====================================================================================
def test_class17_reusable_false_called_directly_inside_an_electron():
    nb = Notebook("""
    import uuid

    @ct.electron(reusable=False)
    def token():
        return uuid.uuid4().hex

    @ct.electron
    def outer(x):
        return f"{x}-{token()}"

    @ct.lattice
    def flow(x):
        return outer(x)
    """)
    parent_id = nb.dispatch("flow", 1)
    parent = completed(wait(parent_id))
    child = completed(nb.redispatch_and_wait(parent_id))
    record = node(child, "outer")
    assert not record["reused"], record["reason"]
    assert child.result != parent.result


# =====================================================================================
# Class 18: results shared live with the notebook
# =====================================================================================
SHARED = """
import pandas as pd

@ct.electron
def load(n):
    return pd.DataFrame({"x": list(range(n))})

@ct.electron
def columns(df):
    return list(df.columns)

@ct.lattice
def flow(n):
    df = load(n)
    return {"df": df, "columns": columns(df)}
"""


@pytest.mark.parametrize("where", ["node_output", "result_value"])
def test_class18_results_shared_live(where):
    nb = Notebook(SHARED)
    parent_id = nb.dispatch("flow", 3)
    parent = completed(wait(parent_id))
    assert parent.result["columns"] == ["x"]
    if where == "node_output":
        node(parent, "load")["output"]["added_in_notebook"] = 0
    else:
        parent.result["df"]["added_in_notebook"] = 0
    nb.run("@ct.electron\ndef columns(df):\n    return sorted(df.columns)\n")  # recomputed downstream
    fresh = completed(nb.dispatch_and_wait("flow", 3))
    assert fresh.result["columns"] == ["x"]
    child = nb.redispatch_and_wait(parent_id, replace="columns")
    completed(child)
    assert child.result["columns"] == fresh.result["columns"], node(child, "load")["reason"]
    assert list(child.result["df"].columns) == ["x"]


def test_class18_results_shared_live_iterator_output():
    nb = Notebook("""
    @ct.electron
    def pairs(n):
        return zip(range(n), range(n))

    @ct.electron
    def count(p):
        return len(list(p))

    @ct.lattice
    def flow(n):
        return count(pairs(n))
    """)
    parent_id = nb.dispatch("flow", 4)
    assert completed(wait(parent_id)).result == 4
    nb.run("@ct.electron\ndef count(p):\n    return sum(1 for _ in p)\n")
    fresh = completed(nb.dispatch_and_wait("flow", 4))
    assert fresh.result == 4
    child = nb.redispatch_and_wait(parent_id, replace="count")
    assert_recomputed_or_equal(child, "count", fresh.result)


# =====================================================================================
# Reuse missed
# =====================================================================================
STABLE = {
    "set_of_strings": ("""
    @ct.electron
    def task(s):
        return sorted(s)

    @ct.lattice
    def flow(s):
        return task(s)
    """, '{"alpha", "beta", "gamma", "delta", "epsilon"}'),
    "frozenset_constant_in_code": ("""
    @ct.electron
    def task(s):
        return s in {"alpha", "beta", "gamma", "delta", "epsilon"}

    @ct.lattice
    def flow(s):
        return task(s)
    """, '"beta"'),
    "notebook_class_instance": ("""
    class Point:
        def __init__(self, x, y):
            self.x, self.y = x, y

    @ct.electron
    def task(p):
        return p.x + p.y

    @ct.lattice
    def flow(p):
        return task(p)
    """, "Point(1, 2)"),
}


@pytest.mark.timeout(180)
@pytest.mark.parametrize("case", sorted(STABLE))
def test_missed_keys_stable_across_processes(case, covalent_nb_home):
    source, arg = STABLE[case]
    first = run_script(f"""
    nb = Notebook({textwrap.dedent(source)!r})
    nb.run("ARG = " + {arg!r})
    r = nb.dispatch_and_wait("flow", nb["ARG"])
    print(json.dumps({{"id": r.dispatch_id, "result": r.result, "key": node(r, "task")["key"]}}))
    """, home=covalent_nb_home, env={"PYTHONHASHSEED": "1"})
    second = run_script(f"""
    nb = Notebook({textwrap.dedent(source)!r})
    nb.run("ARG = " + {arg!r})
    fresh = nb.dispatch_and_wait("flow", nb["ARG"])
    child = nb.redispatch_and_wait({first["id"]!r}, nb["ARG"])
    record = node(child, "task")
    print(json.dumps({{"key": node(fresh, "task")["key"], "reused": record["reused"],
                      "reason": record["reason"], "result": child.result}}))
    """, home=covalent_nb_home, env={"PYTHONHASHSEED": "2"})
    assert second["result"] == first["result"]
    assert second["key"] == first["key"], "the same code and inputs got another key in another process"
    assert second["reused"], second["reason"]


MATCHING = {
    "np_random_with_import_random": ("""
    import random
    import numpy as np

    @ct.electron
    def task(seed):
        return int(np.random.default_rng(seed).integers(1000))
    """, 3, None),
    "date_method_with_from_datetime_import_date": ("""
    from datetime import date, datetime

    @ct.electron
    def task(ts):
        return str(datetime.fromisoformat(ts).date())
    """, "2024-05-06T07:08:09", None),
    "name_attribute_with_global_name": ("""
    import types
    name = "alice"

    @ct.electron
    def task(label):
        return types.SimpleNamespace(name=label).name
    """, "bob", 'name = "carol"'),
}


@pytest.mark.parametrize("case", sorted(MATCHING))
def test_missed_attribute_name_matching_global(case):
    source, arg, later = MATCHING[case]
    nb = Notebook(source, "@ct.lattice\ndef flow(x):\n    return task(x)\n")
    parent_id = nb.dispatch("flow", arg)
    parent = completed(wait(parent_id))
    for args in ((), (arg,)):  # as it stands, and re-traced
        child = completed(nb.redispatch_and_wait(parent_id, *args))
        assert child.result == parent.result
        assert node(child, "task")["reused"], node(child, "task")["reason"]
    child = completed(nb.redispatch_and_wait(parent_id, arg, replace="task"))
    assert node(child, "task")["reused"], node(child, "task")["reason"]
    if later:  # the global with the attribute's name changes: the task never reads it
        nb.run(later)
        child = completed(nb.redispatch_and_wait(parent_id, arg, replace="task"))
        assert node(child, "task")["reused"], node(child, "task")["reason"]


SKLEARN = """
import numpy as np
from sklearn.linear_model import LinearRegression
from sklearn.preprocessing import StandardScaler
from sklearn.pipeline import make_pipeline

X = np.array([[0.0], [1.0], [2.0], [3.0]])
y = np.array([1.0, 3.0, 5.0, 7.0])
MODEL = make_pipeline(StandardScaler(), LinearRegression()).fit(X, y)

@ct.electron
def infer(x):
    return [round(float(v), 6) for v in MODEL.predict(np.array([[x]]))]

@ct.electron
def infer_with(model, x):
    return [round(float(v), 6) for v in model.predict(np.array([[x]]))]

@ct.lattice
def flow(x):
    return infer(x)

@ct.lattice
def flow_arg(model, x):
    return infer_with(model, x)
"""


def test_missed_fitted_sklearn_estimator_global():
    nb = Notebook(SKLEARN)
    parent_id = nb.dispatch("flow", 4.0)
    assert completed(wait(parent_id)).result == [9.0]
    for args, replace in (((), None), ((4.0,), None), ((4.0,), "infer")):
        child = completed(nb.redispatch_and_wait(parent_id, *args, replace=replace))
        assert node(child, "infer")["reused"], node(child, "infer")["reason"]


def test_missed_fitted_sklearn_estimator(tmp_path):
    import joblib

    nb = Notebook(SKLEARN)
    parent_id = nb.dispatch("flow_arg", nb["MODEL"], 4.0)
    assert completed(wait(parent_id)).result == [9.0]
    joblib.dump(nb["MODEL"], tmp_path / "model.joblib")
    loaded = joblib.load(tmp_path / "model.joblib")
    child = completed(nb.redispatch_and_wait(parent_id, loaded, 4.0))
    assert child.result == [9.0]
    assert node(child, "infer_with")["reused"], node(child, "infer_with")["reason"]


@pytest.mark.timeout(120)
def test_missed_fitted_sklearn_estimator_after_restart(covalent_nb_home):
    first = run_script(f"""
    nb = Notebook({SKLEARN!r})
    r = nb.dispatch_and_wait("flow", 4.0)
    print(json.dumps({{"id": r.dispatch_id, "result": r.result}}))
    """, home=covalent_nb_home)
    second = run_script(f"""
    nb = Notebook({SKLEARN!r})
    child = nb.redispatch_and_wait({first["id"]!r}, 4.0, replace="infer")
    record = node(child, "infer")
    print(json.dumps({{"reused": record["reused"], "reason": record["reason"], "result": child.result}}))
    """, home=covalent_nb_home)
    assert second["result"] == first["result"] == [9.0]
    assert second["reused"], second["reason"]


@pytest.mark.parametrize("how", ["column_by_column", "read_back_from_csv", "from_records"])
def test_missed_equal_dataframes_built_differently(how, tmp_path):
    original = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [0.5, 1.5, 2.5], "c": ["x", "y", "z"]})
    if how == "column_by_column":
        other = pd.DataFrame()
        other["a"] = [1.0, 2.0, 3.0]
        other["b"] = [0.5, 1.5, 2.5]
        other["c"] = ["x", "y", "z"]
    elif how == "read_back_from_csv":
        original.to_csv(tmp_path / "frame.csv", index=False)
        other = pd.read_csv(tmp_path / "frame.csv")
    else:
        other = pd.DataFrame.from_records([(1.0, 0.5, "x"), (2.0, 1.5, "y"), (3.0, 2.5, "z")],
                                          columns=["a", "b", "c"])
    assert other.equals(original) and (other.dtypes == original.dtypes).all()
    assert other.index.equals(original.index)
    nb = Notebook("""
    @ct.electron
    def total(df):
        return float(df["a"].sum() + df["b"].sum())

    @ct.lattice
    def flow(df):
        return total(df)
    """)
    parent_id = nb.dispatch("flow", original)
    assert completed(wait(parent_id)).result == 10.5
    child = completed(nb.redispatch_and_wait(parent_id, other))
    assert child.result == 10.5
    assert node(child, "total")["reused"], node(child, "total")["reason"]


def test_frompyfunc_helper_dispatches_and_is_not_reused_or_works():
    helper = "def _twice(x):\n    return x * {k}\nTWICE = np.frompyfunc(_twice, 1, 1)\n"
    nb = Notebook("import numpy as np\n", helper.format(k=2), """
    @ct.electron
    def apply(n):
        return [int(v) for v in TWICE(np.arange(n))]

    @ct.lattice
    def flow(n):
        return apply(n)
    """)
    parent_id = nb.dispatch("flow", 3)  # today: PicklingError from ct.dispatch
    assert completed(wait(parent_id)).result == [0, 2, 4]
    same = completed(nb.redispatch_and_wait(parent_id))
    assert same.result == [0, 2, 4]
    nb.run(helper.format(k=3))
    fresh = completed(nb.dispatch_and_wait("flow", 3))
    assert fresh.result == [0, 3, 6]
    child = nb.redispatch_and_wait(parent_id, replace="apply")
    assert_recomputed_or_equal(child, "apply", fresh.result)


# =====================================================================================
# Decided behaviour: not reusable when it cannot be keyed; the escape hatch
# =====================================================================================
def test_task_reading_globals_is_not_reusable_and_runs():
    nb = Notebook(GLOBALS_BY_NAME)
    parent_id = nb.dispatch("flow", "double", 5)
    assert completed(wait(parent_id)).result == 10
    child = completed(nb.redispatch_and_wait(parent_id))
    record = node(child, "apply")
    assert child.result == 10
    assert not record["reused"]
    assert record["reason"].startswith("recomputed: not reusable ("), record["reason"]


REUSE_KEY = """
import os

@ct.electron(reuse_key=lambda: os.environ.get("FALSE_REUSE_MODE"))
def mode(x):
    return f"{x}-{os.environ.get('FALSE_REUSE_MODE')}"

@ct.electron
def plain(x):
    return x * 2

@ct.lattice
def flow(x):
    return [mode(x), plain(x)]
"""


def test_escape_hatch_reuse_key_changed_value_recomputes(monkeypatch):
    monkeypatch.setenv("FALSE_REUSE_MODE", "a")
    nb = Notebook(REUSE_KEY)
    parent_id = nb.dispatch("flow", 1)
    assert completed(wait(parent_id)).result == ["1-a", 2]
    monkeypatch.setenv("FALSE_REUSE_MODE", "b")
    child = completed(nb.redispatch_and_wait(parent_id))
    assert child.result == ["1-b", 2]
    assert not node(child, "mode")["reused"] and node(child, "mode")["reason"]
    assert node(child, "plain")["reused"], node(child, "plain")["reason"]
    # and with the value back to "a", the parent's output is reused again
    monkeypatch.setenv("FALSE_REUSE_MODE", "a")
    again = completed(nb.redispatch_and_wait(parent_id))
    assert again.result == ["1-a", 2] and node(again, "mode")["reused"]


def test_escape_hatch_reuse_key_unchanged_value_reuses(monkeypatch):
    monkeypatch.setenv("FALSE_REUSE_MODE", "a")
    nb = Notebook(REUSE_KEY)
    parent_id = nb.dispatch("flow", 1)
    assert completed(wait(parent_id)).result == ["1-a", 2]
    for args in ((), (1,)):
        child = completed(nb.redispatch_and_wait(parent_id, *args))
        assert child.result == ["1-a", 2]
        assert node(child, "mode")["reused"], node(child, "mode")["reason"]


def test_escape_hatch_reuse_key_is_called_at_dispatch_in_the_callers_thread(monkeypatch):
    import threading

    calls = []
    nb = Notebook()
    nb["record_call"] = lambda: calls.append(threading.get_ident()) or "k"
    nb.run("""
    @ct.electron(reuse_key=lambda: record_call())
    def task(x):
        return x

    @ct.lattice
    def flow(x):
        return task(x)
    """)
    parent_id = nb.dispatch("flow", 1)
    assert calls and set(calls) == {threading.get_ident()}, "reuse_key was not called at ct.dispatch"
    assert completed(wait(parent_id)).result == 1
