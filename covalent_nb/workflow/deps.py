"""Dependencies and hooks that run around a task: ``DepsBash``, ``DepsPip``, ``DepsCall``.

Each hook runs on the executor, inside the node's stdout/stderr capture, in the
order Covalent uses: bash dependencies, pip dependencies, ``call_before`` hooks,
the task, then ``call_after`` hooks.  Every hook round-trips through
``to_dict()`` / ``from_dict()``.
"""

from __future__ import annotations

import base64
import importlib
import shlex
import subprocess
import sys
from typing import Any, Callable, Iterable, Optional, Sequence, Union

import cloudpickle

from .. import provenance
from ..config import get_config

__all__ = ["DepsBash", "DepsPip", "DepsCall", "DepsModule", "DependencyError", "deps_from_dict"]


class DependencyError(RuntimeError):
    """A task's dependency could not be satisfied."""


class _Deps:
    """Common behaviour: a hook with attributes that serialise to a dict."""

    _fields: tuple = ()

    def to_dict(self) -> dict:
        """Return a JSON-safe description that :meth:`from_dict` turns back into this hook."""
        return {"type": type(self).__name__, "short_name": "covalent_nb",
                "attributes": {f: self._encode(f, getattr(self, f)) for f in self._fields}}

    @classmethod
    def from_dict(cls, data: Any) -> "_Deps":
        """Rebuild a hook from :meth:`to_dict`'s output.

        Covalent keeps hooks in a node's metadata in that form; here the metadata holds
        the hook itself, which this accepts too (and reads like its dict, see
        :meth:`__getitem__`), so Covalent's ``DepsBash().from_dict(metadata[...])`` works.
        """
        if isinstance(data, _Deps):
            data = data.to_dict()
        if data.get("type") != cls.__name__:
            raise ValueError(f"{cls.__name__}.from_dict() got a {data.get('type')!r} description")
        obj = cls.__new__(cls)
        for field, value in data["attributes"].items():
            setattr(obj, field, cls._decode(field, value))
        return obj

    @staticmethod
    def _encode(field: str, value: Any) -> Any:
        return value

    @staticmethod
    def _decode(field: str, value: Any) -> Any:
        return value

    def __getitem__(self, key: str) -> Any:
        """Read a hook like the dict Covalent keeps: ``hook["attributes"]["commands"]``."""
        return self.to_dict()[key]

    def keys(self):
        return self.to_dict().keys()

    def get(self, key: str, default: Any = None) -> Any:
        return self.to_dict().get(key, default)

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.to_dict() == other.to_dict()  # type: ignore[union-attr]

    def __hash__(self) -> int:
        return hash(repr(self.to_dict()))

    def __repr__(self) -> str:
        args = ", ".join(f"{f}={getattr(self, f)!r}" for f in self._fields)
        return f"{type(self).__name__}({args})"


class DepsBash(_Deps):
    """Shell commands to run (with ``bash -c``) before the task.

    >>> DepsBash(["echo hello"]).commands
    ['echo hello']
    """

    _fields = ("commands",)

    def __init__(self, commands: Union[str, Sequence[str], None] = None) -> None:
        if commands is None:
            commands = []
        elif isinstance(commands, str):
            commands = [commands]
        self.commands = [str(c) for c in commands]

    def __call__(self) -> None:
        for command in self.commands:
            completed = subprocess.run(["bash", "-c", command], capture_output=True, text=True)
            sys.stdout.write(completed.stdout)
            sys.stderr.write(completed.stderr)
            if completed.returncode != 0:
                raise DependencyError(
                    f"bash dependency {command!r} exited with status {completed.returncode}; "
                    f"its stderr: {completed.stderr.strip()[-500:] or '(empty)'}"
                )


