"""The shared pieces of the dispatch history: durations, the table, and what prune accepts."""

from __future__ import annotations

import datetime

import pytest

from covalent_nb.results.history import DispatchList, check_prune_criteria, format_duration, summary
from covalent_nb.results.store import MemoryStore, active_store

# -- durations: one formatter for the history table and the graph's details pane -------------


@pytest.mark.parametrize("seconds, text", [
    (None, ""),
    (0, "0.0 ms"),
    (0.0123, "12.3 ms"),
    (0.9994, "999.4 ms"),
    (1, "1.00 s"),
    (4.567, "4.57 s"),
    (59.9, "59.90 s"),
    (60, "1m 00s"),
    (125.4, "2m 05s"),
    (3725, "1h 02m 05s"),
])
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


# -- the history table: one renderer for ct.list_dispatches() and %dispatches ---------------

PARENT = "aaaaaaaa-1111-2222-3333-444444444444"
CHILD = "bbbbbbbb-1111-2222-3333-444444444444"


def _two() -> DispatchList:
    start = 1_700_000_000_000_000
    return DispatchList([
        summary(CHILD, "flow", "COMPLETED", start + 2_000_000, start + 2_500_000, PARENT, 1, 3),
        summary(PARENT, "flow", "FAILED", start, start + 75_000_000, None, 0, 4),
    ])


def test_the_table_as_text_shows_lineage_short_ids_and_durations():
    lines = str(_two()).splitlines()
    assert lines[0].split() == ["id", "lattice", "status", "start", "duration", "parent",
                                "reused", "recomputed"]
    assert set(lines[1]) == {"-", " "}
    child, parent = lines[2].split(), lines[3].split()
    assert child[:4] == ["↳", CHILD[:8], "flow", "COMPLETED"]
    assert child[-5:] == ["500.0", "ms", PARENT[:8], "1", "3"]
    assert parent[0] == PARENT[:8] and parent[-4:] == ["1m", "15s", "0", "4"]  # no parent
    assert str(DispatchList()) == "no dispatches yet"


def test_the_table_as_html_keeps_full_ids_and_statuses():
    page = _two()._repr_html_()
    assert page.startswith('<table class="cnb-history">')
    assert f'<tr data-id="{CHILD}" data-status="COMPLETED">' in page
    assert f'<td title="{CHILD}"><code>↳ {CHILD[:8]}</code></td>' in page
    assert f'<td title="{PARENT}"><code>{PARENT[:8]}</code></td>' in page
    assert "<td>500.0 ms</td>" in page and "<td>1m 15s</td>" in page
    assert DispatchList()._repr_html_() == "<p>no dispatches yet</p>"


def test_the_table_escapes_html():
    listed = DispatchList([summary("<id>", "<b>flow</b>", "COMPLETED", None, None, None, None, None)])
    page = listed._repr_html_()
    assert "<b>" not in page and "&lt;b&gt;flow&lt;/b&gt;" in page


# -- a FAILED dispatch stands out, with what failed and why ----------------------------------

FAILED_ERROR = ("node(s) 3 (check_positive), 5 (load) failed; first error:\n"
                + "-" * 75 + "\nValueError" + " " * 32 + "Traceback (most recent call last)\n"
                "Cell In[7], line 4, in check_positive(x)\n      3 if x <= 0:\n"
                "----> 4     raise ValueError(f'expected a positive number, got {x}')\n\n"
                "ValueError: expected a positive number, got -4\n")


def _with_failure() -> DispatchList:
    start = 1_700_000_000_000_000
    return DispatchList([
        summary(CHILD, "guarded", "FAILED", start, start + 1_000, None, 0, 4, FAILED_ERROR),
        summary(PARENT, "flow", "COMPLETED", start, start + 1_000, None, 0, 4),
    ])


def test_a_failed_dispatch_in_the_text_table_is_marked_and_names_its_failed_electrons():
    lines = str(_with_failure()).splitlines()
    assert lines[2].split()[:4] == [CHILD[:8], "guarded", "✖", "FAILED"]
    assert lines[3] == "    ✖ check_positive (node 3): ValueError: expected a positive number, got -4"
    assert lines[4] == "    ✖ load (node 5)"  # only the first failure's traceback is in the dispatch's error
    assert lines[5].split()[:3] == [PARENT[:8], "flow", "COMPLETED"]


