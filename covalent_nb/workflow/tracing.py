"""Tracing: turning a lattice's Python body into a :class:`TransportGraph`.

While a lattice builds its graph, every electron call goes through
:func:`record_call` instead of running.  The call appends the electron's node,
then wires each argument in signature order:

* an output of another call (a :class:`BoundElectron`): an edge;
* a list, tuple or set: an ``:electron_list:`` node gathering its items;
* a dict: an ``:electron_dict:`` node gathering its values;
* anything else: a fresh ``:parameter:<value>`` node, every time (no dedup),
  exactly as Covalent numbers them.

The call returns a :class:`BoundElectron` standing for the node's future
output; indexing, attribute access, unpacking and arithmetic on it add getter
and operator nodes.
"""

from __future__ import annotations

import dataclasses
import dis
import functools
import inspect
import operator
import sys
import threading
import types
import weakref
from typing import Any, Callable, Optional

from ..states import NodeKind
from .graph import (ELECTRON_DICT_NAME, ELECTRON_LIST_NAME, PARAMETER_PREFIX,
                    POSTPROCESS_NAME, SUBLATTICE_PREFIX, WAIT_EDGE_NAME, TransportGraph)

__all__ = ["BoundElectron", "Build", "current_build", "record_call", "wait", "gather_set", "packs_as_is"]

_local = threading.local()


class Build:
    """The state of one trace in progress: the graph and the replacements."""

    __slots__ = ("graph", "replacements", "replaced", "electron_names", "signatures", "open_containers",
                 "_outer")

    def __init__(self, replacements: Optional[dict] = None) -> None:
        self.graph = TransportGraph()
        self.replacements = replacements or None
        self.replaced: set = set()
        self.electron_names: set = set()
        self.signatures: dict = {}  # id(function) -> signature, for this trace (functions live as long)
        self.open_containers: list = []  # ids of the containers being wired, outermost first

    def __enter__(self) -> "Build":
        self._outer = getattr(_local, "build", None)
        _local.build = self
        return self

    def __exit__(self, *exc) -> None:
        _local.build = self._outer


def current_build() -> Optional[Build]:
    """Return the trace in progress on this thread, or None."""
    return getattr(_local, "build", None)


class BoundElectron:
    """The future output of a node, as seen while tracing a lattice."""

    __slots__ = ("node_id", "_name", "_build")

    def __init__(self, node_id: int, name: str, build: Build) -> None:
        self.node_id = node_id
        self._name = name
        self._build = build

    def __repr__(self) -> str:
        return f"<output of {self._name} (node {self.node_id})>"

    def __getitem__(self, key: Any) -> "BoundElectron":
        return _internal_call(self._build, f":{self._name}.__getitem__", NodeKind.GETTER, _getitem, (self, key))

    def __getattr__(self, attr: str) -> "BoundElectron":
        if attr.startswith("_"):
            raise AttributeError(attr)
        return _internal_call(self._build, f":{self._name}.__getattr__", NodeKind.GETTER, getattr, (self, attr))

    def __iter__(self):
        count = _unpack_count(sys._getframe(1))
        for index in range(count):
            yield _internal_call(self._build, f":{self._name}()[{index}]", NodeKind.GETTER, _getitem, (self, index))

    def __bool__(self) -> bool:
        raise TypeError(
            f"the output of {self._name} (node {self.node_id}) is not known while the lattice is "
            "being traced, so it cannot decide an if/while; branch inside an electron, or call a "
            "sublattice (ct.electron(other_lattice)(...)) whose body branches on real values"
        )

    def __len__(self) -> int:
        raise TypeError(
            f"the length of {self._name}'s output (node {self.node_id}) is not known while the "
            "lattice is being traced; unpack it (p, q = task(x)) or index it (task(x)[0])"
        )

    def wait_for(self, parents: Any) -> "BoundElectron":
        """Make this node wait for *parents* (outputs or a list of them) to finish."""
        wait(self, parents)
        return self


def _getitem(obj: Any, key: Any) -> Any:
    return obj[key]


