"""The notebook's namespace: finding names and evaluating what the user typed.

The magics and the redispatch panel read three kinds of text from the user:

* a *name* (``--replace task_2=task_2_redefined``, a dropdown choice): looked
  up, never evaluated;
* an *argument list* (``1, b=4``): evaluated in the notebook's namespace, as
  if it were written between the parentheses of a call;
* a *value* (a panel input): a Python literal, or else an expression
  evaluated in the namespace.

Errors raised by the user's own code are told in one line that points at the
user's line, not at ours (:func:`describe_error`).
"""

from __future__ import annotations

import ast
import os
from typing import Any, Mapping, MutableMapping, Optional

__all__ = ["UserInputError", "user_namespace", "lookup_callable", "evaluate_arguments",
           "parse_value", "describe_error", "KEEP"]

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class UserInputError(ValueError):
    """Something the user typed cannot be used; the message says what and how to fix it."""


class _Keep:
    """An empty input: keep the parent dispatch's value."""

    def __repr__(self) -> str:
        return "KEEP"


#: Returned by :func:`parse_value` for an empty field.
KEEP: Any = _Keep()


def user_namespace() -> MutableMapping[str, Any]:
    """The namespace the user's cells run in: IPython's ``user_ns``, else ``__main__``'s."""
    try:
        from IPython import get_ipython
    except ImportError:  # plain Python
        shell = None
    else:
        shell = get_ipython()
    if shell is not None:
        return shell.user_ns
    import __main__

    return vars(__main__)


def _as_globals(namespace: Mapping[str, Any]) -> dict:
    # eval() wants a real dict; the notebook's user_ns is one, so names
    # defined by a walrus in an input land where the user expects.
    return namespace if isinstance(namespace, dict) else dict(namespace)


def lookup_callable(name: str, namespace: Mapping[str, Any], what: str) -> Any:
    """Return the callable the notebook calls *name* (``f`` or ``module.f``).

    Nothing is evaluated: *name* must be an identifier, or identifiers joined
    by dots, and is resolved by lookup and ``getattr``.  Raises
    :class:`UserInputError` saying why *name* cannot be used, with *what*
    (e.g. ``"--replace task_2=..."``) in front.
    """
    parts = name.split(".")
    if not name or not all(part.isidentifier() for part in parts):
        raise UserInputError(f"{what}: {name!r} is not a name; give the name of an electron "
                             "or function defined in the notebook")
    if parts[0] not in namespace:
        raise UserInputError(f"{what}: there is no {parts[0]!r} in the notebook; define it first "
                             "or check the spelling")
    value = namespace[parts[0]]
    for depth, part in enumerate(parts[1:], start=1):
        try:
            value = getattr(value, part)
        except AttributeError:
            raise UserInputError(f"{what}: {'.'.join(parts[:depth])} has no attribute {part!r}") from None
    if not callable(value):
        raise UserInputError(f"{what}: {name} is a {type(value).__name__}, not a function or "
                             "an electron")
    return value


def _collect(*args: Any, **kwargs: Any) -> tuple:
    return args, kwargs


_COLLECTOR = "__covalent_nb_collect_arguments__"


def evaluate_arguments(text: str, namespace: Mapping[str, Any], what: str) -> tuple:
    """Evaluate an argument list such as ``1, b=x + 1`` in *namespace*.

    Returns ``(args, kwargs)``.  The text is read exactly as it would be
    between the parentheses of a call, so ``*rest`` and ``**options`` work.
    Raises :class:`UserInputError` for a syntax error or an exception raised
    while evaluating.
    """
    text = text.strip()
    if not text:
        return (), {}
    try:
        tree = ast.parse(f"{_COLLECTOR}({text}\n)", mode="eval")
    except SyntaxError as exc:
        raise UserInputError(f"{what}: cannot read the arguments {text!r} ({exc.msg}); write "
                             "them as between the parentheses of a call, e.g. 1, 4 or a=1, b=4") from None
    if not isinstance(tree.body, ast.Call) or not (isinstance(tree.body.func, ast.Name)
                                                   and tree.body.func.id == _COLLECTOR):
        # e.g. "1) + f(2": parses, but is not an argument list
        raise UserInputError(f"{what}: {text!r} is not an argument list; write e.g. 1, 4 or a=1, b=4")
    return call_arguments(tree.body, namespace, what)


def call_arguments(call: ast.Call, namespace: Mapping[str, Any], what: str) -> tuple:
    """Evaluate the arguments of a parsed call (not its function) in *namespace*."""
    collector = ast.Call(func=ast.Name(id=_COLLECTOR, ctx=ast.Load()), args=call.args,
                         keywords=call.keywords)
    expression = ast.fix_missing_locations(ast.copy_location(ast.Expression(collector), call))
    code = compile(expression, "<arguments>", "eval", dont_inherit=True)
    try:
        return eval(code, _as_globals(namespace), {_COLLECTOR: _collect})
    except Exception as exc:
        raise UserInputError(f"{what}: evaluating the arguments raised {describe_error(exc)}") from exc


def parse_value(text: str, namespace: Mapping[str, Any]) -> Any:
    """Read one input field: a Python literal, or an expression evaluated in *namespace*.

    An empty field returns :data:`KEEP`.  Literals are read with
    :func:`ast.literal_eval`, so typing ``4`` or ``[1, 2]`` runs no code;
    anything else is the user's own expression and is evaluated.  Raises
    :class:`UserInputError` with a one-line message for the field.
    """
    text = text.strip()
    if not text:
        return KEEP
    try:
        return ast.literal_eval(text)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        pass
    try:
        code = compile(text, "<input>", "eval", dont_inherit=True)
    except SyntaxError as exc:
        raise UserInputError(f"SyntaxError: {exc.msg}") from None
    try:
        return eval(code, _as_globals(namespace))
    except Exception as exc:
        raise UserInputError(describe_error(exc)) from exc


def _user_frame(exc: BaseException) -> Optional[tuple]:
    """The innermost frame of *exc*'s traceback that is not covalent_nb's own code."""
    found = None
    tb = exc.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        filename = os.path.abspath(code.co_filename) if not code.co_filename.startswith("<") \
            else code.co_filename
        if not filename.startswith(_PACKAGE_DIR + os.sep):
            found = (code.co_name, tb.tb_lineno, code.co_filename)
        tb = tb.tb_next
    return found


def describe_error(exc: BaseException) -> str:
    """One line for an exception: ``Type: message``, plus where in the user's code.

    The location is the innermost frame outside covalent_nb (``in workflow,
    line 3``), so an error raised while tracing a lattice points at the
    lattice's line.  Errors raised by covalent_nb itself already say what is
    wrong and what to do: they are their message alone.
    """
    lines = str(exc).strip().splitlines()
    message = lines[0] if lines else ""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    raised_by_us = tb is not None and os.path.abspath(tb.tb_frame.f_code.co_filename).startswith(
        _PACKAGE_DIR + os.sep)
    if raised_by_us and message:
        return message  # covalent_nb's own messages name the problem and the fix
    text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    frame = _user_frame(exc)
    if frame is not None and frame[0] != "<module>":
        text += f" (in {frame[0]}, line {frame[1]})"
    return text
