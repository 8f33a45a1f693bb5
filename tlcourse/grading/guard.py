"""In the graded kernel: notice code that tampers with what the test cells rely on.

The grader (:mod:`tlcourse.grading.execute`) runs a first cell that starts a :class:`Guard`
before any of the student's code, and wraps every test cell in ``enter``/``leave`` calls.
``Guard.start`` snapshots the objects test cells use (the grading checks, ``tlcourse``,
``numpy``, builtins, IPython's hooks) and reads a one-time key the grader wrote, deleting it.
``enter`` fails the test when any of them was replaced; ``leave`` prints a token, an HMAC of
the test's id under that key, which the grader requires in the cell's output: a test cell the
student's code rewrote, skipped or silenced prints no valid token and scores 0.

This raises the bar, it is not a proof: code that reads the guard's memory can forge tokens.
What cannot be forged lives outside the kernel (sandbox, accuracy evaluated by the grader).
"""

from __future__ import annotations

import builtins
import hashlib
import hmac
import importlib
import inspect
import operator
import os
import sys
import types

#: Modules whose public functions and classes test cells call (directly or through checks).
WATCHED_MODULES = (
    "numpy",
    "numpy.testing",
    "tlcourse.grading.checks",
    "tlcourse.architecture",
    "tlcourse.config",
    "tlcourse.preprocessing",
    "tlcourse.pipeline",
    "tlcourse.models",
    "tlcourse.freeze",
    "tlcourse.train",
    "tlcourse.evaluate",
    "tlcourse.plots",
)
TOKEN_PREFIX = "tlcourse-guard:"
#: IPython's lists of hooks that rewrite a cell's source or syntax tree before it runs.
TRANSFORMER_LISTS = ("input_transformers_cleanup", "input_transformers_post", "ast_transformers")
#: IPython shell attributes that, replaced, change what a cell runs or what its errors show.
SHELL_HOOKS = (
    "run_cell",
    "run_cell_async",
    "run_ast_nodes",
    "run_code",
    "transform_cell",
    "showtraceback",
    "showsyntaxerror",
    "_showtraceback",
)


def token(key: bytes, grade_id: str) -> str:
    """The line a passed test cell prints: its id and an HMAC of it under ``key``."""
    digest = hmac.new(key, grade_id.encode(), hashlib.sha256).hexdigest()
    return f"{TOKEN_PREFIX}{grade_id}:{digest}"


def _state_of(value) -> tuple:
    """A function's code and defaults (patchable without replacing the function)."""
    if isinstance(value, types.FunctionType):
        return (value.__code__, value.__defaults__, value.__kwdefaults__)
    return ()


class Guard:
    """Snapshot at start; ``enter``/``leave`` around each test cell."""

    def __init__(self, key: bytes, shell) -> None:
        self._key = key
        self._shell = shell
        self._write = sys.__stdout__.write if shell is None else sys.stdout.write
        self._modules: dict[str, tuple[types.ModuleType, dict]] = {}
        for name in WATCHED_MODULES:
            try:
                module = importlib.import_module(name)
            except ImportError:
                continue
            members = {
                attr: (value, _state_of(value))
                for attr, value in vars(module).items()
                if not attr.startswith("_") and (callable(value) or inspect.ismodule(value))
            }
            self._modules[name] = (module, members)
        self._builtins = {
            name: value
            for name, value in vars(builtins).items()
            if isinstance(value, (types.BuiltinFunctionType, type))
        }
        self._trace = (sys.gettrace(), sys.getprofile())
        self._methods = {name: getattr(type(shell), name, None) for name in SHELL_HOOKS}
        self._overrides = {name: vars(shell).get(name) for name in SHELL_HOOKS} if shell else {}
        self._transformers = {name: list(getattr(shell, name, [])) for name in TRANSFORMER_LISTS}

    @classmethod
    def start(cls, key_file: str) -> Guard:
        """Read and delete the grader's key; snapshot what the tests rely on."""
        with open(key_file, "rb") as handle:
            key = handle.read()
        os.unlink(key_file)
        shell = None
        try:
            from IPython import get_ipython

            shell = get_ipython()
        except ImportError:
            pass
        return cls(key, shell)

    def tampered(self) -> list[str]:
        """What was replaced since the start, in words; each is put back as it was."""
        found = []
        for name, (module, members) in self._modules.items():
            if sys.modules.get(name) is not module:
                found.append(f"module {name} was replaced")
                sys.modules[name] = module
            current = vars(module)
            for attr, (value, state) in members.items():
                if current.get(attr) is not value:
                    found.append(f"{name}.{attr} was replaced")
                    current[attr] = value
                elif state and _state_of(value) != state:
                    found.append(f"the code of {name}.{attr} was changed")
                    value.__code__, value.__defaults__, value.__kwdefaults__ = state
        current = vars(builtins)
        for name, value in self._builtins.items():
            if current.get(name) is not value:
                found.append(f"builtins.{name} was replaced")
                current[name] = value
        if (sys.gettrace(), sys.getprofile()) != self._trace:
            found.append("a trace or profile function was installed")
            sys.settrace(self._trace[0])
            sys.setprofile(self._trace[1])
        shell = self._shell
        if shell is not None:
            for name, method in self._methods.items():
                override = self._overrides[name]
                if vars(shell).get(name) is not override:
                    found.append(f"IPython's {name} was replaced")
                    if override is None:
                        vars(shell).pop(name, None)
                    else:
                        vars(shell)[name] = override
                if getattr(type(shell), name, None) is not method:
                    found.append(f"IPython's {name} was replaced in its class")
                    setattr(type(shell), name, method)
            for name, original in self._transformers.items():
                now = getattr(shell, name, [])
                same = len(now) == len(original) and all(map(operator.is_, now, original))
                if not same:
                    found.append(f"IPython's {name} were changed")
                    now[:] = original
        return found

    def enter(self, grade_id: str) -> None:
        """Start a test cell: fail it when what it relies on was tampered with (and repair)."""
        if found := self.tampered():
            raise AssertionError(
                f"Grading integrity: {'; '.join(found[:5])}. Test {grade_id} scores 0: graded "
                "code must not replace numpy, tlcourse or the grading checks."
            )

    def leave(self, grade_id: str) -> None:
        """End a test cell that ran to its end: check again, then print its token."""
        self.enter(grade_id)
        self._write(token(self._key, grade_id) + "\n")
