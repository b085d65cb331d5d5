"""What failed in a dispatch, in one line per electron: for the Result's display and the history.

:func:`failed_nodes` reads a live or loaded :class:`~covalent_nb.results.result.Result`:
each failed node's id, name and exception line.  :func:`failures_from_error`
reads the same from a dispatch's stored error text alone (the history lists
many dispatches and loads none of them).  :func:`failure_html` and
:func:`status_badge` draw them, with the same red badge everywhere.
"""

from __future__ import annotations

import html
import re
from typing import Any, NamedTuple, Optional

from ..dispatch.tracebacks import exception_line
from ..states import Status

__all__ = ["Failure", "failed_nodes", "failures_from_error", "failure_text", "failure_html",
           "status_badge", "FAILED_COLOUR"]

#: The red of a failure, themed in JupyterLab, plain red elsewhere.
FAILED_COLOUR = "var(--jp-error-color1, #d32f2f)"
_LISTED = 20  # failed electrons listed before "and N more"


class Failure(NamedTuple):
    """One failed node: its id (None when unknown), name, and exception line."""

    node_id: Optional[int]
    name: str
    line: str
    error: str = ""

    def __str__(self) -> str:
        where = f"{self.name} (node {self.node_id})" if self.node_id is not None else self.name
        return f"{where}: {self.line}" if self.line else where


def failed_nodes(result: Any) -> list[Failure]:
    """The failed nodes of *result*, in node order, each with its exception line."""
    table = result._table
    return [Failure(node, table.names[node], exception_line(table.error.get(node)),
                    table.error.get(node) or "")
            for node, status in enumerate(table.status) if status == Status.FAILED]


# The first line of the dispatcher's error for failed nodes:
# "node(s) 3 (check_positive), 5 (load) and 2 more failed; first error:"
_NODES_FAILED = re.compile(r"^node\(s\) (?P<nodes>.*?)(?P<more> and \d+ more)? failed; first error:$")
_NODE = re.compile(r"(\d+) \((.*?)\)(?:, |$)")


def failures_from_error(error: Optional[str]) -> list[Failure]:
    """The failed nodes named by a dispatch's error text, the first with its exception line.

    Only the first failed node's traceback is in a dispatch's error, so the
    others come without one.  A text in another form (a cancelled dispatch,
    an internal error) gives one entry named after its first line.
    """
    if not error:
        return []
    lines = error.strip().splitlines()
    match = _NODES_FAILED.match(lines[0]) if lines else None
    if match is None:
        return [Failure(None, lines[0] if lines else "", exception_line(error) if len(lines) > 1 else "")]
    found = [Failure(int(node), name, "") for node, name in _NODE.findall(match.group("nodes"))]
    if found:
        first_error = "\n".join(lines[1:])
        found[0] = found[0]._replace(line=exception_line(first_error), error=first_error)
    if match.group("more"):
        found.append(Failure(None, match.group("more").strip(), ""))
    return found


def failure_text(failures: list[Failure], indent: str = "  ") -> list[str]:
    """One line per failure (at most 20, then "and N more"), for text displays."""
    lines = [indent + str(f) for f in failures[:_LISTED]]
    if len(failures) > _LISTED:
        lines.append(f"{indent}and {len(failures) - _LISTED} more")
    return lines


def status_badge(status: Any) -> str:
    """The status as an HTML badge: white on red for FAILED, plain text otherwise."""
    text = html.escape(str(status))
    if str(status) != Status.FAILED:
        return f'<span class="cnb-status" data-status="{text}">{text}</span>'
    return (f'<span class="cnb-status cnb-badge-failed" data-status="{text}" '
            f'style="background: {FAILED_COLOUR}; color: #fff; font-weight: bold; '
            f'padding: 0 6px; border-radius: 3px; white-space: nowrap">✖ {text}</span>')


def failure_html(failures: list[Failure], tracebacks: bool = True) -> str:
    """A list of failed electrons with their exception lines; each traceback one click away."""
    items = []
    for failure in failures[:_LISTED]:
        where = html.escape(failure.name)
        where = f"<code>{where}</code>" + (f" (node {failure.node_id})" if failure.node_id is not None else "")
        line = f": <span class='cnb-failure-line'>{html.escape(failure.line)}</span>" if failure.line else ""
        item = f"{where}{line}"
        if tracebacks and failure.error:
            item += (f"<details class='cnb-failure-traceback'><summary>traceback</summary>"
                     f"<pre style='white-space: pre-wrap; margin: 2px 0'>{html.escape(failure.error)}</pre>"
                     f"</details>")
        data = f' data-node-id="{failure.node_id}"' if failure.node_id is not None else ""
        items.append(f"<li class='cnb-failed-node'{data}>{item}</li>")
    if len(failures) > _LISTED:
        items.append(f"<li>and {len(failures) - _LISTED} more</li>")
    return f"<ul class='cnb-failures' style='margin: 2px 0; padding-left: 20px'>{''.join(items)}</ul>"
