"""A FAILED dispatch is unmistakable wherever a Result shows itself as text."""

from __future__ import annotations

import covalent_nb as ct
from covalent_nb.results.failures import failed_nodes, failures_from_error


@ct.electron
def check_positive(x):
    if x <= 0:
        raise ValueError(f"expected a positive number, got {x}")
    return x


@ct.electron
def add(a, b):
    return a + b


@ct.lattice
def guarded(a, b):
    return add(check_positive(a), check_positive(b))


def test_repr_and_str_of_a_failed_result_name_the_failed_electrons():
    failed = ct.dispatch_sync(guarded)(-1, -2)
    assert failed.status == ct.Result.FAILED
    assert repr(failed) == (f"<Result {failed.dispatch_id} guarded FAILED: check_positive (node 0): "
                            "ValueError: expected a positive number, got -1 (and 1 more failed)>")
    text = str(failed).splitlines()
    at = text.index("status: FAILED")
    assert text[at + 1:at + 4] == [
        "FAILED: 2 of 3 electron(s) failed",
        "  check_positive (node 0): ValueError: expected a positive number, got -1",
        "  check_positive (node 2): ValueError: expected a positive number, got -2"]
    assert [f.node_id for f in failed_nodes(failed)] == [0, 2]


def test_a_completed_result_has_no_failure_lines():
    done = ct.dispatch_sync(guarded)(1, 2)
    assert done.failure_lines() == []
    assert repr(done) == f"<Result {done.dispatch_id} guarded COMPLETED>"
    assert "FAILED" not in str(done)


def test_the_mime_bundle_of_a_failed_result_says_failed_first():
    failed = ct.dispatch_sync(guarded)(-1, 2)
    data, _ = failed._repr_mimebundle_()
    first = data["text/plain"].splitlines()[:2]
    assert first == ["FAILED: 1 of 3 electron(s) failed",
                     "  check_positive (node 0): ValueError: expected a positive number, got -1"]
    assert "application/vnd.jupyter.widget-view+json" in data  # still the live graph


def test_failures_read_back_from_a_dispatch_error_text():
    failed = ct.dispatch_sync(guarded)(-1, -2)
    found = failures_from_error(failed.error)
    assert [(f.node_id, f.name, f.line) for f in found] == [
        (0, "check_positive", "ValueError: expected a positive number, got -1"),
        (2, "check_positive", "")]
    many = failures_from_error("node(s) 1 (a), 2 (b) and 12 more failed; first error:\nKeyError: 1")
    assert [str(f) for f in many] == ["a (node 1): KeyError: 1", "b (node 2)", "and 12 more"]
    assert [str(f) for f in failures_from_error("cancelled; node(s) [3] had failed before")] == [
        "cancelled; node(s) [3] had failed before"]
