"""The entry points the chain's epoch processing calls (spec/synthesis.md 0, 3-6).

Inputs and outputs are frozen dataclasses keyed by sorted address tuples with numpy arrays in
that order, so the result never depends on the order in which workers arrived, and every state
object converts to/from plain tuples (``to_wire``/``from_wire``) for hashing into app state.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import ClassVar

import numpy as np
import numpy.typing as npt

from alloranet import codec
from alloranet.synthesis.errors import SynthesisError, require_sorted_unique
from alloranet.synthesis.inference import (
    InferenceArrays,
    InferenceRegrets,
    SynthesisConfig,
    compute_inference_arrays,
)
from alloranet.synthesis.losses import LossArrays, LossReports, compute_loss_arrays
from alloranet.synthesis.params import ModuleParams, TopicParams
from alloranet.synthesis.regrets import (
    RegretState,
    compute_initial_regret,
    compute_regret_arrays,
    merge_regrets,
    update_same_workers,
)
from alloranet.synthesis.rewards import (
    forecasting_utility,
    reputer_reward_fractions,
    task_entropies,
    task_split,
    worker_reward_fractions_batch,
)
from alloranet.synthesis.scores import (
    forecaster_scores,
    inferer_scores,
    reputer_scores,
)
from alloranet.synthesis.stats import quantile
from alloranet.synthesis.tokens import to_base_units

FloatArray = npt.NDArray[np.float64]
Addresses = tuple[str, ...]


def _floats(arr: FloatArray) -> tuple[float, ...]:
    return tuple(np.asarray(arr, dtype=np.float64).ravel().tolist())


def _wire_array(arr: FloatArray) -> tuple[tuple[float, ...], bytes]:
    """Values with NaN as 0.0 plus a presence bitmap (the codec refuses NaN)."""
    a = np.asarray(arr, dtype=np.float64).ravel()
    present = ~np.isnan(a)
    return _floats(np.where(present, a, 0.0)), np.packbits(present).tobytes()


def _unwire_array(value: codec.Value, name: str, shape: tuple[int, ...]) -> FloatArray:
    pair = codec.expect_tuple(value, name, 2)
    vals = codec.expect_tuple(pair[0], name)
    n = int(np.prod(shape)) if shape else 1
    if len(vals) != n:
        raise SynthesisError(f"{name}: expected {n} values, got {len(vals)}")
    arr = np.array([codec.expect_float(v, name) for v in vals], dtype=np.float64)
    bits = np.unpackbits(np.frombuffer(codec.expect_bytes(pair[1], name), np.uint8), count=n)
    return np.where(bits.astype(bool), arr, np.nan).reshape(shape)


def _addresses(value: codec.Value, name: str) -> Addresses:
    out = tuple(codec.expect_str(a, name) for a in codec.expect_tuple(value, name))
    require_sorted_unique(out, name)
    return out


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class WorkerRound:
    """One nonce's active inferences and forecasts, sorted by address.

    ``forecasts[k, j]`` is forecaster k's log10 loss forecast for inferer j (NaN = none)."""

    inferers: Addresses
    inferences: FloatArray
    forecasters: Addresses
    forecasts: FloatArray

    def __post_init__(self) -> None:
        require_sorted_unique(self.inferers, "inferer")
        require_sorted_unique(self.forecasters, "forecaster")
        if self.inferences.shape != (len(self.inferers),):
            raise SynthesisError("one inference per inferer expected")
        if self.forecasts.shape != (len(self.forecasters), len(self.inferers)):
            raise SynthesisError("forecasts must be a (forecasters, inferers) matrix")
        if not np.all(np.isfinite(self.inferences)):
            raise SynthesisError("inferences must be finite")
        if np.any(np.isinf(self.forecasts)):
            raise SynthesisError("forecasted losses must be finite (NaN = no element)")

    @staticmethod
    def from_mappings(
        inferences: Mapping[str, float], forecasts: Mapping[str, Mapping[str, float]]
    ) -> WorkerRound:
        """Build from address-keyed maps; forecast elements about absent inferers are dropped
        and a forecast left empty is discarded (spec 1.1, ``CloseWorkerNonce``)."""
        inferers = tuple(sorted(inferences))
        col = {a: i for i, a in enumerate(inferers)}
        kept = {k: {j: v for j, v in el.items() if j in col} for k, el in forecasts.items()}
        forecasters = tuple(sorted(k for k, el in kept.items() if el))
        mat = np.full((len(forecasters), len(inferers)), np.nan)
        for r, k in enumerate(forecasters):
            for j, v in kept[k].items():
                mat[r, col[j]] = float(v)
        vals = np.array([float(inferences[a]) for a in inferers], dtype=np.float64)
        return WorkerRound(inferers, vals, forecasters, mat)


