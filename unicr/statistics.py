"""Monte Carlo Neyman–Pearson statistics along a ray delta = lam * v.

Notation (docs/design.md §1): L = log mu(e - delta) - log mu(e); H0: e ~ mu, H1: e ~ mu(. - delta).
Lower NP set S_A with P_H0(S_A) = p_A, upper set S_B with P_H0(S_B) = p_B, both randomized on
ties; margin K = P_H1(S_A) - P_H1(S_B); delta is certified iff K > 0.

Estimator. N draws u ~ mu give H0 values L0 = L_delta(u) and H1 values
L1 = L_delta(u + delta) = log mu(u) - log mu(u + delta) = -L_{-delta}(u), the ratio along the
opposite ray on the same draws (for noise that declares itself symmetric, L1 = -L0 in law, so no
second evaluation). The 2N values are pooled as draws from
the mixture (H0 + H1)/2 and weighted by the balance heuristic (Veach & Guibas 1995):

    dH0/dmix = 2 / (1 + e^L),    dH1/dmix = 2 / (1 + e^-L),

because the law of L under H1 is e^L times its law under H0. Tails of H0 are thus estimated from
H1 draws by exponential tilting, with relative precision where plain counting has none (p_A up
to 1 - 1e-6 with 1e5 draws). All masses are taken from the top of a fine histogram of L: T(q) is the
H1 mass of the upper set whose H0 mass is q, with the boundary bin split in proportion. As
the weights depend on L only, ties (atoms of L) come out randomized exactly as the NP lemma asks.

Score. s = Phi^-1(T(1 - p_A)) + Phi^-1(T(p_B)) is increasing in lam and K <= 0 iff s >= 0
(T(1 - p_A) = 1 - P_H1(S_A), T(p_B) = P_H1(S_B)); for Gaussian noise s is exactly linear in lam.
T is a weighted proportion at a fixed H0 level, a smooth functional of the draws even where L
has atoms, which is what the band below needs. (The critical p_A, the H0 mass of the set whose
H1 mass is 1/2, is not: near an atom that carries the H1 median it jumps.)

Band. The method of sectioning (Asmussen & Glynn, *Stochastic Simulation*, 2007, §III.5a): the
draws are split into B interleaved sections, s is computed on each, and the interval is
s_full +- t_{B-1, (1+c)/2} * sd(s_1..s_B) / sqrt(B). It needs no variance formula, so it covers
tilting, ties and the non-linear quantile step alike.
"""
from __future__ import annotations

import functools
import math

import torch
from scipy import stats as sps

from .directions import Direction
from .noises import Noise
from .streams import check_purpose, generator

__all__ = ["MonteCarloRay", "histogram", "upper_set_h1_mass", "probit"]

# elements of samples per generated chunk
_CHUNK_ELEMENTS = 1 << 22
# largest number of stored sample elements (beyond this, chunks are regenerated per call)
_CACHE_ELEMENTS = 1 << 26
_PROB_FLOOR = 1e-300
# largest number of pooled draws of L (lam values x 2 samples) whose histograms are built at once
_LAMBDA_ELEMENTS = 1 << 23
HISTOGRAM_BINS = 1 << 12


def probit(p: torch.Tensor) -> torch.Tensor:
    """Phi^-1(p), clamped to finite values at 0 and 1."""
    return torch.special.ndtri(p.clamp(_PROB_FLOOR, 1.0 - 2.0**-53))


