"""pytest plugin (entry point ``pytest11: unicr``): audit a certificate in a test suite::

    def test_my_radius(unicr_audit):
        assert unicr_audit(MY_CERT).verdict != "suspect"

The fixture ``unicr_audit`` is :func:`audit_certificate` with the command line's ``--unicr-samples``
and ``--unicr-seed`` applied. A failing comparison with a verdict shows the audit's worst row and
its witness (``pytest_assertrepr_compare``). The engine (torch, :mod:`unicr.audit`) is imported on
the first audit, not when pytest loads the plugin.
"""
from __future__ import annotations

import argparse
import dataclasses
import difflib
import math

import pytest

__all__ = ["DEFAULTS", "AuditResult", "Verdict", "audit_certificate", "unicr_audit"]

#: settings of :func:`audit_certificate` where the call gives none (the command line's are dim 3072,
#: 45 p_A, 100000 samples, confidence 0.99): seconds per audit on one core (under 2 s where the
#: deterministic backend applies, about 7 s for a noise of one's own on Monte Carlo), and a sound
#: certificate comes out suspect with probability <= 1 - confidence = 1e-4 (0 on the deterministic backend)
DEFAULTS = {"dim": 32, "p_a": (0.6, 0.7, 0.8, 0.9, 0.99), "samples": 10_000, "seed": 0, "confidence": 0.9999}


class Verdict(str):
    """A sweep verdict ('tight', 'loose' or 'suspect') that knows its audit, for pytest's failure message."""

    def __new__(cls, value: str, result: "AuditResult"):
        self = super().__new__(cls, value)
        self.result = result
        return self


class AuditResult:
    """One audit (:class:`unicr.audit.Audit`, as ``.audit``) with its verdict, rows and witnesses."""

    def __init__(self, audit):
        self.audit = audit
        self.verdict = Verdict(audit.verdict, self)

    @property
    def rows(self) -> tuple:
        """One :class:`unicr.audit.Row` per grid point, in p_A order."""
        return self.audit.rows

    @property
    def settings(self):
        """The :class:`unicr.audit.Settings` the audit ran with."""
        return self.audit.settings

    @property
    def witnesses(self) -> tuple:
        """The :class:`unicr.Witness` of each confirmed suspect row, in p_A order: a delta with
        ||delta|| below the claim and K(delta) <= 0 on an independent run."""
        return tuple(r.witness for r in self.rows if r.verdict == "suspect")

    @property
    def worst(self):
        """The row behind the verdict: the suspect row with the largest excess R_C/R_hi - 1; for a
        loose sweep the loose row with the largest gap 1 - R_C/R_U; else the row with the largest excess."""
        rows = self.rows
        if self.verdict == "suspect":
            return max((r for r in rows if r.verdict == "suspect"), key=lambda r: r.excess)
        if self.verdict == "loose":
            return max((r for r in rows if r.verdict == "loose"), key=lambda r: r.gap)
        return max(rows, key=lambda r: r.excess)

    def explain(self) -> str:
        """A few lines: the case, its verdict and settings, the worst row and its witness."""
        case, s, row = self.audit.case, self.settings, self.worst
        counts = "/".join(str(sum(r.verdict == v for r in self.rows))
                          for v in ("tight", "loose", "suspect", "unconfirmed"))
        at = f"p_A={row.p_a:g}" + (f", p_B={row.p_b:g}" if s.general else "")
        lines = [f"unicr audit {case.label}: {self.verdict}, rows t/l/s/u {counts} (dim={s.dim}, "
                 f"samples={s.samples}, seed={s.seed}, confidence={s.confidence:g})",
                 f"worst row {at} ({row.verdict}): R_C={row.claimed:.6g}, R_U={row.radius:.6g} in "
                 f"[{row.lower:.6g}, {row.upper:.6g}] ({row.backend}), R_C/R_hi - 1 = {row.excess:+.3g}"
                 + (f", gap 1 - R_C/R_U = {row.gap:.1%}" if row.verdict == "loose" else "")]
        if row.witness is not None:
            w, m = row.witness, row.margin
            lines += [f"witness: delta = {_delta_text(w)} ({w.label}), "
                      f"||delta||_{_p_text(w.p)} = {w.delta_norm:.6g} < R_C",
                      f"K(delta) in [{m['lower']:.3g}, {m['upper']:.3g}] at level {m['confidence']:.6g} "
                      f"({m['backend']}, independent run): "
                      + ("<= 0, the claim fails at delta" if m["holds"] else "not <= 0, row unconfirmed")]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<unicr audit {self.audit.case.label}: {self.verdict}>"


def _p_text(p: float) -> str:
    return "inf" if math.isinf(p) else f"{p:g}"


