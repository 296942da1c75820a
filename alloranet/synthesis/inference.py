"""Network inferences (spec/synthesis.md 3.1-3.5, 3.7): forecast-implied, combined, naive,
one-out (inferer and forecaster withheld), one-in, the weights and the confidence band.

Shapes: N inferers and K forecasters, each sorted by address by the caller. Forecasts are a
dense (K, N) matrix of forecasted log10 losses with NaN where forecaster k said nothing about
inferer j. "No value" in an output is NaN. The one-out-inferer forecast-implied inferences only
change for (k, j') with j' in k's forecast, so they are computed on the forecasts' padded
element lists (K, E, E): O(K E^2) instead of O(K N^2); with Allora's cap of 12 elements per
forecast the one-out terms cost O(N (N + K)).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from alloranet.synthesis.errors import SynthesisError
from alloranet.synthesis.pools import PoolGroup, average_pools_many
from alloranet.synthesis.stats import fixed_sum, median, weighted_percentiles

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

#: Percentiles of the confidence band (one and two sigma of a normal, and the median).
BAND_PERCENTILES = (2.28, 15.87, 50.0, 84.13, 97.72)


@dataclass(frozen=True)
class InferenceRegrets:
    """Regrets aligned to this round's sorted inferers (N) and forecasters (K); a worker with
    no stored entry already carries the topic's initial regret."""

    inferer: FloatArray  # (N,)
    forecaster: FloatArray  # (K,)
    naive: FloatArray  # (N,)
    oneout_inferer_inferer: FloatArray  # (N withheld, N)
    oneout_inferer_forecaster: FloatArray  # (N withheld, K)
    oneout_forecaster_inferer: FloatArray  # (K withheld, N)
    oneout_forecaster_forecaster: FloatArray  # (K withheld, K)
    onein_inferer: FloatArray  # (K, N)
    onein_self: FloatArray  # (K,)


@dataclass(frozen=True)
class SynthesisConfig:
    """The numbers the weighting needs: p, c, epsilon, EpsilonSafeDiv."""

    p_norm: float
    c_norm: float
    epsilon: float
    epsilon_safe_div: float


@dataclass(frozen=True)
class InferenceArrays:
    """Every network inference of one round (NaN = not computed on this path)."""

    combined: float
    naive: float
    inferer_weights: FloatArray  # (N,)
    forecaster_weights: FloatArray  # (K,)
    forecast_implied: FloatArray  # (K,)
    forecast_implied_oneout: FloatArray  # (K, N withheld)
    oneout_inferers: FloatArray  # (N,)
    oneout_forecasters: FloatArray  # (K,)
    onein: FloatArray  # (K,)
    confidence_band: FloatArray  # (5,)


@functools.lru_cache(maxsize=16)
def _off_diagonal(n: int) -> BoolArray:
    """``~np.eye(n, dtype=bool)``, built once per size (read-only)."""
    out = ~np.eye(n, dtype=bool)
    out.flags.writeable = False
    return out


def _nan(shape: tuple[int, ...]) -> FloatArray:
    return np.full(shape, np.nan, dtype=np.float64)


def _band(values: FloatArray, weights: FloatArray) -> FloatArray:
    keep = weights > 0.0
    if not np.any(keep):
        return _nan((len(BAND_PERCENTILES),))
    return weighted_percentiles(values[keep], weights[keep], BAND_PERCENTILES)


def _median_rows(values: FloatArray, mask: BoolArray) -> FloatArray:
    out = _nan((mask.shape[0],))
    for k in range(mask.shape[0]):  # only on the degenerate initial-regret-zero path
        if np.any(mask[k]):
            out[k] = median(values[k][mask[k]])
    return out


