"""Objects named on a command line as ``path/to/file.py:OBJECT`` or ``package.module:OBJECT``.

- ``path/to/file.py:OBJECT``: the file is executed as a fresh module (named after a hash of its
  absolute path, so that two files never collide) and ``OBJECT`` is read from it;
- ``package.module:OBJECT``: the module is imported, the current directory searched first.

``OBJECT`` may be a dotted attribute path. Every failure (malformed spec, missing file, an exception
while the file runs, a missing attribute) is a ValueError with a one-line message that starts with
what the object is for (``what``: "certificate plugin", "model", ...). Used by
``python -m unicr.audit --certificate`` (:mod:`unicr.audit.plugins`) and ``python -m unicr.certify``.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import re
import sys
from pathlib import Path

__all__ = ["is_spec", "load", "one_line"]

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
FORMS = "path/to/file.py:OBJECT or package.module:OBJECT"


def is_spec(text: str) -> bool:
    """Whether ``text`` looks like a spec rather than a name (it holds ':', '/' or ends in '.py')."""
    return ":" in text or "/" in text or os.sep in text or text.endswith(".py")


def one_line(exc: BaseException) -> str:
    """``Type: message`` on one line."""
    return " ".join(f"{type(exc).__name__}: {exc}".split())


def _from_file(path: str, what: str):
    file = Path(path)
    if not file.is_file():
        raise ValueError(f"{what} file {path!r} does not exist")
    name = "unicr_plugin_" + hashlib.sha1(str(file.resolve()).encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise ValueError(f"{what} {path!r} is not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # the file's own error, reported in one line
        del sys.modules[name]
        raise ValueError(f"{what} {path!r} failed to load: {one_line(exc)}") from None
    return module


def _from_module(target: str, what: str, forms: str):
    if not _IDENT.match(target):
        raise ValueError(f"malformed {what} module {target!r}: {forms}")
    cwd = os.getcwd()
    added = cwd not in sys.path and "" not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        return importlib.import_module(target)
    except Exception as exc:
        raise ValueError(f"{what} module {target!r} failed to import: {one_line(exc)}") from None
    finally:
        if added:
            sys.path.remove(cwd)


def load(spec: str, what: str, *, forms: str = f"expected {FORMS}", modules: dict | None = None):
    """The object named by ``spec`` (see the module docstring). ``forms`` ends the message of a
    malformed spec; ``modules``, where given, keeps the loaded modules by target, so that several
    specs naming one file execute it once."""
    spec = str(spec).strip()
    target, sep, attr = spec.rpartition(":")
    if not sep or not target or not _IDENT.match(attr):
        raise ValueError(f"malformed {what} {spec!r}: {forms}")
    if modules is not None and target in modules:
        obj = modules[target]
    else:
        is_file = target.endswith(".py") or "/" in target or os.sep in target
        obj = _from_file(target, what) if is_file else _from_module(target, what, forms)
        if modules is not None:
            modules[target] = obj
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ValueError(f"{what} {target!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    return obj