def _unpack_count(frame) -> int:
    """How many values the caller unpacks from the object being iterated."""
    for instruction in dis.get_instructions(frame.f_code):
        if instruction.offset == frame.f_lasti:
            if instruction.opname == "UNPACK_SEQUENCE":
                return instruction.arg
            break
    raise TypeError(
        "an electron's output can only be iterated while tracing by unpacking it "
        "(p, q = task(x)); index it instead (task(x)[0]) or loop inside another electron"
    )


_OPERATORS = {
    "+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
    "//": operator.floordiv, "%": operator.mod, "**": operator.pow, "@": operator.matmul,
}


def _operand_name(value: Any) -> str:
    return value._name if type(value) is BoundElectron else repr(value)


def _make_operator(symbol: str, reflected: bool) -> Callable:
    function = _OPERATORS[symbol]

    def method(self: BoundElectron, other: Any) -> BoundElectron:
        left, right = (other, self) if reflected else (self, other)
        name = f"{_operand_name(left)}_{symbol}_{_operand_name(right)}"
        return _internal_call(self._build, name, NodeKind.OPERATOR, function, (left, right))

    return method


for _name, _symbol in (("add", "+"), ("sub", "-"), ("mul", "*"), ("truediv", "/"),
                       ("floordiv", "//"), ("mod", "%"), ("pow", "**"), ("matmul", "@")):
    setattr(BoundElectron, f"__{_name}__", _make_operator(_symbol, False))
    setattr(BoundElectron, f"__r{_name}__", _make_operator(_symbol, True))


# -- the internal functions that collection and postprocess nodes run ---------
def _as_list(*items: Any) -> list:
    return list(items)


def _as_tuple(*items: Any) -> tuple:
    return tuple(items)


def _as_set(*items: Any) -> set:
    return set(items)


def _as_dict(**items: Any) -> dict:
    return dict(items)


def _reconstruct(retval: Any) -> Any:
    return retval


def _as_namedtuple(kind: type, *items: Any) -> Any:
    return kind(*items)


def _as_dataclass(kind: type, names: tuple, *values: Any) -> Any:
    return kind(**dict(zip(names, values)))


def _as_keyed_dict(keys: tuple, *values: Any) -> dict:
    return dict(zip(keys, values))


def packs_as_is(function: Any) -> bool:
    """True for the functions of collection and postprocess nodes that only put their inputs in a
    list, tuple or dict (or return them), never looking at them: such a node can pack references
    to values kept elsewhere (a Dask output) as well as the values.  A set (hashes its items), a
    namedtuple or a dataclass (runs the user's class) is not one of them."""
    if type(function) is functools.partial:
        return function.func is _as_keyed_dict and not function.keywords
    return function is _reconstruct or function is _as_list or function is _as_tuple or function is _as_dict


def _holds_output(value: Any, max_depth: Optional[int] = 8) -> bool:
    """True when *value* holds an electron's output (a placeholder) somewhere inside.

    Looks *max_depth* levels in (the quick check every argument gets), or, with
    None, at any depth and through cycles (what a structure too deep to unfold
    gets before it is passed on as one value).  Iterative: depth costs no stack.
    """
    seen: Optional[set] = set() if max_depth is None else None
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if type(item) is BoundElectron:
            return True
        if isinstance(item, (str, bytes, int, float, complex, type(None), type)):
            continue
        if seen is not None:
            if id(item) in seen:
                continue
            seen.add(id(item))
        elif depth > max_depth:
            continue
        below = depth + 1
        if isinstance(item, dict):
            stack.extend((k, below) for k in item.keys())
            stack.extend((v, below) for v in item.values())
        elif isinstance(item, (list, tuple, set, frozenset)):
            stack.extend((v, below) for v in item)
        elif dataclasses.is_dataclass(item):
            stack.extend((getattr(item, f.name, None), below) for f in dataclasses.fields(item))
        elif isinstance(getattr(item, "__dict__", None), dict):
            stack.extend((v, below) for v in item.__dict__.values())
    return False


