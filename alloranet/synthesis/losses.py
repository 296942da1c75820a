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


def _tree_sum_axis0(buf: FloatArray) -> FloatArray:
    """:func:`.stats.fixed_sum` over axis 0, in place on contiguous rows (same tree)."""
    n = buf.shape[0]
    if n == 0:
        return np.zeros(buf.shape[1:])
    while n > 1:
        h = n >> 1
        np.add(buf[:h], buf[h : 2 * h], out=buf[:h])
        if n & 1:
            np.add(buf[h - 1], buf[2 * h], out=buf[h - 1])
        n = h
    return np.asarray(buf[0], dtype=np.float64)


def compute_loss_arrays(reports: LossReports) -> LossArrays:
    """3.6 for every entry of the bundle.

    All families go through :func:`stake_weighted_mean`'s arithmetic as one (M, entries)
    matrix, summed over reputers on contiguous rows; when every reputer reported every entry
    (the usual case) the weight sum is the same tree over the stakes for every entry, so it is
    computed once."""
    stakes = np.asarray(reports.stakes, dtype=np.float64)
    if stakes.ndim != 1 or stakes.size == 0:
        raise SynthesisError("network losses need at least one reputer")
    if not (np.isfinite(stakes).all() and (stakes >= 0.0).all()):
        raise SynthesisError("reputer stakes must be finite and >= 0")
    m = stakes.size
    parts = [
        reports.combined,
        reports.naive,
        reports.inferer,
        reports.forecaster,
        reports.oneout_inferer,
        reports.oneout_forecaster,
        reports.onein,
        reports.oneout_inferer_forecaster,
    ]
    flat = [np.asarray(a, dtype=np.float64).reshape(m, -1) for a in parts]
    x = np.concatenate(flat, axis=1)  # (M, entries), a fresh array we may overwrite
    s = stakes[:, None]
    if not np.isnan(x).any():
        x *= s
        num = _tree_sum_axis0(x)
        den = _tree_sum_axis0(stakes.copy()[:, None])  # (1,): broadcasts over entries
    else:
        present = ~np.isnan(x)
        np.copyto(x, 0.0, where=~present)
        x *= s
        np.copyto(x, 0.0, where=~present)
        num = _tree_sum_axis0(x)
        den = _tree_sum_axis0(np.where(present, s, 0.0))
    with np.errstate(all="ignore"):
        pos = den > 0.0
        out = np.where(pos, num / np.where(pos, den, 1.0), np.nan)
    if out.shape != num.shape:
        out = np.broadcast_to(out, num.shape)
    # one copy per family, not views of ``out``: a view would keep the whole (entries,)
    # array alive for the epoch, and at 1,000 x 100 glibc's default allocator then mmaps
    # and faults in later temporaries instead (measured: 13 -> 3,074 page faults an epoch)
    pieces = []
    c = 0
    for a, f in zip(parts, flat, strict=True):
        w = f.shape[1]
        pieces.append(np.array(out[c : c + w]).reshape(np.shape(a)[1:]))
        c += w
    return LossArrays(
        combined=float(pieces[0]),
        naive=float(pieces[1]),
        inferer=pieces[2],
        forecaster=pieces[3],
        oneout_inferer=pieces[4],
        oneout_forecaster=pieces[5],
        onein=pieces[6],
        oneout_inferer_forecaster=pieces[7],
    )
