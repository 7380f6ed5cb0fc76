"""Input validation shared by the engine, the catalog and the command line.

Every check raises ``ValueError`` whose message names the argument and its allowed range, so the
command line can print it as one line.
"""
from __future__ import annotations

import math
from numbers import Real

__all__ = [
    "CertificateError",
    "check_positive",
    "check_dim",
    "check_probability_pair",
    "check_norm",
    "check_choice",
    "cli_exit_code",
]


class CertificateError(ValueError):
    """A certificate's own code failed (a plugin's radius function raised): bad input, naming the
    certificate. A ValueError, so it pickles across worker processes and the command line exits 2."""


def _as_float(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be a real number, got {value!r}") from None
    value = float(value)
    if math.isnan(value):
        raise ValueError(f"{name} must be a real number, got nan")
    return value


def check_positive(name: str, value, *, finite: bool = True) -> float:
    """``value`` as a float, requiring 0 < value (< inf when ``finite``)."""
    value = _as_float(name, value)
    if not value > 0 or (finite and math.isinf(value)):
        bound = "0 < {} < inf" if finite else "0 < {}"
        raise ValueError(f"{name} must satisfy {bound.format(name)}, got {value!r}")
    return value


def check_dim(value, name: str = "dim") -> int:
    """An integer dimension d >= 1."""
    if isinstance(value, bool) or not float(value).is_integer() or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def check_norm(value, name: str = "norm") -> float:
    """An l_p order p in (0, inf]; the strings 'inf', 'linf', 'l2', ... are accepted."""
    if isinstance(value, str):
        text = value.strip().lower().removeprefix("l")
        if text in {"inf", "infty", "infinity"}:
            return math.inf
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"{name} must be p > 0 or 'inf' (e.g. 1, 2, 'inf'), got {value!r}") from None
    value = _as_float(name, value)
    if not value > 0:
        raise ValueError(f"{name} must be p > 0 or 'inf' (e.g. 1, 2, 'inf'), got {value!r}")
    return value


def check_probability_pair(p_a, p_b=None, *, strict_binary: bool = False) -> tuple[float, float]:
    """Validate (p_A, p_B): 0 < p_A <= 1, 0 <= p_B <= 1 - p_A.  ``p_b=None`` means binary, 1 - p_A.

    With ``strict_binary`` the certificate convention applies: p_A must exceed 1/2 (binary) or
    p_B (general), since no positive radius exists otherwise.
    """
    p_a = _as_float("p_a", p_a)
    if not 0.0 < p_a <= 1.0:
        raise ValueError(f"p_a must lie in (0, 1], got {p_a!r}")
    if p_b is None:
        p_b = 1.0 - p_a
    else:
        p_b = _as_float("p_b", p_b)
        if not 0.0 <= p_b <= 1.0:
            raise ValueError(f"p_b must lie in [0, 1], got {p_b!r}")
        if p_a + p_b > 1.0 + 1e-15:
            raise ValueError(f"p_a + p_b must be <= 1, got p_a + p_b = {p_a + p_b!r}")
    if strict_binary and not p_a > p_b:
        raise ValueError(f"p_a must exceed p_b (binary: p_a > 1/2), got p_a={p_a!r}, p_b={p_b!r}")
    return p_a, p_b


def check_choice(name: str, value, allowed) -> str:
    """``value`` must be one of ``allowed`` (case-insensitive)."""
    allowed = list(allowed)
    key = str(value).strip().lower()
    if key not in allowed:
        raise ValueError(f"unknown {name} {value!r}; allowed: {', '.join(sorted(allowed))}")
    return key


def cli_exit_code(prog: str, run, debug, interrupted: str) -> int:
    """The exit code of a command line's ``run()``: its own code; 2 for bad input (ValueError,
    OverflowError, OSError); 130 on Ctrl-C; 3 for any other exception. Errors are one line on stderr,
    ``prog: error: ...`` or ``prog: internal error: ...``, after the traceback when ``debug()`` (read
    when the error is reported, so that a flag parsed by ``run`` counts)."""
    import sys
    import traceback

    def fail(message: str, exc: BaseException) -> None:
        if debug():
            traceback.print_exception(exc, file=sys.stderr)
        print(f"{prog}: {' '.join(message.split())}", file=sys.stderr)

    try:
        return run()
    except (ValueError, OverflowError, OSError) as exc:
        fail(f"error: {str(exc).strip() or type(exc).__name__}", exc)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; {interrupted}", file=sys.stderr)
        return 130
    except Exception as exc:
        hint = "" if debug() else " (rerun with --debug for the traceback)"
        fail(f"internal error: {type(exc).__name__}: {exc}{hint}", exc)
        return 3
