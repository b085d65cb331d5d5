"""Leptons: tasks written in another language.  Only bash is supported.

``Lepton(language="bash", command="echo {greeting} $HOME", named_outputs=["HOME"])``
runs the command with ``bash -c`` after filling its ``{placeholders}`` from the
task's arguments (``{0}``, ``{1}`` for positional ones, ``{name}`` for keyword
ones).  Without *named_outputs* the task returns the command's stdout
(stripped); with them, it returns the values the command left in those shell
variables (one value, or a tuple of several).  A non-zero exit status fails the
task with the command's stderr.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any, Optional, Sequence

from .electron import Electron, make_metadata

__all__ = ["Lepton"]

_SENTINEL = "__covalent_nb_lepton_output__"


class BashCommand:
    """The callable behind a bash lepton (picklable, hashed by its command)."""

    def __init__(self, command: str, named_outputs: Sequence[str], name: str) -> None:
        self.command = command
        self.named_outputs = list(named_outputs)
        self.__name__ = name
        self.__qualname__ = name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            script = self.command.format(*args, **kwargs)
        except (IndexError, KeyError) as exc:
            raise ValueError(f"lepton command {self.command!r} has placeholder {exc} that no "
                             f"argument fills (args={args!r}, kwargs={sorted(kwargs)})") from None
        for name in self.named_outputs:
            script += f'\nprintf "%s\\0%s\\0" {_SENTINEL}:{name} "${{{name}}}"'
        completed = subprocess.run(["bash", "-c", script], capture_output=True, text=True)
        stdout = completed.stdout
        outputs = {}
        if self.named_outputs:
            head, _, tail = stdout.partition(f"{_SENTINEL}:")
            stdout = head
            fields = (f"{_SENTINEL}:" + tail).split("\0") if tail else []
            for label, value in zip(fields[0::2], fields[1::2]):
                outputs[label.removeprefix(f"{_SENTINEL}:")] = value
        sys.stdout.write(stdout)
        sys.stderr.write(completed.stderr)
        if completed.returncode != 0:
            raise RuntimeError(f"bash lepton exited with status {completed.returncode}: "
                               f"{completed.stderr.strip()[-500:] or '(no stderr)'}")
        if not self.named_outputs:
            return stdout.strip()
        values = tuple(outputs.get(name, "") for name in self.named_outputs)
        return values[0] if len(values) == 1 else values


class Lepton(Electron):
    """A task that runs a bash command (Covalent's ``Lepton`` for ``language="bash"``)."""

    INPUT = 0
    OUTPUT = 1
    INPUT_OUTPUT = 2

    def __init__(self, language: str = "bash", *, library_name: str = "", function_name: str = "",
                 argtypes: Optional[Sequence] = None, command: str = "",
                 named_outputs: Optional[Sequence[str]] = None, executor: Any = None,
                 files: Any = None, deps_bash: Any = None, deps_pip: Any = None,
                 call_before: Any = None, call_after: Any = None) -> None:
        if str(language).lower() not in ("bash", "shell", "sh"):
            raise NotImplementedError(
                f"Lepton language {language!r} is not supported by covalent_nb: only 'bash' is. "
                "Call Python code from an @ct.electron, or a C library with ctypes inside one"
            )
        if not command:
            raise ValueError("a bash Lepton needs command='...'")
        if files:
            raise NotImplementedError("Lepton(files=...) is not supported by covalent_nb")
        self.language = "bash"
        self.command = command
        self.argtypes = list(argtypes or [])
        self.named_outputs = list(named_outputs or [])
        name = function_name or "bash_lepton"
        metadata = make_metadata(executor, deps_bash, deps_pip, call_before, call_after)
        super().__init__(BashCommand(command, self.named_outputs, name), metadata)