def histogram(pool: torch.Tensor, sections: int, bins: int | None = None):
    """H0 and H1 weights of the pooled draws, binned by L: two tensors (G, sections, bins + 2).

    ``pool``: (G, M) draws of L from the mixture (H0 + H1)/2, draw j belonging to section
    j % sections; ``bins`` defaults to about 16 draws a bin. Bin 0 holds L = +inf, bins 1..bins
    the finite values in descending order on a grid shared by the sections of a row, bin bins+1
    holds L = -inf. Weights are the balance heuristic's, unnormalised: 2/(1 + e^L) for H0 and 2/(1 + e^-L) for H1.
    """
    g, m = pool.shape
    if bins is None:  # about 16 draws a bin, within [256, HISTOGRAM_BINS]
        bins = int(min(HISTOGRAM_BINS, max(256, 2 ** math.ceil(math.log2(m / 16)))))
    top, bottom = pool.amax(-1, keepdim=True), pool.amin(-1, keepdim=True)
    all_finite = bool(torch.isfinite(top).all() & torch.isfinite(bottom).all())   # one host read
    if all_finite:
        finite = None
    else:
        finite = torch.isfinite(pool)
        top = torch.where(finite, pool, -math.inf).amax(-1, keepdim=True).nan_to_num(neginf=0.0)
        bottom = torch.where(finite, pool, math.inf).amin(-1, keepdim=True).nan_to_num(posinf=0.0)
    width = ((top - bottom) / bins).clamp_min(1e-300)
    # flat bin index ((row * sections + section) * (bins + 2) + k), built in place
    k = torch.sub(top, pool if all_finite else torch.where(finite, pool, top)).div_(width)
    k = k.floor_().clamp_(0, bins - 1).add_(1).long()
    if not all_finite:
        k = k.masked_fill_(pool == math.inf, 0).masked_fill_(pool == -math.inf, bins + 1)
    k.add_(_section_offsets(m, sections, bins + 2, pool.device))
    k.add_(torch.arange(g, device=pool.device)[:, None] * (sections * (bins + 2)))
    flat = k.reshape(-1)
    size = g * sections * (bins + 2)
    h0 = torch.bincount(flat, torch.sigmoid(-pool).reshape(-1), minlength=size)
    h1 = torch.bincount(flat, torch.sigmoid(pool).reshape(-1), minlength=size)
    shape = (g, sections, bins + 2)
    return 2.0 * h0.reshape(shape), 2.0 * h1.reshape(shape)


@functools.lru_cache(maxsize=8)
def _section_offsets(m: int, sections: int, stride: int, device: torch.device) -> torch.Tensor:
    """(section of draw j) * stride for j < m: draw j belongs to section j % sections."""
    return (torch.arange(m, device=device) % sections) * stride


def upper_set_h1_mass(h0: torch.Tensor, h1: torch.Tensor, draws: int, q: torch.Tensor) -> torch.Tensor:
    """T(q) = H1 mass of the randomized upper NP set with H0 mass q, from binned weights.

    ``h0``, ``h1``: (..., bins + 2) from :func:`histogram` over ``draws`` pooled draws; ``q``:
    (J,), or of a shape that broadcasts to (..., J). Returns (..., J). With h0 and h1 swapped it
    gives the H0 mass of the upper set with a given H1 mass. Inside the boundary bin the masses
    are split in proportion: exact for an atom of L, and within a factor e^(bin width) of the
    likelihood ratio otherwise.
    """
    a, b = h0 / draws, h1 / draws
    cum_a, cum_b = a.cumsum(-1), b.cumsum(-1)
    qq = q.to(a).expand(*a.shape[:-1], q.shape[-1]).contiguous()
    i = torch.searchsorted(cum_a, qq, right=True).clamp_max(a.shape[-1] - 1)
    a_i, b_i = a.gather(-1, i), b.gather(-1, i)
    cum_a_i, cum_b_i = cum_a.gather(-1, i), cum_b.gather(-1, i)
    included = torch.where(a_i > 0, (qq - (cum_a_i - a_i)) / a_i, torch.ones_like(a_i)).clamp(0.0, 1.0)
    return cum_b_i - (1.0 - included) * b_i