class DepsPip(_Deps):
    """Python requirements the task needs, installed with pip when missing.

    Requirements that are already satisfied cost nothing.  Missing ones are
    installed into the kernel's environment with ``python -m pip install``, as
    ``%pip install`` would, with pip's output going to the node's stdout;
    ``ct.set_config(deps_pip_install=False)`` turns installing off, and then a
    missing requirement fails the node with the command that would install it.
    """

    _fields = ("packages", "reqs_path")

    def __init__(self, packages: Union[str, Sequence[str], None] = None,
                 reqs_path: Optional[str] = None) -> None:
        if packages is None:
            packages = []
        elif isinstance(packages, str):
            packages = [packages]
        self.packages = [str(p) for p in packages]
        self.reqs_path = reqs_path

    def requirements(self) -> list:
        """Return every requirement: the packages plus the lines of ``reqs_path``."""
        reqs = list(self.packages)
        if self.reqs_path:
            with open(self.reqs_path) as handle:
                for line in handle:
                    line = line.split("#", 1)[0].strip()
                    if line:
                        reqs.append(line)
        return reqs

    def missing(self) -> list:
        """Return the requirements that the running environment does not satisfy."""
        return [r for r in self.requirements() if not _requirement_satisfied(r)]

    def __call__(self) -> None:

        missing = self.missing()
        if not missing:
            return
        command = [sys.executable, "-m", "pip", "install", *missing]
        if not get_config("deps_pip_install"):
            raise DependencyError(
                f"requirement(s) {', '.join(missing)} not installed and installing is turned off "
                f"(ct.set_config(deps_pip_install=False)); install them with: {shlex.join(command)}"
            )
        completed = subprocess.run(command, capture_output=True, text=True)
        sys.stdout.write(completed.stdout)
        sys.stderr.write(completed.stderr)
        if completed.returncode != 0:
            raise DependencyError(f"{shlex.join(command)} failed with status {completed.returncode}")
        importlib.invalidate_caches()
        provenance.forget_distributions()  # what is installed changed: library or user code, anew


def _requirement_satisfied(requirement: str) -> bool:
    from importlib import metadata

    from packaging.requirements import InvalidRequirement, Requirement

    try:
        req = Requirement(requirement)
    except InvalidRequirement:
        return False  # a URL or path: let pip decide
    if req.marker is not None and not req.marker.evaluate():
        return True
    try:
        installed = metadata.version(req.name)
    except metadata.PackageNotFoundError:
        return False
    return not req.specifier or req.specifier.contains(installed, prereleases=True)


class DepsCall(_Deps):
    """A Python call made before or after the task.

    With *retval_keyword*, a ``call_before`` call's return value is passed to the
    task as that keyword argument; several calls with the same keyword give a
    list of their values, in order.
    """

    _fields = ("func", "args", "kwargs", "retval_keyword")

    def __init__(self, func: Optional[Callable] = None, args: Iterable = (),
                 kwargs: Optional[dict] = None, *, retval_keyword: str = "") -> None:
        if func is not None and not callable(func):
            raise TypeError(f"DepsCall needs a callable, not {type(func).__name__}")
        self.func = func
        self.args = tuple(args)
        self.kwargs = dict(kwargs or {})
        self.retval_keyword = retval_keyword

    def __call__(self) -> Any:
        return self.func(*self.args, **self.kwargs)

    @staticmethod
    def _encode(field: str, value: Any) -> Any:
        if field in ("func", "args", "kwargs"):
            return base64.b64encode(cloudpickle.dumps(value)).decode("ascii")
        return value

    @staticmethod
    def _decode(field: str, value: Any) -> Any:
        if field in ("func", "args", "kwargs"):
            return cloudpickle.loads(base64.b64decode(value))
        return value


_KINDS = {"DepsBash": DepsBash, "DepsPip": DepsPip, "DepsCall": DepsCall}


class DepsModule:
    """A module a task needs, as Covalent's ``ct.DepsModule(module)`` names it.

    Local modules travel with every dispatch by value anyway (see
    :mod:`covalent_nb.dispatch.freeze`); naming one keeps it in the electron's
    metadata.  Takes a module or its importable name.

    >>> DepsModule("json").module_name
    'json'
    """

    def __init__(self, module: Any) -> None:
        name = module if isinstance(module, str) else getattr(module, "__name__", None)
        if not isinstance(name, str):
            raise TypeError(f"DepsModule takes a module or a module name, not {type(module).__name__}")
        self.module_name = name

    def __repr__(self) -> str:
        return f"DepsModule({self.module_name!r})"


def deps_from_dict(data: dict) -> _Deps:
    """Rebuild any hook from its ``to_dict()`` form."""
    try:
        return _KINDS[data["type"]].from_dict(data)
    except KeyError:
        raise ValueError(f"unknown dependency type {data.get('type')!r}; known: {', '.join(_KINDS)}") from None