def forecast_implied(
    inferences: FloatArray,
    forecasts: FloatArray,
    latest_loss: float,
    cfg: SynthesisConfig,
    naive_regrets: FloatArray | None = None,
) -> tuple[FloatArray, FloatArray, float]:
    """3.1: I_k^f and its one-out-inferer variants I_k^{f,-j'} (K, N), NaN = none; with
    ``naive_regrets`` also the naive inference (3.3), whose pool has the same length N and so
    is weighted in the same batch (else NaN)."""
    n_inf = inferences.shape[0]
    k_ = forecasts.shape[0]
    mask = ~np.isnan(forecasts)
    regrets = latest_loss - np.where(mask, forecasts, 0.0)
    groups = [PoolGroup(k_, [regrets], [mask], [inferences], None, single_is_one=True)]
    if naive_regrets is not None:
        groups.append(PoolGroup(1, [naive_regrets], [None], [inferences], cfg.epsilon_safe_div))
    batches: list[tuple[list[PoolGroup], int]] = [(groups, 0)]
    count = np.add.reduce(mask, axis=1)  # np.count_nonzero(axis=1), unwrapped
    width = int(count.max()) if count.size else 0
    if width >= 2:
        # one-out-inferer variants, on the forecasts' element lists: independent of the
        # batch above, so both are weighted in one pass (pools.average_pools_many)
        order = np.argsort(~mask, axis=1, kind="stable")[:, :width]  # element lists, by address
        rows = np.arange(k_)[:, None]
        emask = mask[rows, order]
        ereg = regrets[rows, order]
        eval_ = inferences[order]
        keep = _off_diagonal(width)[None, :, :] & emask[:, None, :] & emask[:, :, None]
        e_ = width
        flat_mask = keep.reshape(k_ * e_, e_)
        flat_reg = np.repeat(ereg, e_, axis=0)  # row (k, e) is forecaster k's element list
        flat_val = np.repeat(eval_, e_, axis=0)
        batches.append(([PoolGroup(k_ * e_, [flat_reg], [flat_mask], [flat_val])], 0))
    results = average_pools_many(batches, cfg.p_norm, cfg.c_norm, cfg.epsilon)
    vals, den, _ = results[0]
    naive = float(vals[k_]) if naive_regrets is not None else float("nan")
    fi = np.where(den[:k_] != 0.0, vals[:k_], np.nan)
    oneout = np.repeat(fi[:, None], n_inf, axis=1)
    if width >= 2:
        v1, d1, _ = results[1]
        v1 = np.where(d1 != 0.0, v1, np.nan).reshape(k_, e_)
        affected = emask & (count >= 2)[:, None]
        oneout[np.broadcast_to(rows, (k_, e_))[affected], order[affected]] = v1[affected]
    return np.asarray(fi, dtype=np.float64), oneout, naive