@dataclass(frozen=True)
class _WorkerBundle:
    """A per-nonce bundle over the nonce's sorted workers, with one shared wire form: the
    worker sets, the (combined, naive) pair, then the arrays named in ``WIRE_ARRAYS`` in
    that fixed order (NaN as a presence bitmap, see ``_wire_array``)."""

    WIRE_ARRAYS: ClassVar[tuple[str, ...]] = ()

    inferers: Addresses
    forecasters: Addresses

    def to_wire(self) -> tuple[codec.Value, ...]:
        v = getattr(self, "values")  # noqa: B009 - each subclass types its own ``values``
        return (
            self.inferers,
            self.forecasters,
            _wire_array(np.array([v.combined, v.naive])),
            *(_wire_array(getattr(v, name)) for name in self.WIRE_ARRAYS),
        )


@dataclass(frozen=True)
class NetworkInferences(_WorkerBundle):
    """Everything the query and the reputers need about one nonce's network inference."""

    WIRE_ARRAYS: ClassVar[tuple[str, ...]] = (
        "inferer_weights",
        "forecaster_weights",
        "forecast_implied",
        "forecast_implied_oneout",
        "oneout_inferers",
        "oneout_forecasters",
        "onein",
        "confidence_band",
    )

    values: InferenceArrays


@dataclass(frozen=True)
class ReputerReports:
    """Every reputer's loss bundle of one nonce, over the nonce's sorted workers."""

    reputers: Addresses
    inferers: Addresses
    forecasters: Addresses
    reports: LossReports

    def __post_init__(self) -> None:
        require_sorted_unique(self.reputers, "reputer")
        require_sorted_unique(self.inferers, "inferer")
        require_sorted_unique(self.forecasters, "forecaster")
        m, n, k = len(self.reputers), len(self.inferers), len(self.forecasters)
        r = self.reports
        shapes = {
            "stakes": (r.stakes, (m,)),
            "combined": (r.combined, (m,)),
            "naive": (r.naive, (m,)),
            "inferer": (r.inferer, (m, n)),
            "forecaster": (r.forecaster, (m, k)),
            "oneout_inferer": (r.oneout_inferer, (m, n)),
            "oneout_forecaster": (r.oneout_forecaster, (m, k)),
            "onein": (r.onein, (m, k)),
            "oneout_inferer_forecaster": (r.oneout_inferer_forecaster, (m, k, n)),
        }
        for name, (arr, shape) in shapes.items():
            if arr.shape != shape:
                raise SynthesisError(f"reputer reports {name}: shape {arr.shape} != {shape}")
            if np.any(np.isinf(arr)):
                raise SynthesisError(f"reputer reports {name}: losses must be finite")


@dataclass(frozen=True)
class NetworkLosses(_WorkerBundle):
    """The stake-weighted network-loss bundle of a nonce (stored; "latest" for 3.1 and 4)."""

    WIRE_ARRAYS: ClassVar[tuple[str, ...]] = (
        "inferer",
        "forecaster",
        "oneout_inferer",
        "oneout_forecaster",
        "onein",
        "oneout_inferer_forecaster",
    )

    values: LossArrays

    @staticmethod
    def from_wire(value: codec.Value) -> NetworkLosses:
        t = codec.expect_tuple(value, "network losses", 9)
        inf = _addresses(t[0], "inferers")
        fc = _addresses(t[1], "forecasters")
        n, k = len(inf), len(fc)
        head = _unwire_array(t[2], "combined/naive", (2,))
        return NetworkLosses(
            inf,
            fc,
            LossArrays(
                combined=float(head[0]),
                naive=float(head[1]),
                inferer=_unwire_array(t[3], "inferer", (n,)),
                forecaster=_unwire_array(t[4], "forecaster", (k,)),
                oneout_inferer=_unwire_array(t[5], "oneout_inferer", (n,)),
                oneout_forecaster=_unwire_array(t[6], "oneout_forecaster", (k,)),
                onein=_unwire_array(t[7], "onein", (k,)),
                oneout_inferer_forecaster=_unwire_array(t[8], "oneout_if", (k, n)),
            ),
        )


