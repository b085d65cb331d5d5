"""IPython magics: ``%%lattice``, ``%dispatch``, ``%redispatch`` and ``%dispatches``.

Load them with ``%load_ext covalent_nb`` (or list ``covalent_nb`` in
``c.InteractiveShellApp.extensions`` of an IPython profile).

``%%lattice NAME(PARAMS) [--executor E] [--run] [-o VAR]``
    The cell body becomes the body of ``@ct.lattice def NAME(PARAMS)``; its
    last expression is returned.  With ``--run`` it is dispatched at once with
    the parameters' defaults and its live graph is shown; ``-o VAR`` stores
    that dispatch's id in ``VAR``.
``%dispatch [--reuse] CALL``
    ``%dispatch workflow(1, 2)``: dispatch, show the live graph, return a
    :class:`~covalent_nb.notebook.handle.DispatchHandle`.  ``--reuse`` reuses
    nodes from any earlier dispatch in the store (reuse from history).
``%redispatch [ID] [--replace OLD=NEW]... [--reuse] [ARGS]``
    Redispatch ``ID`` (a dispatch id, or ``$name`` of a variable holding an id
    or a handle; the kernel's last dispatch by default) with electron ``OLD``
    replaced by the notebook's callable ``NEW``, reusing previous results with
    ``--reuse``, and new inputs ``ARGS`` (an argument list, ``1, 4`` or
    ``a=1, b=4``; the parent's inputs when omitted).  Options come before ARGS.
``%dispatches [-n N]``
    The dispatch history of this kernel, newest first.

A mistake in any magic prints one line saying what is wrong and how to fix it
(IPython's ``UsageError``), never a traceback through covalent_nb.  The
dispatch functions behind them are ordinary Python (``ct.dispatch``,
``ct.redispatch``, :class:`~covalent_nb.notebook.panel.RedispatchPanel`), so
front ends without magics lose nothing.
"""

from __future__ import annotations

import __future__
import ast
import functools
import keyword
import operator
import re
import shlex
from typing import Any, Callable, Optional

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class, no_var_expand

from ..dispatch.runtime import RUNTIME
from ..api import dispatch as _dispatch, get_result
from ..redispatch import electron_names, redispatch as _redispatch
from ..workflow.electron import Electron
from ..workflow.lattice import Lattice, lattice as _lattice
from .handle import DispatchHandle
from .graph_widget import show_live
from .panel import live_view
from .history import DispatchHistory, dispatch_records
from .userspace import UserInputError, call_arguments, describe_error, evaluate_arguments, \
    lookup_callable

__all__ = ["CovalentMagics", "load_ipython_extension", "unload_ipython_extension",
           "build_lattice_function"]

#: Executor names a lattice may give as plain words; anything else must name an object.
EXECUTOR_NAMES = ("local", "dask")

_ID_PREFIX = re.compile(r"^[0-9a-fA-F]{4,8}(-[0-9a-fA-F-]*)?$")  # a short id, as %dispatches shows it
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
# The compiler flags that __future__ imports set (IPython's compiler also
# carries mode flags for its own incremental parsing, not ours to pass on).
_FUTURE_FLAGS = functools.reduce(operator.or_, (getattr(__future__, name).compiler_flag
                                                for name in __future__.all_feature_names), 0)

# "-n", "--reuse", "--replace=a=b"; not "-1," or "-x, 4" (negative arguments)
_OPTION = re.compile(r"^--?[A-Za-z][\w-]*(=\S*)?$")


# -- %%lattice: from a header and a body to a real function ------------------------------