class MonteCarloRay:
    """Estimated NP score along lam * v, with common random numbers across lam and p_A."""

    def __init__(self, noise: Noise, direction: Direction, *, samples: int = 100_000, seed: int = 0,
                 stream: str = "main", device=None, dtype=torch.float64, sections: int = 20,
                 confidence: float = 0.99):
        if direction.dim != noise.dim:
            raise ValueError(f"direction dim {direction.dim} does not match noise dim {noise.dim}")
        if int(samples) < 2 * sections:
            raise ValueError(f"samples must be >= {2 * sections}, got {samples}")
        self.noise = noise
        self.direction = direction
        self.sections = int(sections)
        self.samples = -(-int(samples) // self.sections) * self.sections  # multiple of sections
        self.seed = int(seed)
        self.stream = check_purpose(stream)
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.dtype = dtype
        self.confidence = float(confidence)
        self.t_quantile = float(sps.t.ppf(0.5 + 0.5 * self.confidence, self.sections - 1))
        width = direction.support_size if noise.iid else noise.dim
        self._width = width
        self._chunk = max(self.sections, (_CHUNK_ELEMENTS // width) // self.sections * self.sections)
        if noise.iid:
            self._v = direction.values.to(device=self.device, dtype=dtype)
        else:
            self._v = direction.dense(device=self.device, dtype=dtype)
        self._sampler = noise.ray_sampler(self._v, direction.groups) if noise.symmetric else None
        compact = self._sampler is not None or noise.compact_rays
        self._rays = self._build_rays() if compact or self.samples * width <= _CACHE_ELEMENTS else None

    # -- sampling -------------------------------------------------------------------------

    def _chunks(self):
        """Ray functions chunk by chunk, each chunk from its own seeded generator, so that the
        same draws serve every call (common random numbers) and the same seed the same bytes."""
        chunk = self.samples if self._sampler is not None else self._chunk
        for index, start in enumerate(range(0, self.samples, chunk)):
            n = min(chunk, self.samples - start)
            gen = generator(self.seed, self.stream, index, self.device)
            if self._sampler is not None:
                yield self._sampler(n, gen, self.device, self.dtype), None
            else:
                yield self._ray_pair(self.noise.sample_support(n, self._width, generator=gen,
                                                               device=self.device, dtype=self.dtype))

    def _ray_pair(self, u):
        """Ray functions for L0 = L_delta(u) and, unless the noise is symmetric,
        L1 = L_delta(u + delta) = -L_{-delta}(u)."""
        f0 = self.noise.ray_log_ratio(u, self._v)
        if self.noise.symmetric:
            return f0, None
        opposite = self.noise.ray_log_ratio(u, -self._v)
        return f0, lambda lams: -opposite(lams)

    def _build_rays(self):
        return list(self._chunks())

    def log_ratios(self, lams: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(L0, L1), each (G, N): H0 and H1 draws of L for every lam."""
        rays = self._rays if self._rays is not None else self._chunks()
        l0, l1 = [], []
        for f0, f1 in rays:
            x0 = f0(lams)
            l0.append(x0)
            l1.append(-x0 if f1 is None else f1(lams))
        return torch.cat(l0, -1), torch.cat(l1, -1)

    # -- statistics -----------------------------------------------------------------------

    def _histograms(self, lams):
        lams = torch.as_tensor(lams, dtype=self.dtype, device=self.device).reshape(-1)
        x0, x1 = self.log_ratios(lams)
        return histogram(torch.cat([x0, x1], -1), self.sections), 2 * x0.shape[1]

    def _band(self, full: torch.Tensor, parts: torch.Tensor):
        """Sectioning interval around the full-sample estimate; parts has sections on dim 1."""
        spread = parts.std(1, unbiased=True)
        half = self.t_quantile * spread / math.sqrt(self.sections)
        half = torch.where(torch.isfinite(half), half, torch.full_like(half, math.inf))
        return full, full - half, full + half

    def critical(self, lams) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(estimate, lower, upper) of z(lam) = Phi^-1(p*(lam)), each (G,), for the binary case.

        p*(lam), the critical p_A, is the H0 mass of the lower set whose H1 mass is 1/2: lam v is
        certified iff p_A > p*(lam), so one curve serves every p_A. The estimate inverts the
        full-sample T at T = 1/2. The band is that of the binary score s = 2 Phi^-1(T(q)) at
        q* = 1 - p*, from the sections, carried over to q by inverting the full-sample T at
        T = Phi(-+ half/2) (the band's half-width taken as constant in q near q*): a smooth
        functional even where an atom of L holds the H1 median and p* itself jumps.
        """
        return self._per_chunk(lams, self._critical)

    def _critical(self, lams):
        (h0, h1), draws = self._histograms(lams)
        f0, f1 = h0.sum(1), h1.sum(1)                                   # (G, bins + 2)
        half_mass = torch.full((f0.shape[0], 1), 0.5, dtype=self.dtype, device=self.device)
        q_star = upper_set_h1_mass(f1, f0, draws, half_mass)            # (G, 1)
        parts = 2 * probit(upper_set_h1_mass(h0, h1, draws // self.sections, q_star[:, None, :]))
        _, s_lo, s_hi = self._band(torch.zeros_like(q_star), parts)      # (G, 1)
        q_small = upper_set_h1_mass(f1, f0, draws, torch.special.ndtr(-s_hi / 2))   # upper p*
        q_large = upper_set_h1_mass(f1, f0, draws, torch.special.ndtr(-s_lo / 2))   # lower p*
        return tuple(-probit(q)[:, 0] for q in (q_star, q_large, q_small))

    def _pair_masses(self, lams, p_a, p_b):
        """(T(1 - p_A), T(p_B)) for the full sample (G, J) and per section (G, B, J)."""
        p_a = torch.as_tensor(p_a, dtype=self.dtype, device=self.device).reshape(-1)
        p_b = torch.as_tensor(p_b, dtype=self.dtype, device=self.device).reshape(-1)
        j = p_a.numel()
        q = torch.cat([1.0 - p_a, p_b])

        def masses(chunk):
            (h0, h1), draws = self._histograms(chunk)
            return (upper_set_h1_mass(h0.sum(1), h1.sum(1), draws, q),
                    upper_set_h1_mass(h0, h1, draws // self.sections, q))

        full, parts = self._per_chunk(lams, masses)
        return (full[..., :j], full[..., j:]), (parts[..., :j], parts[..., j:])

    def _per_chunk(self, lams, compute):
        """``compute`` over chunks of lam (at most _LAMBDA_ELEMENTS pooled draws of L at a time,
        which bounds the memory of the histograms), its tensors concatenated along lam. Rays that
        are not stored (their draws regenerated on every call) are evaluated in one call."""
        lams = torch.as_tensor(lams, dtype=self.dtype, device=self.device).reshape(-1)
        step = max(1, _LAMBDA_ELEMENTS // (2 * self.samples))
        if lams.numel() <= step or self._rays is None:
            return compute(lams)
        parts = [compute(lams[i:i + step]) for i in range(0, lams.numel(), step)]
        return tuple(torch.cat(column) for column in zip(*parts))

    def scores(self, lams, p_a, p_b) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(estimate, lower, upper) of s(lam; p_A, p_B), each (G, J); certified iff s < 0."""
        full, parts = self._pair_masses(lams, p_a, p_b)
        score = lambda t: probit(t[0]) + probit(t[1])
        return self._band(score(full), score(parts))

    def margin(self, lams, p_a, p_b) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(estimate, lower, upper) of K = P_H1(S_A) - P_H1(S_B) = 1 - T(1 - p_A) - T(p_B), (G, J)."""
        full, parts = self._pair_masses(lams, p_a, p_b)
        margin = lambda t: 1.0 - t[0] - t[1]
        return self._band(margin(full), margin(parts))