def compute_inference_arrays(
    inferences: FloatArray,
    forecasts: FloatArray,
    regrets: InferenceRegrets,
    latest_loss: float | None,
    initial_regret: float,
    cfg: SynthesisConfig,
) -> InferenceArrays:
    """All network inferences of one round, following the degenerate paths of 3.7.

    The pools are weighted in batches of equal length (see :mod:`.pools`): forecast-implied
    + naive (N), combined + one-out inferer + one-out forecaster (N + K), one-in (N + 1)."""
    n, k = inferences.shape[0], forecasts.shape[0]
    if n == 0:
        raise SynthesisError("no inferences found")
    if forecasts.shape != (k, n):
        raise SynthesisError(f"forecasts must have shape (K, {n}), got {forecasts.shape}")
    empty = _Result(n, k)
    if n == 1:
        v = float(inferences[0])
        return empty.build(v, v, np.full(len(BAND_PERCENTILES), v))
    if latest_loss is None:
        m = median(inferences)
        return empty.build(m, 0.0, weighted_percentiles(inferences, np.ones(n), BAND_PERCENTILES))
    if initial_regret == 0.0:
        return _all_new(inferences, forecasts, empty)
    fi, fi_oo, naive = forecast_implied(inferences, forecasts, latest_loss, cfg, regrets.naive)
    has_fi = ~np.isnan(fi)
    fi0 = np.where(has_fi, fi, 0.0)
    values = np.concatenate([inferences, fi0])
    fi_oo_t = fi_oo.T
    has_oo = ~np.isnan(fi_oo_t) & has_fi[None, :]  # (N, K)
    many_fi = int(has_fi.sum()) > 1
    floor = cfg.epsilon_safe_div
    groups = [
        # combined (3.2)
        PoolGroup(
            1,
            [regrets.inferer, regrets.forecaster],
            [None, has_fi],
            [inferences, fi0],
            floor,
        ),
        # one-out inferer (3.4)
        PoolGroup(
            n,
            [regrets.oneout_inferer_inferer, regrets.oneout_inferer_forecaster],
            [_off_diagonal(n), has_oo],
            [inferences, np.where(has_oo, fi_oo_t, 0.0)],
            floor,
        ),
    ]
    if many_fi:
        # one-out forecaster (3.4)
        groups.append(
            PoolGroup(
                k,
                [regrets.oneout_forecaster_inferer, regrets.oneout_forecaster_forecaster],
                [None, has_fi[None, :] & _off_diagonal(k)],
                [inferences, fi0],
                floor,
            )
        )
    batches: list[tuple[list[PoolGroup], int]] = [(groups, 1)]
    if many_fi:
        # one-in (3.5): independent of the batch above, weighted in the same pass
        onein_group = PoolGroup(
            k,
            [regrets.onein_inferer, regrets.onein_self[:, None]],
            [None, None],
            [inferences, fi0[:, None]],
            floor,
        )
        batches.append(([onein_group], 0))
    results = average_pools_many(batches, cfg.p_norm, cfg.c_norm, cfg.epsilon)
    vals, _, kept = results[0]
    comb = vals[0]
    weights = kept[0]
    band = _band(values, weights)
    oneout_inf = vals[1 : 1 + n]
    oneout_fc = _nan((k,))
    onein = _nan((k,))
    if many_fi:
        oneout_fc = np.where(has_fi, vals[1 + n :], np.nan)
        onein = np.where(has_fi, results[1][0], np.nan)
    return InferenceArrays(
        combined=float(comb),
        naive=naive,
        inferer_weights=weights[:n].copy(),
        forecaster_weights=weights[n:].copy(),
        forecast_implied=np.asarray(fi, dtype=np.float64),
        forecast_implied_oneout=np.where(has_fi[:, None], fi_oo, np.nan),
        oneout_inferers=np.asarray(oneout_inf, dtype=np.float64),
        oneout_forecasters=np.asarray(oneout_fc, dtype=np.float64),
        onein=np.asarray(onein, dtype=np.float64),
        confidence_band=band,
    )


class _Result:
    """Builder for the degenerate paths: everything not given stays NaN."""

    def __init__(self, n: int, k: int) -> None:
        self.n, self.k = n, k

    def build(
        self,
        combined: float,
        naive: float,
        band: FloatArray,
        fi: FloatArray | None = None,
        fi_oo: FloatArray | None = None,
        oneout_inf: FloatArray | None = None,
        oneout_fc: FloatArray | None = None,
        onein: FloatArray | None = None,
    ) -> InferenceArrays:
        n, k = self.n, self.k
        return InferenceArrays(
            combined=combined,
            naive=naive,
            inferer_weights=_nan((n,)),
            forecaster_weights=_nan((k,)),
            forecast_implied=_nan((k,)) if fi is None else fi,
            forecast_implied_oneout=_nan((k, n)) if fi_oo is None else fi_oo,
            oneout_inferers=_nan((n,)) if oneout_inf is None else oneout_inf,
            oneout_forecasters=_nan((k,)) if oneout_fc is None else oneout_fc,
            onein=_nan((k,)) if onein is None else onein,
            confidence_band=band,
        )


def _all_new(inferences: FloatArray, forecasts: FloatArray, empty: _Result) -> InferenceArrays:
    """3.7, topic InitialRegret == 0: plain means of the inferences; I_k^f = median of the
    inferences k forecast."""
    n, k = empty.n, empty.k
    mean = float(fixed_sum(inferences)) / n
    total = float(fixed_sum(inferences))
    oneout = (total - inferences) / float(n - 1)  # mean without j'
    mask = ~np.isnan(forecasts)
    fi = _median_rows(np.broadcast_to(inferences, (k, n)), mask)
    has_fi = ~np.isnan(fi)
    fc = np.where(has_fi, mean, np.nan) if int(np.count_nonzero(has_fi)) > 1 else _nan((k,))
    band = weighted_percentiles(inferences, np.ones(n), BAND_PERCENTILES)
    return empty.build(
        mean,
        mean,
        band,
        fi=fi,
        fi_oo=np.repeat(fi[:, None], n, axis=1),
        oneout_inf=np.asarray(oneout, dtype=np.float64),
        oneout_fc=fc,
        onein=fc.copy(),
    )