_COLLECTORS = {list: _as_list, tuple: _as_tuple, set: _as_set, frozenset: _as_set}


# -- signatures, cached per function --------------------------------------------
class _Signature:
    __slots__ = ("positional", "required", "names", "varargs", "varkw", "text", "n_required",
                 "n_positional")

    def __init__(self, function: Callable) -> None:
        signature = inspect.signature(function)
        self.positional: list = []
        self.required: set = set()
        self.names: set = set()
        self.varargs: Optional[str] = None
        self.varkw = False
        for p in signature.parameters.values():
            if p.kind is p.VAR_POSITIONAL:
                self.varargs = p.name
            elif p.kind is p.VAR_KEYWORD:
                self.varkw = True
            else:
                if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
                    self.positional.append(p.name)
                if p.kind is not p.POSITIONAL_ONLY:
                    self.names.add(p.name)
                if p.default is p.empty:
                    self.required.add(p.name)
        self.text = f"{getattr(function, '__name__', 'task')}{signature}"
        # Positional-only fast path is valid when the required ones lead the positional list.
        leading = 0
        for name in self.positional:
            if name not in self.required:
                break
            leading += 1
        self.n_required = leading if leading == len(self.required) else len(self.positional) + 1
        self.n_positional = len(self.positional) if self.varargs is None else 1 << 30


# Each dispatch traces its own frozen copies of the functions, so the cache is keyed by what
# a signature depends on, never by (and never keeping alive) a function object: plain
# functions without defaults or annotations by their code object (equal for equal code),
# any other callable weakly.
_signatures_by_code: dict = {}
_signatures: "weakref.WeakKeyDictionary[Any, _Signature]" = weakref.WeakKeyDictionary()


def signature_of(function: Callable) -> _Signature:
    """Return the cached, pre-digested signature of *function*."""
    if (type(function) is types.FunctionType and function.__defaults__ is None
            and function.__kwdefaults__ is None and not function.__annotations__):
        code = function.__code__
        sig = _signatures_by_code.get(code)
        if sig is None:
            if len(_signatures_by_code) > 10000:
                _signatures_by_code.clear()
            sig = _signatures_by_code[code] = _Signature(function)
        return sig
    try:
        sig = _signatures.get(function)
    except TypeError:  # not weakly referenceable: no cache
        return _Signature(function)
    if sig is None:
        sig = _Signature(function)
        try:
            _signatures[function] = sig
        except TypeError:
            pass
    return sig


def check_arguments(sig: _Signature, args: tuple, kwargs: dict, what: str) -> None:
    """Raise ``TypeError`` naming *what* and its signature when args do not fit."""
    if not kwargs and sig.n_required <= len(args) <= sig.n_positional:
        return  # the common case: positional arguments only, all required ones given
    problem = None
    if len(args) > len(sig.positional) and sig.varargs is None:
        problem = f"takes {len(sig.positional)} positional argument(s) but {len(args)} were given"
    else:
        given = set(sig.positional[:len(args)])
        for name in kwargs:
            if name in given:
                problem = f"got multiple values for argument {name!r}"
                break
            if name not in sig.names and not sig.varkw:
                problem = f"got an unexpected keyword argument {name!r}"
                break
        else:
            missing = [n for n in sig.required if n not in given and n not in kwargs]
            if missing:
                problem = f"is missing required argument(s) {', '.join(repr(m) for m in sorted(missing))}"
    if problem:
        raise TypeError(f"{what} {problem}; its signature is {sig.text}")


