"""Weights from regrets (spec/synthesis.md 2.3) and the weighted average (2.4).

Every function works on a batch of pools at once: row b of ``regrets`` is one pool, ``mask``
says which entries belong to it. Batching is what makes the one-out and one-in networks (N and K
pools of size N + K) cost a few matrix passes instead of a Python loop per worker.

These are the reference definitions; the epoch itself runs :func:`.pools.average_pools`,
which computes the same bits in cache-sized blocks (tests compare the two).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from alloranet.synthesis import detmath
from alloranet.synthesis.stats import fixed_sum, masked_sample_std

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


def gradient(p: float, c: float, x: npt.ArrayLike) -> FloatArray:
    """phi'(x) = p / (1 + exp(p (c - x))), Allora's ``math.Gradient``."""
    xa = np.asarray(x, dtype=np.float64)
    return np.asarray(p / (1.0 + detmath.exp(p * (c - xa))), dtype=np.float64)


def phi(p: float, c: float, x: npt.ArrayLike) -> FloatArray:
    """phi(x) = ln(1 + exp(p (x - c))), Allora's ``math.Phi``."""
    xa = np.asarray(x, dtype=np.float64)
    return detmath.log1p(detmath.exp(p * (xa - c)))


def weight_from_normalized_regret(
    normalized: npt.ArrayLike, max_normalized: npt.ArrayLike, p: float, c: float
) -> FloatArray:
    """``CalcWeightFromNormalizedRegret``: cap, re-anchor the top worker, cut off, phi'."""
    r = np.asarray(normalized, dtype=np.float64)
    rmax = np.asarray(max_normalized, dtype=np.float64)
    r = np.minimum(r, c + 6.75 / p)
    anchor = c - 8.25 / p
    r = np.where(rmax < anchor, r - rmax + anchor, r)
    w = gradient(p, c, r)
    return np.asarray(np.where(r < c - 17.25 / p, 0.0, w), dtype=np.float64)


def _weights_in_place(r: FloatArray, rmax: FloatArray, p: float, c: float) -> FloatArray:
    """:func:`weight_from_normalized_regret` on a batch (B, M) that may be overwritten; the
    same operations in the same order, without a fresh array per step."""
    np.minimum(r, c + 6.75 / p, out=r)
    anchor = c - 8.25 / p
    rows = rmax < anchor
    if np.any(rows):
        sub = r[rows]
        sub -= rmax[rows][:, None]
        sub += anchor
        r[rows] = sub
    with np.errstate(all="ignore"):
        arg = c - r
        arg *= p
        w = detmath.exp(arg)
        w += 1.0
        np.divide(p, w, out=w)
    np.copyto(w, 0.0, where=r < c - 17.25 / p)
    return w


def pool_weights(
    regrets: FloatArray, mask: BoolArray, p: float, c: float, epsilon: float
) -> FloatArray:
    """Weights of every pool (row): sample std of the pool, normalise by |std| + epsilon,
    weight each entry from its normalised regret and the pool's un-capped maximum.
    Entries outside the pool get weight 0."""
    regrets = np.atleast_2d(regrets)
    mask = np.atleast_2d(mask)
    std = masked_sample_std(regrets, mask)
    with np.errstate(all="ignore"):
        norm = np.array(regrets, dtype=np.float64, copy=True)
        np.copyto(norm, 0.0, where=~mask)
        norm /= (np.abs(std) + epsilon)[..., None]
    rmax = np.max(norm, axis=-1, where=mask, initial=-np.inf)
    w = _weights_in_place(norm, rmax, p, c)
    np.copyto(w, 0.0, where=~mask)
    return w


def weighted_average(
    values: FloatArray, weights: FloatArray, floor: float | None
) -> tuple[FloatArray, FloatArray]:
    """Row-wise sum(w v) / max(sum w, floor) (``floor`` None: plain sum w). Returns the values
    and the weight sums so callers can tell an all-zero pool."""
    prod = weights * values
    np.copyto(prod, 0.0, where=weights == 0.0)  # zero weights are skipped (values may be NaN)
    num = fixed_sum(prod)
    den = fixed_sum(weights)
    with np.errstate(all="ignore"):
        div = den if floor is None else np.maximum(den, floor)
        out = num / div
    return np.asarray(out, dtype=np.float64), den
