"""Certificates by name: a catalog entry, a family, or one defined outside the project.

``--certificate`` accepts

- a catalog name (``cohen``) or a family prefix (``pixeldp``, ``yang``): :func:`certificates.resolve`;
- ``path/to/file.py:OBJECT``: the file is executed as a fresh module and ``OBJECT`` read from it;
- ``package.module:OBJECT``: the module is imported (the current directory is searched first).

``OBJECT`` (a dotted attribute path is allowed) must be a :class:`certificates.Certificate` or a
non-empty list/tuple of them. Every failure is a ValueError with a one-line message, and so is a
plugin's radius function that raises when the audit evaluates it (:func:`guarded`).
"""
from __future__ import annotations

import dataclasses
import hashlib
import importlib
import importlib.util
import os
import re
import sys
from pathlib import Path

import certificates
from certificates import Certificate

from ..errors import CertificateError

__all__ = ["load", "is_plugin", "guarded"]

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_FORMS = "expected a catalog name, a family, path/to/file.py:OBJECT or package.module:OBJECT"


def is_plugin(spec: str) -> bool:
    """Whether ``spec`` names an external certificate (it holds ':', '/' or ends in '.py')."""
    return ":" in spec or "/" in spec or os.sep in spec or spec.endswith(".py")


def _one_line(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())


def _from_file(path: str):
    file = Path(path)
    if not file.is_file():
        raise ValueError(f"certificate plugin file {path!r} does not exist")
    name = "unicr_plugin_" + hashlib.sha1(str(file.resolve()).encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise ValueError(f"certificate plugin {path!r} is not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # the plugin's own error, reported in one line
        del sys.modules[name]
        raise ValueError(f"certificate plugin {path!r} failed to load: {_one_line(exc)}") from None
    return module


def _from_module(target: str):
    if not _IDENT.match(target):
        raise ValueError(f"malformed certificate plugin module {target!r}: {_FORMS}")
    cwd = os.getcwd()
    added = cwd not in sys.path and "" not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        return importlib.import_module(target)
    except Exception as exc:
        raise ValueError(f"certificate plugin module {target!r} failed to import: {_one_line(exc)}") from None
    finally:
        if added:
            sys.path.remove(cwd)


def load(spec: str) -> list[tuple[Certificate, str]]:
    """The certificates named by ``spec``, each with its source ('catalog' or the spec itself)."""
    spec = str(spec).strip()
    if not is_plugin(spec):
        return [(c, "catalog") for c in certificates.resolve(spec)]
    target, sep, attr = spec.rpartition(":")
    if not sep or not target or not _IDENT.match(attr):
        raise ValueError(f"malformed certificate plugin {spec!r}: {_FORMS}")
    is_file = target.endswith(".py") or "/" in target or os.sep in target
    obj = _from_file(target) if is_file else _from_module(target)
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ValueError(f"certificate plugin {target!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    found = [obj] if isinstance(obj, Certificate) else list(obj) if isinstance(obj, (list, tuple)) else None
    if not found or not all(isinstance(c, Certificate) for c in found):
        raise ValueError(f"certificate plugin {spec!r} must be a certificates.Certificate or a non-empty "
                         f"list of them, got {type(obj).__name__}")
    return [(c, spec) for c in found]


def guarded(certificate: Certificate, source: str) -> Certificate:
    """``certificate`` with its radius function wrapped: any exception it raises becomes a one-line
    CertificateError naming the certificate, ``source`` and p_A (what it returns is validated by the
    certificate as for a catalog entry: NaN, negative or not a number is a ValueError naming it)."""
    formula = certificate.radius_fn

    def radius_fn(**args):
        try:
            return formula(**args)
        except Exception as exc:
            raise CertificateError(f"certificate {certificate.name!r} ({source}): its radius function raised at "
                                   f"p_a={float(args['p_a']):.6g}: {_one_line(exc)}") from exc

    return dataclasses.replace(certificate, radius_fn=radius_fn)