def _split_header(line: str) -> tuple[str, str, str]:
    """``"wf(a, b=1) --run"`` -> ``("wf", "a, b=1", "--run")``."""
    match = re.match(r"\s*([A-Za-z_]\w*)\s*(\(?)", line)
    if not match or not line.strip():
        raise UsageError("%%lattice needs the workflow's name and parameters on its first line, "
                         "e.g. %%lattice workflow(a, b)")
    name = match.group(1)
    if keyword.iskeyword(name):
        raise UsageError(f"%%lattice: {name!r} is a Python keyword; choose another name")
    if not match.group(2):
        raise UsageError(f"%%lattice: write the parameters after the name, e.g. "
                         f"%%lattice {name}(a, b) (or {name}() for none)")
    opened = match.end()
    # The first ")" that closes a valid parameter list is the right one; any
    # earlier ")" sits inside a default value or a string.
    for close in (i for i, ch in enumerate(line) if ch == ")" and i >= opened):
        params = line[opened:close]
        try:
            compile(f"def _({params}\n): pass", "<header>", "exec", dont_inherit=True)
        except SyntaxError:
            continue
        return name, params, line[close + 1:]
    try:
        compile(f"def _{line[opened - 1:]}: pass", "<header>", "exec", dont_inherit=True)
    except SyntaxError as exc:
        reason = exc.msg
    else:
        reason = "unbalanced parentheses"
    raise UsageError(f"%%lattice: the parameter list of {name} is not valid Python ({reason}); "
                     f"write it as in a def, e.g. %%lattice {name}(a, b=2)")


def build_lattice_function(name: str, params: str, body: str, namespace: dict,
                           filename: str = "<lattice>", flags: int = 0) -> Any:
    """Define ``def name(params): body`` in *namespace* and return the function.

    The body's last statement, if it is an expression, becomes ``return
    <expression>``.  The function is compiled with *namespace* as its globals,
    so it is an ordinary function of the notebook (module ``__main__`` in a
    kernel): hashed by its code, pickled by value by cloudpickle.  Line
    numbers match the cell's (the magic's line is line 1, as ``def`` is).
    *flags* are the ``__future__`` flags in force in the notebook (IPython's
    ``shell.compile.flags``); this module's own are never inherited, or the
    function's code would differ from the same ``def`` typed in a cell.
    Raises ``SyntaxError`` for a bad body.
    """
    module = ast.parse(body, filename=filename)
    statements = module.body
    if statements and isinstance(statements[-1], ast.Expr):
        last = statements[-1]
        statements[-1] = ast.copy_location(ast.Return(value=last.value), last)
    if not statements:
        statements = [ast.Pass()]
    # The body is shown (linecache, tracebacks) indented under the def line.
    for node in ast.walk(module):
        if hasattr(node, "lineno"):
            node.lineno += 1
            if getattr(node, "end_lineno", None) is not None:
                node.end_lineno += 1
        if hasattr(node, "col_offset"):
            node.col_offset += 4
            if getattr(node, "end_col_offset", None) is not None:
                node.end_col_offset += 4
    signature = ast.parse(f"def {name}({params}\n): pass").body[0]
    signature.body = statements
    signature.lineno, signature.col_offset = 1, 0
    tree = ast.fix_missing_locations(ast.Module(body=[signature], type_ignores=[]))
    code = compile(tree, filename, "exec", flags=flags, dont_inherit=True)
    scratch: dict = {}
    exec(code, namespace, scratch)  # noqa: S102 - the user's own cell, defined like any def
    return scratch[name]


def _parse_options(text: str, spec: dict, usage: str) -> dict:
    """Parse ``--name value`` / ``--name=value`` / flags per *spec* (option -> (key, takes_value))."""
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise UsageError(f"{usage}: cannot read the options ({exc})") from None
    found: dict = {}
    index = 0
    while index < len(words):
        word = words[index]
        option, equals, value = word.partition("=")
        if option not in spec:
            raise UsageError(f"{usage}: unknown option {word!r}; the options are "
                             f"{', '.join(sorted(spec))}")
        key, takes_value = spec[option]
        if key in found:
            raise UsageError(f"{usage}: {option} is given twice")
        if takes_value:
            if not equals:
                index += 1
                if index >= len(words) or _OPTION.match(words[index]):
                    raise UsageError(f"{usage}: {option} needs a value")
                value = words[index]
            found[key] = value
        else:
            if equals:
                raise UsageError(f"{usage}: {option} takes no value")
            found[key] = True
        index += 1
    return found


# -- %redispatch: the line ---------------------------------------------------------------

def _take_word(text: str) -> tuple[str, str]:
    text = text.lstrip()
    match = re.match(r"\S+", text)
    word = match.group(0) if match else ""
    return word, text[len(word):]