def _delta_text(witness, shown: int = 4) -> str:
    """'2.5 on 1 of 32 coordinates, 0 elsewhere' (groups of equal values) or '[3]=1.2, [7]=-0.4 of 32 ...'."""
    d = witness.to_dict()
    if "groups" in d:
        parts = [f"{g['value']:.4g} on {g['count']}" for g in d["groups"]]
        covered = sum(g["count"] for g in d["groups"])
    else:
        index = d.get("index", range(len(d["values"])))
        parts = [f"[{i}]={v:.4g}" for i, v in zip(index, d["values"])]
        covered = len(parts)
    text = ", ".join(parts[:shown] + (["..."] if len(parts) > shown else [])) + f" of {d['dim']} coordinates"
    return text + (", 0 elsewhere" if covered < d["dim"] else "")


def _certificate(certificate):
    """(Certificate, source) of a Certificate or a single-certificate spec (catalog name, file.py:NAME)."""
    import certificates
    from unicr.audit import plugins

    if isinstance(certificate, certificates.Certificate):
        catalog = {c.name: c for c in certificates.catalog()}
        return certificate, "catalog" if catalog.get(certificate.name) is certificate else "pytest"
    if not isinstance(certificate, str):
        raise TypeError(f"certificate must be a certificates.Certificate or a name, got {type(certificate).__name__}")
    loaded = plugins.load(certificate)
    if len(loaded) != 1:
        names = ", ".join(c.name for c, _ in loaded)
        raise ValueError(f"{certificate!r} names {len(loaded)} certificates ({names}): audit one per call")
    return loaded[0]


def audit_certificate(certificate, norm=None, *, sigma=None, scale=None, shape=None, **settings) -> AuditResult:
    """Audit ``certificate`` in one norm and return an :class:`AuditResult`.

    ``certificate``: a :class:`certificates.Certificate`, a catalog name ('cohen') or
    ``path/to/file.py:NAME``. ``norm``: an l_p order (1, 2, 'inf'); None means the certificate's
    only norm, and a certificate covering several needs one (parametrize over ``CERT.norms``).
    ``sigma`` (default 1), ``scale`` (a noise without a variance) and ``shape`` are those of
    :func:`unicr.audit.audit`; ``settings`` are fields of :class:`unicr.audit.Settings`, defaulting
    to :data:`DEFAULTS` (an unknown name raises TypeError listing the allowed ones).
    """
    from certificates import norm_label
    from unicr.audit import Settings, audit

    allowed = [f.name for f in dataclasses.fields(Settings)]
    for key in settings:
        if key not in allowed:
            close = difflib.get_close_matches(key, allowed + ["sigma", "scale", "shape"], n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise TypeError(f"unicr_audit() got an unknown setting {key!r}{hint}; settings: {', '.join(allowed)}; "
                            f"also sigma, scale, shape")
    cert, source = _certificate(certificate)
    if norm is None and len(cert.norms) > 1:
        raise ValueError(f"certificate {cert.name!r} certifies {', '.join(norm_label(p) for p in cert.norms)}: pass "
                         f"norm= (one audit per norm, e.g. @pytest.mark.parametrize('norm', CERT.norms))")
    result = audit(cert, norm, sigma, Settings(**{**DEFAULTS, **settings}), shape=shape, source=source, scale=scale)
    return AuditResult(result)


def _at_least(minimum: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(f"must be an integer >= {minimum}, got {text!r}")
        return value
    return parse


def pytest_addoption(parser):
    group = parser.getgroup("unicr", "unicr certificate audits (fixture unicr_audit)")
    group.addoption("--unicr-samples", type=_at_least(100), metavar="N",
                    help=f"Monte Carlo draws of every unicr_audit, overriding the test's own samples= "
                         f"(default {DEFAULTS['samples']})")
    group.addoption("--unicr-seed", type=_at_least(0), metavar="N",
                    help=f"seed of every unicr_audit, overriding the test's own seed= (default {DEFAULTS['seed']})")


@pytest.fixture
def unicr_audit(request):
    """:func:`audit_certificate`, with --unicr-samples and --unicr-seed overriding the call's samples and seed."""
    options = {"samples": request.config.getoption("unicr_samples"), "seed": request.config.getoption("unicr_seed")}
    forced = {k: v for k, v in options.items() if v is not None}

    def run(certificate, norm=None, **kwargs) -> AuditResult:
        return audit_certificate(certificate, norm, **{**kwargs, **forced})
    return run


@pytest.hookimpl(tryfirst=True)
def pytest_assertrepr_compare(config, op, left, right):
    """For a comparison with a :class:`Verdict`: the comparison, then the audit's :meth:`~AuditResult.explain`."""
    verdict = left if isinstance(left, Verdict) else right if isinstance(right, Verdict) else None
    if verdict is None:
        return None
    return [f"{left!r} {op} {right!r}", *verdict.result.explain().splitlines()]
