"""Rewards (spec/synthesis.md 5.1-5.5): topic weight and reward, reward fractions, entropy,
the forecasting utility chi and normaliser gamma, the task split and per-actor payouts.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from alloranet.synthesis import detmath
from alloranet.synthesis.ema import ema, ema_scalar
from alloranet.synthesis.errors import SynthesisError
from alloranet.synthesis.params import SINGLE_PARTICIPANT_ENTROPY
from alloranet.synthesis.stats import fixed_sum_scalar, py_tree, sample_std
from alloranet.synthesis.tokens import to_base_units
from alloranet.synthesis.weights import phi

FloatArray = npt.NDArray[np.float64]


def worker_reward_fractions(
    scores: FloatArray, score_samples: FloatArray, p: float, c: float, epsilon: float
) -> FloatArray:
    """5.3: u_a = M_a / sum M with M_a = phi_p(T_a / (sigma_T + eps)); equal if sigma_T < eps.
    ``score_samples`` are the recent score records that set sigma_T."""
    n = scores.size
    if n == 0:
        return np.zeros(0)
    sigma = sample_std(score_samples) if score_samples.size >= 2 else 0.0
    if sigma < epsilon:
        return np.full(n, 1.0 / n)
    mapped = phi(p, c, scores / (sigma + epsilon))
    return np.asarray(mapped / fixed_sum_scalar(mapped), dtype=np.float64)


def reputer_reward_fractions(stakes: FloatArray, scores: FloatArray, p: float) -> FloatArray:
    """5.3: v_m = (S_m T_m)^p / sum (S T)^p."""
    powered = detmath.power(np.maximum(stakes * scores, 0.0), p)
    total = fixed_sum_scalar(powered)
    if total == 0.0:
        return np.zeros(stakes.size)
    return np.asarray(powered / total, dtype=np.float64)


@dataclass(frozen=True)
class Entropy:
    """Entropy of one task and the smoothed fractions to store for next time."""

    entropy: float
    smoothed: FloatArray


def task_entropy(
    fractions: FloatArray, previous_smoothed: FloatArray | None, alpha: float, beta: float
) -> Entropy:
    """5.4: EMA-smoothed fractions, N_eff = 1 / sum f^2, H = -sum f ln f (N_eff / N)^beta."""
    n = fractions.size
    if n == 0:
        return Entropy(0.0, np.zeros(0))
    prev = (
        fractions
        if previous_smoothed is None
        else np.where(np.isnan(previous_smoothed), fractions, previous_smoothed)
    )
    smooth = ema(alpha, fractions, prev)
    total = fixed_sum_scalar(smooth)
    norm = smooth / total
    if n == 1:
        return Entropy(SINGLE_PARTICIPANT_ENTROPY, norm)
    n_eff = 1.0 / fixed_sum_scalar(norm * norm)
    logs = detmath.log(np.where(norm > 0.0, norm, 1.0))
    h = -fixed_sum_scalar(np.where(norm > 0.0, norm * logs, 0.0))
    h = h * detmath.power_scalar(n_eff / n, beta)
    return Entropy(float(h), np.asarray(norm, dtype=np.float64))


@dataclass(frozen=True)
class ForecastUtility:
    task_score: float
    score_ratio: float
    chi: float


def forecasting_utility(
    naive_loss: float,
    combined_loss: float,
    inferer_scores: FloatArray,
    previous_ratio: float,
    alpha: float,
) -> ForecastUtility:
    """5.4: T_fc = L^- - L, rho = EMA(T_fc / denominator), chi from rho."""
    t_fc = naive_loss - combined_loss
    t_max = max(0.0, float(np.max(inferer_scores))) if inferer_scores.size else 0.0
    if t_max == 0.0:
        if t_fc == 0.0:
            return ForecastUtility(t_fc, 0.0, 0.5)
        den = abs(t_fc)
    else:
        den = t_max
    rho = ema_scalar(alpha, t_fc / den, previous_ratio)
    if rho < 0.0:
        chi = 0.1
    elif rho >= 1.0:
        chi = 0.5
    else:
        chi = 0.1 + 0.4 * rho
    return ForecastUtility(t_fc, rho, chi)


@dataclass(frozen=True)
class TaskSplit:
    inferers: float
    forecasters: float
    reputers: float


def task_split(reward: float, f_inf: float, g_fc: float, h_rep: float, chi: float) -> TaskSplit:
    """5.4: U = (1-chi) gamma F E / Z, V = chi gamma G E / Z, W = H E / Z."""
    z = f_inf + g_fc + h_rep
    if z == 0.0:
        raise SynthesisError("all task entropies are zero")
    gamma = (f_inf + g_fc) / ((1.0 - chi) * f_inf + chi * g_fc)
    return TaskSplit(
        inferers=(1.0 - chi) * gamma * f_inf * reward / z,
        forecasters=chi * gamma * g_fc * reward / z,
        reputers=h_rep * reward / z,
    )


def topic_target_weight(
    stake: float, fee_revenue: float, epoch_length: int, mu: float, nu: float
) -> float:
    """5.1: S^mu (C / epochLength)^nu (0 when there is no fee revenue)."""
    if fee_revenue <= 0.0:
        return 0.0
    return detmath.power_scalar(stake, mu) * detmath.power_scalar(fee_revenue / epoch_length, nu)


def topic_weight(target: float, previous: float | None, alpha: float) -> float:
    """5.1: EMA of the target weight (first time: the target); 0 target stays 0."""
    if target == 0.0:
        return 0.0
    return ema_scalar(alpha, target, previous)


def topic_rewards(
    weights: FloatArray, epoch_lengths: npt.NDArray[np.int64], block_emission: float, balance: float
) -> FloatArray:
    """5.2: E_t = w_t / sum w * E_block * epochLength_t, scaled down to the balance."""
    total = fixed_sum_scalar(weights)
    if total == 0.0:
        raise SynthesisError("total topic weight is zero")
    rewards = weights / total * block_emission * epoch_lengths.astype(np.float64)
    if fixed_sum_scalar(rewards) > balance:
        if rewards.size == 1:
            return np.array([balance])
        wl = weights * epoch_lengths.astype(np.float64)
        return np.asarray(balance * wl / fixed_sum_scalar(wl), dtype=np.float64)
    return np.asarray(rewards, dtype=np.float64)


def fee_drip(fee_revenue: int, epoch_length: int, blocks_per_month: int) -> int:
    """5.5: C <- max(0, C - C / epochsPerWeek), epochsPerWeek = (BlocksPerMonth/4.345)/len."""
    epochs_per_week = (blocks_per_month / 4.345) / epoch_length
    if epochs_per_week <= 0.0:
        return fee_revenue
    drip = to_base_units(fee_revenue / epochs_per_week)
    return max(0, fee_revenue - drip)


def split_reputer_reward(reward: int, own_stake: int, delegated_stake: int) -> tuple[int, int]:
    """5.4: delegators get floor(W_m * delegated / S_m); the reputer keeps the rest."""
    total = own_stake + delegated_stake
    if total <= 0 or delegated_stake <= 0:
        return reward, 0
    to_delegators = reward * delegated_stake // total
    return reward - to_delegators, to_delegators


def payouts(fractions: FloatArray, total: float) -> tuple[int, ...]:
    """Per-participant integer payouts: truncate(fraction * total) each (dust stays)."""
    return tuple(to_base_units(max(0.0, float(f) * total)) for f in fractions)


def worker_reward_fractions_batch(
    tasks: list[tuple[FloatArray, FloatArray, float, float]], epsilon: float
) -> list[FloatArray]:
    """:func:`worker_reward_fractions` of several tasks (scores, score samples, p, c) with
    one exp and one log1p over all of them (element-wise kernels: the same bits; one call
    instead of one per task matters at small sizes)."""
    out: list[FloatArray | None] = []
    args: list[FloatArray] = []
    for scores, samples, p, c in tasks:
        n = scores.size
        if n == 0:
            out.append(np.zeros(0))
            continue
        sigma = sample_std(samples) if samples.size >= 2 else 0.0
        if sigma < epsilon:
            out.append(np.full(n, 1.0 / n))
            continue
        x = np.asarray(scores / (sigma + epsilon), dtype=np.float64)
        args.append(p * (x - c))  # phi's argument, as weights.phi forms it
        out.append(None)
    if args:
        mapped_all = detmath.log1p(detmath.exp(np.concatenate(args)))
        pos = 0
        for i, o in enumerate(out):
            if o is None:
                n = tasks[i][0].size
                mapped = mapped_all[pos : pos + n]
                pos += n
                out[i] = np.asarray(mapped / fixed_sum_scalar(mapped), dtype=np.float64)
    return [o for o in out if o is not None]


def task_entropies(
    tasks: list[tuple[FloatArray, FloatArray | None]], alpha: float, beta: float
) -> list[Entropy]:
    """:func:`task_entropy` of several tasks (fractions, previous smoothed) at once: every
    element-wise step (smoothing, normalising, one log) runs once over all tasks' entries and
    only the sums are per task (:func:`.stats.py_tree`, the tree of ``fixed_sum_scalar``);
    element-wise steps are the same operations either way, so the same bits."""
    sizes = [f.size for f, _ in tasks]
    live = [i for i, n in enumerate(sizes) if n]
    out: list[Entropy] = [Entropy(0.0, np.zeros(0)) for _ in tasks]
    if not live:
        return out
    frac = np.concatenate([np.asarray(tasks[i][0], dtype=np.float64) for i in live])
    prev_parts = [tasks[i][1] for i in live]
    prev_all = np.concatenate(
        [tasks[i][0] if p is None else p for i, p in zip(live, prev_parts, strict=True)]
    )
    prev_all = np.where(np.isnan(prev_all), frac, prev_all)
    smooth = ema(alpha, frac, prev_all)
    bounds = [0]
    for i in live:
        bounds.append(bounds[-1] + sizes[i])
    smooth_list: list[float] = smooth.tolist()
    totals = [py_tree(smooth_list[a:b]) for a, b in itertools.pairwise(bounds)]
    norm = smooth / np.repeat(totals, [sizes[i] for i in live])
    squares: list[float] = (norm * norm).tolist()
    positive = norm > 0.0
    logs = detmath.log(np.where(positive, norm, 1.0))
    terms: list[float] = np.where(positive, norm * logs, 0.0).tolist()
    for i, a, b in zip(live, bounds, bounds[1:], strict=False):
        n = sizes[i]
        part = norm[a:b]
        if n == 1:
            out[i] = Entropy(SINGLE_PARTICIPANT_ENTROPY, part)
            continue
        n_eff = 1.0 / py_tree(squares[a:b])
        h = -py_tree(terms[a:b])
        h = h * detmath.power_scalar(n_eff / n, beta)
        out[i] = Entropy(float(h), part)
    return out
