"""The text of a failed task's exception: what a failed node's ``error`` holds.

:func:`format_failure` is the one formatter.  It drops covalent_nb's own
frames (the user sees their code, not the machinery that called it) and
keeps the exception line last.  By default it formats as the standard
library's :mod:`traceback` does; a layer above may install a richer
formatter with :func:`set_formatter` (the notebook layer installs IPython's,
which names a notebook's frames ``Cell In[7], line 3`` with their source
lines).  An installed formatter that returns None, or raises, leaves the
failure to the plain format, so a worker process or a script without a
shell is never worse off.

:func:`exception_line` reads the exception line back out of such a text,
for the one-line summaries of a failure.
"""

from __future__ import annotations

import os
import re
import traceback
import types
from typing import Callable, Optional

__all__ = ["Formatter", "format_failure", "plain_format", "set_formatter", "get_formatter",
           "without_own_frames", "exception_line"]

#: ``formatter(exc) -> text or None``: *exc* carries tracebacks with covalent_nb's frames removed.
Formatter = Callable[[BaseException], Optional[str]]

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep

# Read by every executor thread, written once by the layer that installs it
# (at import time): a plain attribute, as Result.display_hook is.
_installed: list = [None]


def set_formatter(formatter: Optional[Formatter]) -> Optional[Formatter]:
    """Install *formatter* for failures (None restores the plain format); return the previous one."""
    previous, _installed[0] = _installed[0], formatter
    return previous


def get_formatter() -> Optional[Formatter]:
    """The installed formatter, or None for the plain format."""
    return _installed[0]


def _is_own(code: types.CodeType) -> bool:
    filename = code.co_filename
    return not filename.startswith("<") and os.path.abspath(filename).startswith(_PACKAGE_DIR)


def without_own_frames(tb: Optional[types.TracebackType]) -> Optional[types.TracebackType]:
    """A copy of the traceback chain *tb* without the frames of covalent_nb's own code."""
    kept = []
    while tb is not None:
        if not _is_own(tb.tb_frame.f_code):
            kept.append(tb)
        tb = tb.tb_next
    chain = None
    for entry in reversed(kept):
        chain = types.TracebackType(chain, entry.tb_frame, entry.tb_lasti, entry.tb_lineno)
    return chain


def _chain(exc: BaseException) -> list:
    """*exc* and every exception reachable from it (causes, contexts, group members)."""
    seen: dict = {}
    todo = [exc]
    while todo:
        one = todo.pop()
        if one is None or id(one) in seen:
            continue
        seen[id(one)] = one
        todo += [one.__cause__, one.__context__]
        todo += list(getattr(one, "exceptions", None) or ()) if isinstance(one, BaseException) and \
            type(one).__name__.endswith("ExceptionGroup") else []
    return list(seen.values())


def plain_format(exc: BaseException) -> str:
    """*exc* formatted as :func:`traceback.format_exception` does."""
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


def format_failure(exc: BaseException, tb: Optional[types.TracebackType] = None) -> str:
    """The text of a task's failure: its traceback without covalent_nb's frames, exception line last.

    *tb* is where the traceback starts (*exc*'s own when omitted).  The
    installed formatter (see :func:`set_formatter`) is used when there is
    one and it answers; otherwise the standard library's format.  The
    tracebacks of *exc* and of the exceptions chained to it are trimmed only
    while formatting, then put back.  Never raises.
    """
    members = _chain(exc)
    saved = [(one, one.__traceback__) for one in members]
    try:
        for one, original in saved:
            one.__traceback__ = without_own_frames(tb if one is exc and tb is not None else original)
        text = None
        formatter = _installed[0]
        if formatter is not None:
            try:
                text = formatter(exc)
            except Exception:  # noqa: BLE001 - a formatter's bug must not lose the failure
                text = None
        if not text:
            text = plain_format(exc)
    except Exception:  # noqa: BLE001 - e.g. an exception whose __str__ raises
        text = f"{type(exc).__name__} (its traceback could not be formatted)"
    finally:
        for one, original in saved:
            one.__traceback__ = original
    return text.rstrip() + "\n"


# Where a frame starts, in the plain format or IPython's: `  File "x.py", line 3, in f`,
# `Cell In[7], line 3`, `File /path/x.py:3, in f`; and a traceback's header line.
_FRAME_HEAD = re.compile(r"^\s*(File \S|Cell In\[)|Traceback \(most recent call last\):?$")
# What follows a frame's head: its source lines (indented, or behind IPython's arrow,
# `---->  3` or `--> 118`: the longer the line number, the shorter the arrow).
_FRAME_BODY = re.compile(r"^(\s|-+> |$)")


def exception_line(text: Optional[str]) -> str:
    """The exception line of a failure's text (``"ValueError: expected a positive number"``).

    That is the first line after the last frame of the last traceback in
    *text* (in the plain format or IPython's), or the first non-empty line
    of a text without a traceback; ``""`` for no text.
    """
    if not text:
        return ""
    lines = text.rstrip().splitlines()
    head = -1
    for index, line in enumerate(lines):
        if _FRAME_HEAD.search(line):
            head = index
    for line in lines[head + 1:]:
        if not _FRAME_BODY.match(line):
            return line.strip()
    return next((line.strip() for line in lines if line.strip()), "")