def _parse_redispatch(line: str, is_dispatch_id: Callable[[str], bool] = lambda word: False
                      ) -> tuple[Optional[str], list, bool, str]:
    """``(id or $name or None, [(old, new)], reuse, args text)``.

    An id is a full dispatch id or, when *is_dispatch_id* says so, a short one (a
    unique prefix, as ``%dispatches`` shows them).
    """
    source, replaces, reuse = None, [], False
    rest = line.strip()
    while rest:
        word, tail = _take_word(rest)
        if word == "--reuse":
            if reuse:
                raise UsageError("%redispatch: --reuse is given twice")
            reuse, rest = True, tail
        elif word == "--replace" or word.startswith("--replace="):
            if word == "--replace":
                value, rest = _take_word(tail)
                if not value or value.startswith("-"):
                    raise UsageError("%redispatch: --replace needs OLD=NEW, e.g. "
                                     "--replace task_2=task_2_redefined")
            else:
                value, rest = word[len("--replace="):], tail
            old, equals, new = value.partition("=")
            if not equals or not old.isidentifier() or not new:
                raise UsageError(f"%redispatch: --replace takes OLD=NEW (an electron name, then "
                                 f"the name of its replacement), not {value!r}")
            replaces.append((old, new))
        elif _OPTION.match(word):
            raise UsageError(f"%redispatch: unknown option {word!r}; the options are "
                             "--replace OLD=NEW and --reuse")
        elif source is None and not replaces and not reuse and (
                _UUID.match(word) or re.match(r"^\$[A-Za-z_]\w*$", word)
                or _ID_PREFIX.match(word) and is_dispatch_id(word)):
            source, rest = word, tail
        else:
            break
    if re.search(r"(^|[\s,(])--?(replace|reuse)\b", rest):
        raise UsageError("%redispatch: options go before the arguments, e.g. "
                         "%redispatch --replace task_2=task_2_redefined --reuse 1, 4")
    return source, replaces, reuse, rest.strip()


