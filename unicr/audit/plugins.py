"""Certificates by name: a catalog entry, a family, or one defined outside the project.

``--certificate`` accepts

- a catalog name (``cohen``) or a family prefix (``pixeldp``, ``yang``): :func:`certificates.resolve`;
- ``path/to/file.py:OBJECT``: the file is executed as a fresh module and ``OBJECT`` read from it;
- ``package.module:OBJECT``: the module is imported (the current directory is searched first).

(The loading is :func:`unicr.specs.load`'s, shared with ``python -m unicr.certify``.)

``OBJECT`` (a dotted attribute path is allowed) must be a :class:`certificates.Certificate` or a
non-empty list/tuple of them. Every failure is a ValueError with a one-line message, and so is a
plugin's radius function that raises when the audit evaluates it (:func:`guarded`).
"""
from __future__ import annotations

import dataclasses

import certificates
from certificates import Certificate

from .. import specs
from ..errors import CertificateError

__all__ = ["load", "is_plugin", "guarded"]

_FORMS = "expected a catalog name, a family, path/to/file.py:OBJECT or package.module:OBJECT"


def is_plugin(spec: str) -> bool:
    """Whether ``spec`` names an external certificate (it holds ':', '/' or ends in '.py')."""
    return specs.is_spec(spec)


def load(spec: str) -> list[tuple[Certificate, str]]:
    """The certificates named by ``spec``, each with its source ('catalog' or the spec itself)."""
    spec = str(spec).strip()
    if not is_plugin(spec):
        return [(c, "catalog") for c in certificates.resolve(spec)]
    obj = specs.load(spec, "certificate plugin", forms=_FORMS)
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
                                   f"p_a={float(args['p_a']):.6g}: {specs.one_line(exc)}") from exc

    return dataclasses.replace(certificate, radius_fn=radius_fn)