def test_a_failed_dispatch_in_the_html_table_has_a_red_badge_and_a_failure_row():
    page = _with_failure()._repr_html_()
    assert page.count("<tr data-id=") == 2
    row = page[page.index(f'<tr data-id="{CHILD}"'):page.index(f'<tr data-id="{PARENT}"')]
    assert 'class="cnb-status cnb-badge-failed" data-status="FAILED"' in row
    assert "background: var(--jp-error-color1, #d32f2f)" in row and "✖ FAILED" in row
    assert f'<tr class="cnb-history-failure" data-failed-id="{CHILD}">' in row
    assert ("<code>check_positive</code> (node 3): <span class='cnb-failure-line'>ValueError: expected "
            "a positive number, got -4</span>") in row
    assert "<code>load</code> (node 5)" in row
    completed = page[page.index(f'<tr data-id="{PARENT}"'):]
    assert "cnb-badge-failed" not in completed and "cnb-history-failure" not in completed


def test_both_stores_keep_the_error_for_the_history(home):
    import covalent_nb as ct

    @ct.electron
    def check_positive(x):
        if x <= 0:
            raise ValueError(f"expected a positive number, got {x}")
        return x

    @ct.lattice
    def guarded(x):
        return check_positive(x)

    for store in ("sqlite", "memory"):
        ct.set_config(store=store)
        failed = ct.dispatch_sync(guarded)(-4)
        [record] = [r for r in ct.list_dispatches(limit=5) if r["id"] == failed.dispatch_id]
        assert record["error"] == failed.error
        lines = str(DispatchList([record])).splitlines()
        assert lines[3] == "    ✖ check_positive (node 0): ValueError: expected a positive number, got -4"
    ct.set_config(store="sqlite")


# -- prune: one check for both stores ------------------------------------------------------

BAD_PRUNES = [
    (dict(), ValueError, "say what to prune"),
    (dict(older_than=30), TypeError, "older_than is a datetime.timedelta"),
    (dict(keep_last=-1), ValueError, r"keep_last is a number of dispatches \(0 or more\), not -1"),
    (dict(keep_last=2.5), ValueError, r"keep_last is a number of dispatches \(0 or more\), not 2.5"),
    (dict(keep_last=True), ValueError, r"keep_last is a number of dispatches \(0 or more\), not True"),
    (dict(status="DONE"), ValueError, "status 'DONE' is not a dispatch status; the statuses of ended "
                                      "dispatches are CANCELLED, COMPLETED, FAILED, INTERRUPTED"),
    (dict(status=["FAILED", "failed"]), ValueError, "status 'failed' is not a dispatch status"),
    (dict(status="RUNNING"), ValueError, "status 'RUNNING': only ended dispatches are pruned"),
    (dict(status=[]), ValueError, "status is empty: it would prune nothing"),
    (dict(status=3), TypeError, "status is a status or a list of them"),
]


@pytest.mark.parametrize("kwargs, error, message", BAD_PRUNES)
def test_both_stores_reject_the_same_bad_prunes_with_the_same_message(home, kwargs, error, message):
    durable = active_store()
    assert durable.location != "memory"
    raised = []
    for store in (MemoryStore(), durable):
        with pytest.raises(error, match=message) as info:
            store.prune_dispatches(**kwargs)
        raised.append(str(info.value))
    assert raised[0] == raised[1]


def test_prune_criteria_select_ended_dispatches_matching_every_criterion():
    now_us = int(datetime.datetime.now().timestamp() * 1e6)
    hour_us = 3600 * 10**6
    criteria = check_prune_criteria(older_than=datetime.timedelta(minutes=30), keep_last=1,
                                    status=["FAILED", "COMPLETED"])
    assert criteria.selects(1, "FAILED", now_us - hour_us)
    assert not criteria.selects(0, "FAILED", now_us - hour_us)      # among the newest kept
    assert not criteria.selects(1, "FAILED", now_us)                # too recent
    assert not criteria.selects(1, "CANCELLED", now_us - hour_us)   # status not asked for
    assert not criteria.selects(1, "RUNNING", now_us - hour_us)     # never a running one
    assert check_prune_criteria(status="CANCELLED").selects(0, "CANCELLED", None)
