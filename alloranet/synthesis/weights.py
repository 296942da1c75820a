"""Weights from regrets (spec/synthesis.md 2.3) and the weighted average (2.4).

Every function works on a batch of pools at once: row b of ``regrets`` is one pool, ``mask``
says which entries belong to it. Batching is what makes the one-out and one-in networks (N and K
pools of size N + K) cost a few matrix passes instead of a Python loop per worker.
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


def pool_weights(
    regrets: FloatArray, mask: BoolArray, p: float, c: float, epsilon: float
) -> FloatArray:
    """Weights of every pool (row): sample std of the pool, normalise by |std| + epsilon,
    weight each entry from its normalised regret and the pool's un-capped maximum.
    Entries outside the pool get weight 0."""
    std = masked_sample_std(regrets, mask)
    with np.errstate(all="ignore"):
        norm = np.where(mask, regrets, 0.0) / (np.abs(std) + epsilon)[..., None]
    rmax = np.max(np.where(mask, norm, -np.inf), axis=-1)
    w = weight_from_normalized_regret(norm, rmax[..., None], p, c)
    return np.asarray(np.where(mask, w, 0.0), dtype=np.float64)


def weighted_average(
    values: FloatArray, weights: FloatArray, floor: float | None
) -> tuple[FloatArray, FloatArray]:
    """Row-wise sum(w v) / max(sum w, floor) (``floor`` None: plain sum w). Returns the values
    and the weight sums so callers can tell an all-zero pool."""
    num = fixed_sum(np.where(weights != 0.0, weights * values, 0.0))
    den = fixed_sum(weights)
    with np.errstate(all="ignore"):
        div = den if floor is None else np.maximum(den, floor)
        out = num / div
    return np.asarray(out, dtype=np.float64), den