def _config(topic: TopicParams, module: ModuleParams) -> SynthesisConfig:
    return SynthesisConfig(topic.p_norm, module.c_norm, topic.epsilon, module.epsilon_safe_div)


# --------------------------------------------------------------------- entry points


def compute_network_inferences(
    topic: TopicParams,
    module: ModuleParams,
    round_: WorkerRound,
    regrets: RegretState,
    latest_losses: NetworkLosses | None,
) -> NetworkInferences:
    """Spec 3.1-3.5 and 3.7 for one nonce: combined, naive, one-out, one-in, forecast-implied
    inferences, the weights and the confidence band. Also what the query serves."""
    aligned = regrets.aligned(round_.inferers, round_.forecasters)
    latest = None if latest_losses is None else latest_losses.values.combined
    if latest is not None and not np.isfinite(latest):
        latest = None
    arrays = compute_inference_arrays(
        round_.inferences,
        round_.forecasts,
        aligned,
        latest,
        regrets.initial_regret,
        _config(topic, module),
    )
    return NetworkInferences(round_.inferers, round_.forecasters, arrays)


def compute_network_losses(reports: ReputerReports) -> NetworkLosses:
    """Spec 3.6: stake-weighted mean of every reported log10 loss."""
    return NetworkLosses(
        reports.inferers, reports.forecasters, compute_loss_arrays(reports.reports)
    )


def compute_regret_update(
    topic: TopicParams,
    module: ModuleParams,
    state: RegretState,
    losses: NetworkLosses,
    experienced_inferers: frozenset[str] = frozenset(),
    experienced_forecasters: frozenset[str] = frozenset(),
) -> RegretState:
    """Spec 2.1-2.2: update all nine regret families from the nonce's network losses, then
    the topic's initial regret from the experienced workers (inclusion count >= 1/alpha and
    a stored regret before this round; the chain knows the counts)."""
    inf, fc = losses.inferers, losses.forecasters
    same = inf == state.inferers and fc == state.forecasters
    if same:
        # the usual case: one fused pass per family (same bits as the general path below)
        require_sorted_unique(inf, "inferer")
        require_sorted_unique(fc, "forecaster")
        merged, new = update_same_workers(state, losses.values, topic.alpha_regret)
        stored_inferer, stored_forecaster = state.regrets.inferer, state.regrets.forecaster
    else:
        stored = state.project(inf, fc, np.nan)
        prev = InferenceRegrets(
            **{
                f.name: np.where(
                    np.isnan(getattr(stored, f.name)),
                    state.initial_regret,
                    getattr(stored, f.name),
                )
                for f in fields(stored)
            }
        )
        new = compute_regret_arrays(losses.values, prev, topic.alpha_regret)
        stored_inferer, stored_forecaster = stored.inferer, stored.forecaster
    exp_i = np.array([a in experienced_inferers for a in inf], dtype=bool) & ~np.isnan(
        stored_inferer
    )
    exp_f = np.array([a in experienced_forecasters for a in fc], dtype=bool) & ~np.isnan(
        stored_forecaster
    )
    pool = np.concatenate([new.inferer[exp_i], new.forecaster[exp_f]])
    initial = compute_initial_regret(
        pool,
        state.initial_regret,
        topic.p_norm,
        module.c_norm,
        topic.epsilon,
        module.initial_regret_quantile,
        module.p_norm_safe_div,
    )
    if same:
        return RegretState(inf, fc, merged, initial)
    return merge_regrets(state, inf, fc, new, initial)


