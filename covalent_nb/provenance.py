"""Where code comes from, and what a code object reads: facts both freezing and keys rely on.

*Library* code is code of an installed distribution (or of the standard
library): it changes only when the distribution is upgraded, so it is frozen
by reference and keyed by name and version.  Everything else is *user* code
(a notebook cell, a file beside the notebook, a folder without
``__init__.py``, a package installed in editable mode): it is frozen by value
and keyed by content.  When in doubt, code is user code: keying too much only
costs a recomputation, keying too little returns stale values.

The bytecode readers answer which *global* names a code object loads (not
attribute names that happen to match a global), which modules it imports
inside its body, which names it reaches through pandas-style ``@name``
strings, and whether it reads its globals dynamically (``globals()``,
``eval``, ``exec``), in which case no key can be faithful.
"""

from __future__ import annotations

import dis
import functools
import importlib.metadata
import json
import re
import sys
import threading
import types
from typing import Iterator, Optional

__all__ = ["is_library_module", "library_version", "global_names", "imported_modules",
           "at_names", "dynamic_lookup", "forget_distributions", "is_singledispatch", "LRU_CACHE_WRAPPER"]

_lock = threading.Lock()
_distributions: Optional[dict] = None  # top-level import name -> True (installed) / False (editable)
_kind_cache: dict = {}
_versions: dict = {}


def _editable(dist: importlib.metadata.Distribution) -> bool:
    text = dist.read_text("direct_url.json")
    if not text:
        return False
    try:
        return bool(json.loads(text).get("dir_info", {}).get("editable"))
    except ValueError:
        return False


def _load_distributions() -> dict:
    """Map each top-level import name to True (installed) or False (only editable installs)."""
    installed: dict = {}
    editable_names: dict = {}
    for top, dist_names in importlib.metadata.packages_distributions().items():
        for dist_name in dist_names:
            editable = editable_names.get(dist_name)
            if editable is None:
                try:
                    editable = _editable(importlib.metadata.distribution(dist_name))
                except Exception:  # a broken metadata folder says nothing about the code
                    editable = False
                editable_names[dist_name] = editable
            # an editable install of the user's own package is user code (keyed by content)
            installed[top] = installed.get(top, False) or not editable
    return installed


def forget_distributions() -> None:
    """Forget what is installed (call after ``pip install`` in the kernel)."""
    global _distributions
    with _lock:
        _distributions = None
        _kind_cache.clear()
        _versions.clear()


def is_library_module(module_name: Optional[str]) -> bool:
    """True when *module_name* belongs to the standard library or an installed distribution."""
    if not module_name or module_name in ("__main__", "__mp_main__", "builtins"):
        return module_name == "builtins"
    top = module_name.partition(".")[0]
    if top == "covalent_nb":  # the runtime itself: never frozen or keyed by value
        return True
    known = _kind_cache.get(top)
    if known is not None:
        return known
    global _distributions
    with _lock:
        if _distributions is None:
            _distributions = _load_distributions()
        stdlib = getattr(sys, "stdlib_module_names", ())
        result = (top in stdlib or top in sys.builtin_module_names or top.startswith("_")
                  and top.lstrip("_") in stdlib or bool(_distributions.get(top)))
        _kind_cache[top] = result
    return result


def library_version(module_name: str) -> str:
    """The version that identifies a library module's code."""
    top = module_name.partition(".")[0]
    version = _versions.get(top)
    if version is None:
        if top in getattr(sys, "stdlib_module_names", ()) or top in sys.builtin_module_names:
            version = f"python-{sys.version_info[0]}.{sys.version_info[1]}.{sys.version_info[2]}"
        else:
            version = getattr(sys.modules.get(top), "__version__", None)
            if not isinstance(version, str):
                try:
                    version = importlib.metadata.version(top)
                except Exception:
                    version = "?"
        _versions[top] = version
    return version


# -- reading bytecode -------------------------------------------------------------
_GLOBAL_OPS = frozenset({"LOAD_GLOBAL", "LOAD_NAME", "STORE_GLOBAL", "DELETE_GLOBAL"})
_DYNAMIC = {"globals": "reads its globals dynamically (globals())",
            "eval": "runs code from a string (eval)",
            "exec": "runs code from a string (exec)"}
_AT_NAME = re.compile(r"@([A-Za-z_][A-Za-z0-9_]*)")


def _codes(code: types.CodeType) -> Iterator[types.CodeType]:
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _codes(const)


def _instructions(code: types.CodeType):
    for inner in _codes(code):
        yield from dis.get_instructions(inner)


_global_cache: "dict[types.CodeType, tuple]" = {}


def _analyse(code: types.CodeType) -> tuple:
    found = _global_cache.get(code)
    if found is not None:
        return found
    names: dict = {}
    attributes: dict = {}  # global name -> attribute names read right after loading it, or None: whole
    imports: dict = {}
    previous_global: Optional[str] = None
    for ins in _instructions(code):
        op = ins.opname
        if op in _GLOBAL_OPS:
            name = ins.argval
            names.setdefault(name, None)
            if op.startswith("LOAD"):
                if previous_global is not None:
                    attributes[previous_global] = None  # loaded, then not read as an attribute
                previous_global = name
                continue
        elif op in ("LOAD_ATTR", "LOAD_METHOD") and previous_global is not None:
            seen = attributes.get(previous_global, ())
            if seen is not None:
                attributes[previous_global] = tuple(seen) + (ins.argval,)
            previous_global = None
            continue
        elif op == "IMPORT_NAME":
            imports.setdefault(ins.argval, None)
        if previous_global is not None:
            attributes[previous_global] = None
            previous_global = None
    if previous_global is not None:
        attributes[previous_global] = None
    strings = [c for inner in _codes(code) for c in inner.co_consts if isinstance(c, str) and "@" in c]
    at = tuple(dict.fromkeys(m for s in strings for m in _AT_NAME.findall(s)))
    found = (tuple(names), attributes, tuple(imports), at)
    if len(_global_cache) > 20000:
        _global_cache.clear()
    _global_cache[code] = found
    return found


def global_names(code: types.CodeType) -> tuple:
    """Names *code* (and the code nested in it) loads or stores as globals, in order."""
    return _analyse(code)[0]


def attributes_read(code: types.CodeType) -> dict:
    """For each global name, the attributes read right after loading it (``None``: used otherwise)."""
    return _analyse(code)[1]


def imported_modules(code: types.CodeType) -> tuple:
    """Module names imported by ``import`` statements inside *code*."""
    return _analyse(code)[2]


def at_names(code: types.CodeType) -> tuple:
    """Names written as ``@name`` in string constants (pandas ``query``/``eval`` read them)."""
    return _analyse(code)[3]


def dynamic_lookup(code: types.CodeType, scope: dict) -> Optional[str]:
    """Why *code* cannot be keyed faithfully (it reads globals dynamically), or None."""
    for name in global_names(code):
        why = _DYNAMIC.get(name)
        if why is not None and name not in scope:  # the builtin, not a user's own 'eval'
            return why
    return None


# -- wrapped callables that freezing and keying both see through ---------------------
#: The type of what ``functools.lru_cache`` / ``functools.cache`` return.
LRU_CACHE_WRAPPER = type(functools.lru_cache(None)(lambda: None))


def is_singledispatch(function: object) -> bool:
    """True for a function made by ``functools.singledispatch`` (it has a registry of implementations)."""
    return (isinstance(getattr(function, "registry", None), types.MappingProxyType)
            and hasattr(function, "dispatch") and hasattr(function, "__wrapped__"))

