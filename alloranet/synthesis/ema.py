"""Allora's ``CalcEma``: cur if first time or cur == prev, else alpha cur + (1 - alpha) prev."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


def ema(alpha: float, current: npt.ArrayLike, previous: npt.ArrayLike) -> FloatArray:
    """Element-wise EMA (never "first time"; callers pass ``previous = current`` for that)."""
    cur = np.asarray(current, dtype=np.float64)
    prev = np.asarray(previous, dtype=np.float64)
    out = np.where(cur == prev, cur, alpha * cur + (1.0 - alpha) * prev)
    return np.asarray(out, dtype=np.float64)


def ema_scalar(alpha: float, current: float, previous: float | None) -> float:
    """Scalar EMA; ``previous`` None means first time (returns ``current``)."""
    if previous is None or current == previous:
        return current
    return alpha * current + (1.0 - alpha) * previous