@magics_class
class CovalentMagics(Magics):
    """covalent_nb's magics; see the module docstring for each."""

    # -- helpers ------------------------------------------------------------------------
    @property
    def _ns(self) -> dict:
        return self.shell.user_ns

    def _show(self, dispatch_id: str) -> DispatchHandle:
        result = get_result(dispatch_id)
        view = live_view(result)
        if isinstance(view, str):
            print(view)
        else:
            # The live graph, and under it its static picture (for nbconvert's HTML,
            # saved notebooks, GitHub).  While the dispatch runs, only the picture is
            # refreshed when the final states are drawn: the live view is never redrawn,
            # so it keeps the user's zoom and selection (graph_widget.show_live).
            show_live(view, view.graph)
        return DispatchHandle(dispatch_id, view)

    # -- %%lattice ----------------------------------------------------------------------
    @cell_magic
    @no_var_expand
    def lattice(self, line: str, cell: str) -> None:
        """%%lattice NAME(PARAMS) [--executor E] [--run] [-o VAR]

        Define lattice NAME with the cell as its body (last expression returned)."""
        name, params, rest = _split_header(line)
        options = _parse_options(rest, {"--executor": ("executor", True), "--run": ("run", False),
                                        "-o": ("output", True), "--output": ("output", True)},
                                 "%%lattice")
        output = options.get("output")
        if output is not None and not output.isidentifier():
            raise UsageError(f"%%lattice: -o takes a variable name, not {output!r}")
        if output is not None and not options.get("run"):
            raise UsageError("%%lattice: -o stores the id of the dispatch that --run starts; "
                             "add --run, or use h = %dispatch " + f"{name}(...)")
        executor = self._executor(options.get("executor"))
        filename = self.shell.compile.cache(f"def {name}({params}):\n"
                                            + "\n".join("    " + l for l in cell.splitlines()),
                                            self.shell.execution_count)
        try:
            function = build_lattice_function(name, params, cell, self._ns, filename,
                                              self.shell.compile.flags & _FUTURE_FLAGS)
        except SyntaxError as exc:
            # body line k is line k + 1 of the cell (the magic's line is line 1)
            raise UsageError(f"%%lattice: syntax error in the body of {name}, line "
                             f"{(exc.lineno or 1) + 1} of the cell: {exc.msg}") from None
        workflow = _lattice(function, executor=executor)
        self._ns[name] = workflow
        if options.get("run"):
            self._run_with_defaults(workflow, output)

    def _executor(self, spec: Optional[str]) -> Any:
        if spec is None or spec in EXECUTOR_NAMES:
            return spec
        if spec.isidentifier() and spec in self._ns:
            value = self._ns[spec]  # an executor object, or a variable naming one
            if not isinstance(value, str) or value in EXECUTOR_NAMES:
                return value
        raise UsageError(f"%%lattice: unknown executor {spec!r}; use "
                         f"{' or '.join(EXECUTOR_NAMES)}, or the name of an executor object "
                         "defined in the notebook")

    def _run_with_defaults(self, workflow: Lattice, output: Optional[str]) -> None:
        import inspect

        missing = [p.name for p in inspect.signature(workflow.workflow_function).parameters.values()
                   if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        if missing:
            raise UsageError(f"%%lattice --run: {', '.join(missing)} ha{'s' if len(missing) == 1 else 've'} "
                             f"no default; give defaults in the header or run "
                             f"%dispatch {workflow.__name__}(...) with values")
        dispatch_id = self._start(lambda: _dispatch(workflow)(), "%%lattice --run")
        if output is not None:
            self._ns[output] = dispatch_id
        self._show(dispatch_id)

    @staticmethod
    def _start(start: Any, what: str) -> str:
        """Call *start* (which traces and dispatches) and turn its errors into one line."""
        try:
            return start()
        except UsageError:
            raise
        except Exception as exc:  # covalent_nb's checks or the user's lattice body while tracing
            raise UsageError(f"{what}: {describe_error(exc)}") from exc

    # -- %dispatch ----------------------------------------------------------------------
    @line_magic
    @no_var_expand
    def dispatch(self, line: str) -> DispatchHandle:
        """%dispatch [--reuse] CALL -- dispatch a lattice call, show its live graph, return a handle.

        With ``--reuse``, nodes are reused from any earlier dispatch in the store
        with the same code and inputs (``ct.dispatch(..., reuse_previous_results=True)``)."""
        usage = "%dispatch"
        text = line.strip()
        reuse: Optional[bool] = None
        if text == "--reuse" or text.startswith("--reuse "):
            reuse, text = True, text[len("--reuse"):].strip()
        if not text:
            raise UsageError("%dispatch needs a call of a lattice, e.g. %dispatch workflow(1, 2) "
                             "or %dispatch --reuse workflow(1, 2)")
        try:
            tree = ast.parse(text, mode="eval")
        except SyntaxError as exc:
            raise UsageError(f"%dispatch: {text!r} is not a Python call ({exc.msg}); write e.g. "
                             "%dispatch workflow(1, 2)") from None
        call = tree.body
        if not isinstance(call, ast.Call):
            raise UsageError(f"%dispatch: {text!r} is not a call; add the arguments, e.g. "
                             f"%dispatch {text}(1, 2)")
        target_text = ast.get_source_segment(text, call.func) or "the function"
        try:
            target = eval(compile(ast.Expression(call.func), "<dispatch>", "eval", dont_inherit=True),
                          self._ns)
        except NameError as exc:
            raise UsageError(f"%dispatch: {exc}; define the workflow with %%lattice or "
                             "@ct.lattice first") from None
        except Exception as exc:
            raise UsageError(f"%dispatch: evaluating {target_text} raised {describe_error(exc)}") from exc
        if not isinstance(target, Lattice):
            kind = "an electron" if isinstance(target, Electron) else f"a {type(target).__name__}"
            raise UsageError(f"%dispatch: {target_text} is {kind}, not a lattice; decorate it with "
                             "@ct.lattice or define it with %%lattice")
        try:
            args, kwargs = call_arguments(call, self._ns, usage)
        except UserInputError as exc:
            raise UsageError(str(exc)) from exc.__cause__
        dispatch_id = self._start(lambda: _dispatch(target, reuse_previous_results=reuse)(*args, **kwargs), usage)
        return self._show(dispatch_id)

    # -- %redispatch --------------------------------------------------------------------
    @line_magic
    @no_var_expand
    def redispatch(self, line: str) -> DispatchHandle:
        """%redispatch [ID] [--replace OLD=NEW]... [--reuse] [ARGS] -- redispatch, show, return a handle."""
        usage = "%redispatch"
        source, replaces, reuse, args_text = _parse_redispatch(line, self._names_a_dispatch)
        parent_id = self._parent_id(source)
        electrons = electron_names(get_result(parent_id))
        replacements = {}
        for old, new in replaces:
            if old in replacements:
                raise UsageError(f"%redispatch: {old} is replaced twice")
            if old not in electrons:
                raise UsageError(f"%redispatch: --replace {old}={new}: {old} is not an electron of "
                                 f"{getattr(get_result(parent_id).lattice, '__name__', 'the lattice')}; "
                                 f"its electrons are {', '.join(sorted(set(electrons.values())))}")
            try:
                replacements[old] = lookup_callable(new, self._ns, f"--replace {old}={new}")
            except UserInputError as exc:
                raise UsageError(f"{usage}: {exc}") from None
        try:
            args, kwargs = evaluate_arguments(args_text, self._ns, usage)
        except UserInputError as exc:
            raise UsageError(str(exc)) from exc.__cause__
        start = _redispatch  # validated first (names, signatures), then traced and started
        dispatch_id = self._start(
            lambda: start(parent_id, replace_electrons=replacements or None,
                          reuse_previous_results=reuse)(*args, **kwargs), usage)
        return self._show(dispatch_id)

    def _names_a_dispatch(self, word: str) -> bool:
        """True when *word* is a short dispatch id, not a name of the notebook's."""
        if word in self._ns:
            return False
        try:
            get_result(word)
        except ValueError as exc:
            if "ambiguous" in str(exc):
                raise UsageError(f"%redispatch: {exc}") from None
            return False
        return True

    def _parent_id(self, source: Optional[str]) -> str:
        if source is None:
            dispatch_id = RUNTIME.registry.last_dispatch_id()
            if dispatch_id is None:
                raise UsageError("%redispatch: there is no dispatch in this kernel yet; run "
                                 "%dispatch first, or give a dispatch id")
            return dispatch_id
        if source.startswith("$"):
            name = source[1:]
            if name not in self._ns:
                raise UsageError(f"%redispatch: there is no variable {name!r} in the notebook")
            value = self._ns[name]
            value = getattr(value, "dispatch_id", value)
            if not isinstance(value, str):
                raise UsageError(f"%redispatch: {name} holds a {type(value).__name__}, not a "
                                 "dispatch id or handle")
            source = value
        try:
            get_result(source)
        except ValueError:
            raise UsageError(f"%redispatch: no dispatch {source} in this kernel or its store; "
                             "%dispatches lists them") from None
        return source

    # -- %dispatches --------------------------------------------------------------------
    @line_magic
    def dispatches(self, line: str) -> DispatchHistory:
        """%dispatches [-n N] -- the dispatch history, newest first (at most N rows)."""
        options = _parse_options(line, {"-n": ("limit", True)}, "%dispatches")
        limit = None
        if "limit" in options:
            if not options["limit"].isdigit() or int(options["limit"]) < 1:
                raise UsageError(f"%dispatches: -n takes a positive whole number, not {options['limit']!r}")
            limit = int(options["limit"])
        return DispatchHistory(dispatch_records(limit))


def load_ipython_extension(ipython: Any) -> None:
    """Register the magics (``%load_ext covalent_nb``); loading twice is harmless."""
    ipython.register_magics(CovalentMagics)


def unload_ipython_extension(ipython: Any) -> None:
    """Remove the magics again (``%unload_ext covalent_nb``)."""
    manager = ipython.magics_manager
    for kind in ("line", "cell"):
        table = manager.magics[kind]
        for name, function in list(table.items()):
            if isinstance(getattr(function, "__self__", None), CovalentMagics):
                del table[name]
    manager.registry.pop(CovalentMagics.__name__, None)