@dataclass(frozen=True)
class Scores:
    """Spec 4: instant scores, reputer calibration and the topic quantiles (4.4)."""

    inferers: Addresses
    forecasters: Addresses
    reputers: Addresses
    inferer: FloatArray
    forecaster: FloatArray
    reputer: FloatArray
    listening_coefficients: FloatArray
    adjusted_stakes: FloatArray
    inferer_quantile: float
    forecaster_quantile: float
    reputer_quantile: float

    def to_wire(self) -> tuple[codec.Value, ...]:
        return (
            self.inferers,
            self.forecasters,
            self.reputers,
            _wire_array(self.inferer),
            _wire_array(self.forecaster),
            _wire_array(self.reputer),
            _wire_array(self.listening_coefficients),
            _wire_array(self.adjusted_stakes),
            _wire_array(
                np.array([self.inferer_quantile, self.forecaster_quantile, self.reputer_quantile])
            ),
        )


def _q(values: FloatArray, q: float) -> float:
    v = values[~np.isnan(values)]
    return quantile(v, q) if v.size else float("nan")


def compute_scores(
    topic: TopicParams,
    module: ModuleParams,
    losses: NetworkLosses,
    reports: ReputerReports,
    listening_coefficients: Mapping[str, float],
) -> Scores:
    """Spec 4.1-4.4 for the reward nonce. Missing coefficients default to 1."""
    v = losses.values
    t_inf = inferer_scores(v.oneout_inferer, v.combined)
    t_fc = forecaster_scores(v.oneout_forecaster, v.onein, v.combined, v.naive)
    coeff = np.array([float(listening_coefficients.get(a, 1.0)) for a in reports.reputers])
    rep = reputer_scores(
        reports.reports,
        coeff,
        eps_reputer=module.epsilon_reputer,
        eps_div=module.epsilon_safe_div,
        learning_rate=module.learning_rate,
        max_iters=module.gradient_descent_max_iters,
        max_gradient_threshold=module.max_gradient_threshold,
        min_stake_fraction=module.min_stake_fraction,
    )
    return Scores(
        losses.inferers,
        losses.forecasters,
        reports.reputers,
        t_inf,
        t_fc,
        rep.scores,
        rep.coefficients,
        rep.adjusted_stakes,
        _q(t_inf, topic.active_inferer_quantile),
        _q(t_fc, topic.active_forecaster_quantile),
        _q(rep.scores, topic.active_reputer_quantile),
    )


@dataclass(frozen=True)
class RewardState:
    """Per-topic reward memory: smoothed fractions per task and the forecasting score ratio."""

    inferer_smoothed: Mapping[str, float]
    forecaster_smoothed: Mapping[str, float]
    reputer_smoothed: Mapping[str, float]
    score_ratio: float = 0.0

    def to_wire(self) -> tuple[codec.Value, ...]:
        def pairs(m: Mapping[str, float]) -> tuple[codec.Value, ...]:
            return tuple((a, float(m[a])) for a in sorted(m))

        return (
            pairs(self.inferer_smoothed),
            pairs(self.forecaster_smoothed),
            pairs(self.reputer_smoothed),
            float(self.score_ratio),
        )

    @staticmethod
    def from_wire(value: codec.Value) -> RewardState:
        t = codec.expect_tuple(value, "reward state", 4)

        def pairs(v: codec.Value, name: str) -> dict[str, float]:
            out: dict[str, float] = {}
            for item in codec.expect_tuple(v, name):
                pair = codec.expect_tuple(item, name, 2)
                out[codec.expect_str(pair[0], name)] = codec.expect_float(pair[1], name)
            require_sorted_unique(tuple(out), name)
            return out

        return RewardState(
            pairs(t[0], "inferer fractions"),
            pairs(t[1], "forecaster fractions"),
            pairs(t[2], "reputer fractions"),
            codec.expect_float(t[3], "score ratio"),
        )


@dataclass(frozen=True)
class Rewards:
    """Integer payouts (base units) per actor, sorted by address, and the state to store."""

    inferer_payouts: tuple[tuple[str, int], ...]
    forecaster_payouts: tuple[tuple[str, int], ...]
    reputer_payouts: tuple[tuple[str, int], ...]
    task_totals: tuple[float, float, float]
    entropies: tuple[float, float, float]
    chi: float
    state: RewardState

    def to_wire(self) -> tuple[codec.Value, ...]:
        return (
            self.inferer_payouts,
            self.forecaster_payouts,
            self.reputer_payouts,
            tuple(float(x) for x in self.task_totals),
            tuple(float(x) for x in self.entropies),
            float(self.chi),
            self.state.to_wire(),
        )


