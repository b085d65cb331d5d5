"""Keys are the same in every process, and values that code can tell apart get different digests.

Issue 10: the same code and inputs in a new kernel must get the same keys (else a redispatch
after a restart recomputes everything), whatever ``PYTHONHASHSEED`` is: sets of strings,
``frozenset`` constants in code, instances of notebook classes.  And values that compare or
hash alike in Python but that code can observe to differ (dict insertion order, ``1`` vs
``1.0`` vs ``True``, list vs tuple, masks, array subclasses, field names) must get different
digests, or a redispatch could reuse an output computed from another value.

Each cross-process check runs two fresh interpreters with different ``PYTHONHASHSEED`` values
and compares what they print; nothing here hard-codes a digest.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from covalent_nb.dispatch.hashing import hash_value

settings.register_profile(
    "covalent_nb_keys_across_processes",
    # Each example starts two interpreters (about a second each), so a sixth of the examples
    # the reuse properties use, with many values per example.
    max_examples=max(1, int(os.environ.get("COVALENT_NB_HYPOTHESIS_EXAMPLES", "30")) // 6),
    deadline=None,
    derandomize=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                           HealthCheck.data_too_large],
    database=None,
)
PROFILE = settings.get_profile("covalent_nb_keys_across_processes")

pytestmark = pytest.mark.timeout(240)

SEEDS = ("1", "4242")


def run_python(script, seed, tmp_path):
    """Run *script* in a fresh interpreter with PYTHONHASHSEED=*seed*; return its JSON output."""
    env = dict(os.environ, PYTHONHASHSEED=seed, COVALENT_NB_HOME=str(tmp_path / f"home-{seed}"))
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                          timeout=180)
    assert done.returncode == 0, f"PYTHONHASHSEED={seed}: exit {done.returncode}\n{done.stderr}"
    return json.loads(done.stdout.strip().splitlines()[-1])


# -- a notebook, dispatched in two processes -----------------------------------------------------
NOTEBOOK = textwrap.dedent('''
    import dataclasses
    import json

    import numpy as np
    import pandas as pd

    import covalent_nb as ct

    ct.set_config(store="memory")


    @dataclasses.dataclass
    class Point:
        x: int
        y: float


    class Box:
        def __init__(self, items):
            self.items = items

        def total(self):
            return sum(self.items)


    @ct.electron
    def known_tags(tags):
        # the set literal compiles to a frozenset constant in the code object
        return sorted(t for t in tags if t in {"alpha", "beta", "gamma", "delta", "epsilon"})


    @ct.electron
    def area(p):
        return p.x * p.y


    @ct.electron
    def box_total(b):
        return b.total()


    @ct.electron
    def weighted(d):
        return [k * v for k, v in d.items()]


    @ct.electron
    def project(a, m):
        return float((a @ m).sum())


    @ct.electron
    def frame_total(df):
        return float(df["v"].sum()) + len(df["k"].iloc[0])


    @ct.lattice
    def flow(tags, point, box, d, a, m, df):
        return [known_tags(tags), area(point), box_total(box), weighted(d), project(a, m),
                frame_total(df)]


    dispatch_id = ct.dispatch(flow)(
        {"alpha", "beta", "zeta", "eta", "theta", "iota"},
        Point(2, 1.5),
        Box([1, 2, 3]),
        {"x": 1, "yy": 2, "zzz": 3},
        np.arange(6.0).reshape(2, 3),
        np.eye(3),
        pd.DataFrame({"k": ["a", "bb", "ccc"], "v": [1.0, 2.0, 3.0]}),
    )
    result = ct.get_result(dispatch_id, wait=True)
    records = [result.get_node_result(i) for i in range(len(result.graph))]
    print(json.dumps({
        "status": str(result.status),
        "result": repr(result.result),
        "kinds": list(result.graph.kinds),
        "names": [r["node_name"] for r in records],
        "keys": [r["key"] for r in records],
        "errors": [str(r["error"]) for r in records if r["error"]],
    }))
''')


def test_keys_of_a_notebook_dispatch_are_the_same_in_two_processes(tmp_path):
    first, second = (run_python(NOTEBOOK, seed, tmp_path) for seed in SEEDS)
    for out in (first, second):
        assert out["status"] == "COMPLETED", out["errors"]
    assert first["result"] == second["result"]

    def electron_keys(out):
        return {name: key for name, key, kind in zip(out["names"], out["keys"], out["kinds"])
                if kind in ("electron", "sublattice")}

    keys_1, keys_2 = electron_keys(first), electron_keys(second)
    assert set(keys_1) == {"known_tags", "area", "box_total", "weighted", "project", "frame_total"}
    assert all(keys_1.values()) and all(keys_2.values()), (keys_1, keys_2)
    differing = sorted(name for name in keys_1 if keys_1[name] != keys_2.get(name))
    assert not differing, f"keys differ across processes for {differing}"
    # Every node's key (parameters, gathered lists, the return value too), whatever order the
    # nodes of an unordered argument were traced in.
    assert sorted(map(str, first["keys"])) == sorted(map(str, second["keys"]))


# -- hash_value of random nested values, in two processes ----------------------------------------
HASHABLE = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8), st.binary(max_size=8),
                     st.floats(allow_nan=False))
VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=8),
              st.binary(max_size=8)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=4).map(tuple),
        st.dictionaries(st.one_of(st.text(max_size=6), st.integers()), inner, max_size=4),
        st.sets(HASHABLE, max_size=6),
        st.frozensets(st.one_of(HASHABLE, st.frozensets(st.text(max_size=4), max_size=3)), max_size=6),
    ),
    max_leaves=12,
)

DIGESTS = textwrap.dedent('''
    import json
    import pickle
    import sys

    from covalent_nb.dispatch.hashing import hash_value

    with open(sys.argv[1], "rb") as handle:
        values = pickle.load(handle)
    print(json.dumps([hash_value(v) for v in values]))
''')


@PROFILE
@given(values=st.lists(VALUES, min_size=40, max_size=40))
def test_hash_value_is_the_same_in_two_processes(values, tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("digests")
    path = tmp_path / "values.pickle"
    path.write_bytes(pickle.dumps(values))
    script = DIGESTS.replace("sys.argv[1]", repr(str(path)))
    first, second = (run_python(script, seed, tmp_path) for seed in SEEDS)
    assert len(first) == len(second) == len(values)
    differing = [(v, a, b) for v, a, b in zip(values, first, second) if a != b]
    assert not differing, f"{len(differing)} values hash differently across processes, e.g. {differing[0][0]!r}"


# -- values code can tell apart get different digests -------------------------------------------
def _masked_pair():
    data = np.arange(4.0)
    return np.ma.masked_array(data, mask=[0, 1, 0, 0]), np.ma.masked_array(data, mask=[0, 0, 1, 0])


def _structured_pair():
    a = np.array([(1, 2.0), (3, 4.0)], dtype=[("x", "i8"), ("y", "f8")])
    b = a.copy().view(np.dtype([("u", "i8"), ("v", "f8")]))
    return a, b


DISTINCT = {
    "dict insertion order": ({"a": 1, "b": 2}, {"b": 2, "a": 1}),
    "int-keyed dict insertion order": ({1: "x", 2: "y"}, {2: "y", 1: "x"}),
    "nested dict insertion order": ([{"k": 1, "j": 2}], [{"j": 2, "k": 1}]),
    "1 vs 1.0": (1, 1.0),
    "1 vs True": (1, True),
    "1.0 vs True": (1.0, True),
    "0 vs False": (0, False),
    "list vs tuple": ([1, 2], (1, 2)),
    "set vs frozenset": ({1, 2}, frozenset({1, 2})),
    "str vs bytes": ("ab", b"ab"),
    "masked arrays differing only in mask": _masked_pair(),
    "ndarray vs np.matrix": (np.array([[1.0, 2.0], [3.0, 4.0]]), np.matrix([[1.0, 2.0], [3.0, 4.0]])),
    "structured arrays with renamed fields": _structured_pair(),
}


@pytest.mark.parametrize("left, right", list(DISTINCT.values()), ids=list(DISTINCT))
def test_values_code_can_tell_apart_get_different_digests(left, right):
    # Code can observe the difference (iteration order, type, mask, field names; see the guard
    # test below), so the two must not share a key.
    assert hash_value(left) != hash_value(right)


def test_the_distinct_pairs_really_are_told_apart_by_code():
    """Guard for the table above: each pair is observably different to ordinary code."""
    for name, (left, right) in DISTINCT.items():
        observed = (type(left), repr(left), getattr(left, "dtype", None), str(getattr(left, "mask", None)),
                    list(left) if isinstance(left, dict) else None)
        observed_right = (type(right), repr(right), getattr(right, "dtype", None),
                          str(getattr(right, "mask", None)), list(right) if isinstance(right, dict) else None)
        assert observed != observed_right, name


def test_equal_values_built_separately_get_equal_digests():
    """The other half: the digest is about content, not identity (so the checks above mean something)."""
    pairs = [({"a": 1, "b": [1, 2]}, {"a": 1, "b": [1, 2]}),
             ({"x", "y", "z"}, set(["z", "y", "x"])),
             (np.arange(5.0), np.arange(5.0)),
             (_masked_pair()[0], _masked_pair()[0]),
             (_structured_pair()[1], _structured_pair()[1])]
    for left, right in pairs:
        assert left is not right
        assert hash_value(left) == hash_value(right), left
