"""Merit sortition of the active sets (spec/synthesis.md 1.1, 4.4).

The top ``capacity`` actors by stored score EMA are active. Active actors' EMAs move toward
their instant score; inactive (evicted or refused) actors' EMAs move toward the topic's stored
quantile of the active instant scores ("passive" update), so an idle actor drifts toward the
pack rather than keeping a stale rank.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from alloranet.synthesis.ema import ema
from alloranet.synthesis.stats import quantile

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


def select_active(emas: FloatArray, capacity: int) -> BoolArray:
    """Mask of the ``capacity`` highest EMAs (ties: earlier address first)."""
    n = emas.size
    active = np.zeros(n, dtype=bool)
    if capacity <= 0 or n == 0:
        return active
    order = np.lexsort((np.arange(n), -emas))  # EMA descending, then address order
    active[order[: min(capacity, n)]] = True
    return active


@dataclass(frozen=True)
class SortitionUpdate:
    emas: FloatArray
    quantile_score: float
    cutoff: float


def compute_sortition_update(
    previous_emas: FloatArray,
    active: BoolArray,
    scores: FloatArray,
    alpha: float,
    q: float,
) -> SortitionUpdate:
    """New EMAs: active -> EMA(alpha, score, prev); inactive -> EMA(alpha, quantile, prev),
    quantile = the q-quantile of the active actors' instant scores (``GetQuantileOfDecs``)."""
    act_scores = scores[active]
    qs = quantile(act_scores, q) if act_scores.size else 0.0
    target = np.where(active, np.where(active, scores, 0.0), qs)
    new = ema(alpha, target, previous_emas)
    cutoff = float(np.min(previous_emas[active])) if np.any(active) else float("nan")
    return SortitionUpdate(new, qs, cutoff)