# -- recording calls --------------------------------------------------------------
def record_call(build: Build, electron: Any, args: tuple, kwargs: dict) -> BoundElectron:
    """Add a node for a call of *electron* and wire its arguments."""
    function = electron.function
    name = function.__name__
    replacements = build.replacements
    replaced = False
    if replacements is not None and name in replacements:
        electron = replacements[name]
        function = electron.function
        name = function.__name__
        replaced = True
    graph = build.graph
    if electron.is_sublattice:
        node = graph.add_node(SUBLATTICE_PREFIX + name, NodeKind.SUBLATTICE, function, None, electron.metadata)
    else:
        node = graph.add_node(name, NodeKind.ELECTRON, function, None, electron.metadata)
    build.electron_names.add(name)
    if replaced:
        build.replaced.add(node)
    target = function.workflow_function if electron.is_sublattice else function
    sig = build.signatures.get(id(target))
    if sig is None:
        sig = build.signatures[id(target)] = signature_of(target)
    if kwargs or not sig.n_required <= len(args) <= sig.n_positional:  # (the message only when needed)
        check_arguments(sig, args, kwargs, f"electron {name}()")
    positional = sig.positional
    for index, value in enumerate(args):
        edge_name = positional[index] if index < len(positional) else sig.varargs
        _connect(build, value, node, edge_name, "arg", index)
    for key, value in kwargs.items():
        _connect(build, value, node, key, "kwarg", None)
    return BoundElectron(node, name, build)


def _internal_call(build: Build, name: str, kind: str, function: Callable, args: tuple,
                   kwargs: Optional[dict] = None) -> BoundElectron:
    node = build.graph.add_node(name, kind, function, None, None)
    for index, value in enumerate(args):
        _connect(build, value, node, f"arg[{index}]" if kind in (NodeKind.ELECTRON_LIST, NodeKind.OPERATOR) else
                 ("obj", "key")[index] if kind == NodeKind.GETTER else "retval", "arg", index)
    if kwargs:
        for key, value in kwargs.items():
            _connect(build, value, node, key, "kwarg", None)
    return BoundElectron(node, name, build)


#: Containers nested deeper than this inside an argument are not unfolded into
#: collector nodes (Covalent unfolds every level, and recursion fails near 500).
MAX_NESTING = 100


#: Exact types of arguments that are parameters as they are (no electron output can hide inside).
_PLAIN = frozenset({int, float, bool, complex, str, bytes, type(None)})


def _connect(build: Build, value: Any, node: int, edge_name: str, param_type: str,
             arg_index: Optional[int]) -> None:
    kind = type(value)
    graph = build.graph
    if kind is BoundElectron:
        graph.add_edge(value.node_id, node, edge_name, param_type, arg_index)
        return
    if kind in _PLAIN:  # the commonest argument: a parameter, nothing inside to look at
        parameter = graph.add_node(PARAMETER_PREFIX + _text_of(value), NodeKind.PARAMETER, None, value, None)
        graph.add_edge(parameter, node, edge_name, param_type, arg_index)
        return
    is_sequence = kind in _COLLECTORS or (isinstance(value, (list, tuple, set, frozenset))
                                          and not hasattr(value, "_fields"))
    is_str_dict = not is_sequence and isinstance(value, dict) and all(type(k) is str for k in value)
    holds_output = not (is_sequence or is_str_dict) and _holds_output(value)
    if is_sequence or is_str_dict or holds_output:
        opened = build.open_containers
        if len(opened) >= MAX_NESTING or id(value) in opened:
            _connect_as_value(build, value, node, edge_name, param_type, arg_index,
                              "contains itself" if id(value) in opened else
                              f"is nested more than {MAX_NESTING} levels deep")
            return
        opened.append(id(value))
        try:
            if is_sequence:
                collector = _COLLECTORS.get(kind) or _COLLECTORS[next(t for t in _COLLECTORS if isinstance(value, t))]
                bound = _internal_call(build, ELECTRON_LIST_NAME, NodeKind.ELECTRON_LIST, collector, tuple(value))
            elif is_str_dict:
                bound = _internal_call(build, ELECTRON_DICT_NAME, NodeKind.ELECTRON_DICT, _as_dict, (), value)
            else:  # a structure holding electron outputs: gathered, then rebuilt when its inputs are known
                collector, items = _gatherer(value)
                bound = _internal_call(build, ELECTRON_LIST_NAME, NodeKind.ELECTRON_LIST, collector, items)
        finally:
            opened.pop()
        graph.add_edge(bound.node_id, node, edge_name, param_type, arg_index)
    else:
        parameter = graph.add_node(PARAMETER_PREFIX + _text_of(value), NodeKind.PARAMETER, None, value, None)
        graph.add_edge(parameter, node, edge_name, param_type, arg_index)


