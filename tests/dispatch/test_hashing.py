"""Keys: stable under cosmetic edits, sensitive to anything that changes a result."""

import functools
import math

import numpy as np
import pytest

from covalent_nb.dispatch.hashing import Unhashable, hash_function, hash_value


def define(source, **extra):
    """Run *source* as a notebook cell would (module ``__main__``) and return its namespace."""
    namespace = {"__name__": "__main__", **extra}
    exec(compile(source, "<cell>", "exec"), namespace)
    return namespace


BASE = """
SCALE = 3

def helper(x):
    return x * SCALE

def task(x, y=1):
    # multiply then shift
    return helper(x) + y
"""


def task_key(source, **extra):
    return hash_function(define(source, **extra)["task"])


def test_rerunning_the_same_cell_gives_the_same_key():
    assert task_key(BASE) == task_key(BASE)


def test_comments_blank_lines_and_line_numbers_do_not_matter():
    edited = "\n\n\n" + BASE.replace("# multiply then shift", "# a different comment\n    # and more")
    assert task_key(edited) == task_key(BASE)


def test_docstrings_do_not_matter():
    with_doc = BASE.replace("def task(x, y=1):\n", 'def task(x, y=1):\n    """Say what it does."""\n')
    assert task_key(with_doc) == task_key(BASE)


@pytest.mark.parametrize("edit", [
    ("helper(x) + y", "helper(x) - y"),          # body
    ("return x * SCALE", "return x * SCALE + 0"),  # a helper's body
    ("SCALE = 3", "SCALE = 4"),                    # a global constant
    ("y=1", "y=2"),                                # a default
])
def test_anything_that_changes_the_result_changes_the_key(edit):
    assert task_key(BASE.replace(*edit)) != task_key(BASE)


def test_helpers_are_followed_transitively():
    deep = """
def leaf(x):
    return x + 1

def middle(x):
    return leaf(x)

def task(x):
    return middle(x)
"""
    assert task_key(deep.replace("x + 1", "x + 2")) != task_key(deep)


def test_closure_values_are_part_of_the_key():
    def make(k):
        def task(x):
            return x * k
        return task

    assert hash_function(make(2)) == hash_function(make(2))
    assert hash_function(make(2)) != hash_function(make(3))


def test_libraries_are_keyed_by_name_and_version_not_by_code():
    with_math = define("import math\ndef task(x):\n    return math.sqrt(x)\n")
    parts_key = hash_function(with_math["task"])
    assert parts_key == hash_function(define("import math\ndef task(x):\n    return math.sqrt(x)\n")["task"])
    assert hash_function(math.sqrt) == hash_function(math.sqrt)
    assert hash_function(np.sum) != hash_function(np.mean)


def test_recursive_functions_terminate():
    ns = define("def fact(n):\n    return 1 if n < 2 else n * fact(n - 1)\n")
    assert hash_function(ns["fact"]) == hash_function(ns["fact"])


@pytest.mark.parametrize("a, b", [
    (1, 2), (1, 1.0), (True, 1), ("a", "b"), (b"a", b"b"), (None, 0), (1.5, 1.25), (1j, 2j),
    ([1, 2], [2, 1]), ((1,), [1]), ({1, 2}, {1, 3}), ({"a": 1}, {"a": 2}), ({"a": 1}, {"b": 1}),
    (np.arange(3), np.arange(4)), (np.arange(3), np.arange(3.0)), (np.zeros((2, 3)), np.zeros((3, 2))),
    (np.float64(1.0), np.float32(1.0)), (functools.partial(max, 1), functools.partial(max, 2)),
])
def test_different_values_have_different_digests(a, b):
    assert hash_value(a) != hash_value(b)


@pytest.mark.parametrize("make", [
    lambda: 7, lambda: "text", lambda: [1, [2, (3,)]], lambda: {"b": 1, "a": 2}, lambda: {3, 1, 2},
    lambda: np.arange(10).reshape(2, 5), lambda: np.array(["a", None], dtype=object),
    lambda: functools.partial(max, 1),
])
def test_equal_values_have_equal_digests(make):
    assert hash_value(make()) == hash_value(make())


def test_dict_order_matters_because_code_that_iterates_a_dict_sees_it():
    assert hash_value({"a": 1, "b": 2}) != hash_value({"b": 2, "a": 1})
    assert hash_value({1: "x", 2: "y"}) != hash_value({2: "y", 1: "x"})


def test_sets_are_digested_in_a_canonical_order():
    assert hash_value({"b", "a", "c"}) == hash_value({"c", "a", "b"})


def test_a_value_that_cannot_be_pickled_is_unhashable_with_the_reason():
    import threading

    with pytest.raises(Unhashable, match="cannot be keyed"):
        hash_value(threading.Lock())
