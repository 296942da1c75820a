"""Network losses (spec/synthesis.md 3.6): stake-weighted means of reputer log10 losses.

Each entry averages over the reputers that reported it (NaN = not reported), summing over
reputers in address order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from alloranet.synthesis.errors import SynthesisError
from alloranet.synthesis.stats import fixed_sum

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class LossReports:
    """Every reputer's reported log10 losses, reputers (M) sorted by address, NaN = missing.

    ``oneout_inferer_forecaster[m, k, j]`` is the loss of I_k^{f,-j}."""

    stakes: FloatArray  # (M,)
    combined: FloatArray  # (M,)
    naive: FloatArray  # (M,)
    inferer: FloatArray  # (M, N)
    forecaster: FloatArray  # (M, K)
    oneout_inferer: FloatArray  # (M, N)
    oneout_forecaster: FloatArray  # (M, K)
    onein: FloatArray  # (M, K)
    oneout_inferer_forecaster: FloatArray  # (M, K, N)


@dataclass(frozen=True)
class LossArrays:
    """Network losses of one nonce (NaN = no reputer reported that entry)."""

    combined: float
    naive: float
    inferer: FloatArray  # (N,)
    forecaster: FloatArray  # (K,)
    oneout_inferer: FloatArray  # (N,)
    oneout_forecaster: FloatArray  # (K,)
    onein: FloatArray  # (K,)
    oneout_inferer_forecaster: FloatArray  # (K, N)


def stake_weighted_mean(reports: npt.ArrayLike, stakes: FloatArray) -> FloatArray:
    """Entry-wise sum_m S_m x_m / sum_m S_m over the reputers (axis 0) that reported."""
    x = np.asarray(reports, dtype=np.float64)
    present = ~np.isnan(x)
    s = stakes.reshape((-1,) + (1,) * (x.ndim - 1))
    num = fixed_sum(np.where(present, s * np.where(present, x, 0.0), 0.0), axis=0)
    den = fixed_sum(np.where(present, np.broadcast_to(s, x.shape), 0.0), axis=0)
    with np.errstate(all="ignore"):
        out = np.where(den > 0.0, num / np.where(den > 0.0, den, 1.0), np.nan)
    return np.asarray(out, dtype=np.float64)


def compute_loss_arrays(reports: LossReports) -> LossArrays:
    """3.6 for every entry of the bundle."""
    stakes = np.asarray(reports.stakes, dtype=np.float64)
    if stakes.ndim != 1 or stakes.size == 0:
        raise SynthesisError("network losses need at least one reputer")
    if np.any(~np.isfinite(stakes)) or np.any(stakes < 0.0):
        raise SynthesisError("reputer stakes must be finite and >= 0")

    def f(a: FloatArray) -> FloatArray:
        return stake_weighted_mean(a, stakes)

    return LossArrays(
        combined=float(f(reports.combined)),
        naive=float(f(reports.naive)),
        inferer=f(reports.inferer),
        forecaster=f(reports.forecaster),
        oneout_inferer=f(reports.oneout_inferer),
        oneout_forecaster=f(reports.oneout_forecaster),
        onein=f(reports.onein),
        oneout_inferer_forecaster=f(reports.oneout_inferer_forecaster),
    )