def _connect_as_value(build: Build, value: Any, node: int, edge_name: str, param_type: str,
                      arg_index: Optional[int], why: str) -> None:
    """Wire a container that *why* keeps from being unfolded as one parameter (its value as is).

    Refused when an electron's output sits anywhere inside: it would arrive as a placeholder.
    """
    if _holds_output(value, max_depth=None):
        raise TypeError(f"an argument of node {node} {why} and holds an electron's output, which "
                        "covalent_nb cannot trace; pass that output as an argument of its own (or "
                        "flatten the structure)")
    parameter = build.graph.add_node(PARAMETER_PREFIX + _text_of(value), NodeKind.PARAMETER, None, value, None)
    build.graph.add_edge(parameter, node, edge_name, param_type, arg_index)


def _gatherer(value: Any) -> tuple:
    """``(collector, items)`` that rebuild *value*, a structure holding electron outputs.

    Namedtuples, dataclasses and dicts with keys other than strings are rebuilt
    from their parts; anything else is refused, never passed on with
    placeholders inside.
    """
    kind = type(value)
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return functools.partial(_as_namedtuple, kind), tuple(value)
    if dataclasses.is_dataclass(value):
        fields = [f for f in dataclasses.fields(value) if f.init]
        if any(_holds_output(getattr(value, f.name, None)) for f in dataclasses.fields(value) if not f.init):
            raise TypeError(f"the dataclass {kind.__name__} holds an electron's output in a field that "
                            "its __init__ does not take; pass it in a field __init__ takes")
        names = tuple(f.name for f in fields)
        return functools.partial(_as_dataclass, kind, names), tuple(getattr(value, n) for n in names)
    if isinstance(value, dict):
        if any(_holds_output(k) for k in value):
            raise TypeError("an electron's output cannot be a dict key; use it as a value")
        return functools.partial(_as_keyed_dict, tuple(value)), tuple(value.values())
    raise TypeError(
        f"a {kind.__name__} holds an electron's output, which covalent_nb cannot pass inside it "
        "(it would arrive as a placeholder); pass the output as an argument of its own, or inside "
        "a list, tuple, set, dict, namedtuple or dataclass")


def add_postprocess(build: Build, retval: Any, metadata: Optional[dict]) -> None:
    """Append the ``:postprocess:reconstruct`` node that yields the lattice's output."""
    node = build.graph.add_node(POSTPROCESS_NAME, NodeKind.POSTPROCESS, _reconstruct, None, metadata)
    _connect(build, retval, node, "retval", "arg", 0)


def wait(child: Any, parents: Any) -> Any:
    """Make *child* start only after *parents* have finished, as ``ct.wait`` does.

    *parents* is an electron output or a list of them.  Returns *child*.
    Outside a lattice this does nothing.
    """
    if type(child) is not BoundElectron:
        return child
    if type(parents) is BoundElectron:
        parents = [parents]
    for parent in parents:
        if type(parent) is not BoundElectron:
            raise TypeError(f"ct.wait() parents must be electron outputs, not {type(parent).__name__}")
        child._build.graph.add_edge(parent.node_id, child.node_id, WAIT_EDGE_NAME, None, None)
    return child


def _text_of(value: Any) -> str:
    """``str(value)`` for a parameter's name, or a short stand-in when Python refuses
    (an ``int`` of more than ``sys.get_int_max_str_digits()`` digits, a broken ``__str__``)."""
    try:
        return str(value)
    except ValueError:
        if isinstance(value, int):
            return f"<int of {value.bit_length()} bits>"
        raise
    except Exception:  # noqa: BLE001 - a name must never fail a dispatch
        return f"<{type(value).__name__}>"


#: The function of an ``:electron_list:`` node that gathers a set: its items' order carries
#: no meaning (and differs between processes), so keys treat its inputs as unordered.
gather_set = _as_set