def _prev(addresses: Addresses, m: Mapping[str, float]) -> FloatArray:
    return np.array([float(m.get(a, np.nan)) for a in addresses], dtype=np.float64)


def compute_rewards(
    topic: TopicParams,
    module: ModuleParams,
    topic_reward: int,
    scores: Scores,
    losses: NetworkLosses,
    stakes: FloatArray,
    inferer_score_samples: FloatArray,
    forecaster_score_samples: FloatArray,
    previous: RewardState,
) -> Rewards:
    """Spec 5.3-5.4: reward fractions, entropy split with chi and gamma, integer payouts.

    ``stakes`` are the reputers' stakes in ``scores.reputers`` order; the score samples are
    the ``MaxSamplesToScaleScores`` most recent score records per task (this round first)."""
    if topic_reward < 0:
        raise SynthesisError("topic reward must be >= 0")
    u_inf, u_fc = worker_reward_fractions_batch(
        [
            (
                scores.inferer,
                inferer_score_samples,
                module.p_reward_inference,
                module.c_reward_inference,
            ),
            (
                scores.forecaster,
                forecaster_score_samples,
                module.p_reward_forecast,
                module.c_reward_forecast,
            ),
        ],
        topic.epsilon,
    )
    v_rep = reputer_reward_fractions(stakes, scores.reputer, module.p_reward_reputer)
    alpha, beta = module.task_reward_alpha, module.beta_entropy
    e_inf, e_fc, e_rep = task_entropies(
        [
            (u_inf, _prev(scores.inferers, previous.inferer_smoothed)),
            (u_fc, _prev(scores.forecasters, previous.forecaster_smoothed)),
            (v_rep, _prev(scores.reputers, previous.reputer_smoothed)),
        ],
        alpha,
        beta,
    )
    g = e_fc.entropy if len(scores.inferers) > 1 and len(scores.forecasters) > 0 else 0.0
    util = forecasting_utility(
        losses.values.naive, losses.values.combined, scores.inferer, previous.score_ratio, alpha
    )
    total = float(topic_reward)
    split = task_split(total, e_inf.entropy, g, e_rep.entropy, util.chi)

    # Integer budgets: each task's total, then each participant's share, are truncated; float
    # rounding could still make the shares add up to a few base units more than the budget,
    # so any excess is taken from the largest payout (first address on ties). Never overpays.
    budgets = [
        to_base_units(max(0.0, x)) for x in (split.inferers, split.forecasters, split.reputers)
    ]
    while sum(budgets) > topic_reward:
        budgets[budgets.index(max(budgets))] -= sum(budgets) - topic_reward  # exact ints

    def pay(addrs: Addresses, frac: FloatArray, budget: int) -> tuple[tuple[str, int], ...]:
        # to_base_units(max(0.0, f * budget)) per actor, vectorised: max(0.0, x) is x only
        # when x > 0 (NaN becomes 0), and int() truncates a finite float exactly
        raw: list[float] = (np.asarray(frac, dtype=np.float64) * float(budget)).tolist()
        positive = [x if x > 0.0 else 0.0 for x in raw]
        for x in positive:
            if not math.isfinite(x):
                to_base_units(x)  # raises the usual error
        amounts = list(map(int, positive))
        excess = sum(amounts) - budget
        if excess > 0:
            amounts[amounts.index(max(amounts))] -= excess  # the first largest (np.argmax)
        return tuple(zip(addrs, amounts, strict=True))

    return Rewards(
        inferer_payouts=pay(scores.inferers, u_inf, budgets[0]),
        forecaster_payouts=pay(scores.forecasters, u_fc, budgets[1]),
        reputer_payouts=pay(scores.reputers, v_rep, budgets[2]),
        task_totals=(split.inferers, split.forecasters, split.reputers),
        entropies=(e_inf.entropy, g, e_rep.entropy),
        chi=util.chi,
        state=RewardState(
            dict(zip(scores.inferers, _floats(e_inf.smoothed), strict=True)),
            dict(zip(scores.forecasters, _floats(e_fc.smoothed), strict=True)),
            dict(zip(scores.reputers, _floats(e_rep.smoothed), strict=True)),
            util.score_ratio,
        ),
    )
