"""Seeded synthetic epochs: inputs for the golden hashes, property tests and benchmarks.

Pure (numpy's seeded generator, no global randomness): the same seed gives the same epoch on
every machine. ``run_epoch`` drives every entry point once, the way the chain will.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from alloranet.synthesis.api import (
    NetworkInferences,
    NetworkLosses,
    ReputerReports,
    Rewards,
    RewardState,
    Scores,
    WorkerRound,
    compute_network_inferences,
    compute_network_losses,
    compute_regret_update,
    compute_rewards,
    compute_scores,
)
from alloranet.synthesis.inference import InferenceRegrets
from alloranet.synthesis.losses import LossReports
from alloranet.synthesis.params import ModuleParams, TopicParams
from alloranet.synthesis.regrets import RegretState


@dataclass(frozen=True)
class Scenario:
    """One epoch's inputs."""

    round: WorkerRound
    regrets: RegretState
    latest: NetworkLosses | None
    reports: ReputerReports
    coefficients: dict[str, float]


def _names(rng: np.random.Generator, prefix: str, n: int) -> tuple[str, ...]:
    raw = rng.integers(0, 2**62, n, dtype=np.int64)
    return tuple(sorted({f"{prefix}{int(v):016x}" for v in raw}))


def make_scenario(
    seed: int, n_inferers: int, n_forecasters: int, n_reputers: int = 5, elements: int = 12
) -> Scenario:
    """A random epoch: forecasts of ``elements`` inferers each, regrets for every family (a few
    missing), a latest loss bundle and full reputer reports."""
    rng = np.random.default_rng(seed)
    inf = _names(rng, "i", n_inferers)
    fc = _names(rng, "f", n_forecasters)
    rep = _names(rng, "r", n_reputers)
    n, k, m = len(inf), len(fc), len(rep)
    inferences = rng.normal(0.0, 1.0, n)
    forecasts = np.full((k, n), np.nan)
    for r in range(k):
        cols = rng.choice(n, size=min(elements, n), replace=False)
        forecasts[r, cols] = rng.normal(-2.0, 0.7, cols.size)

    def fam(shape: tuple[int, ...]) -> np.ndarray:
        a = rng.normal(-0.5, 0.6, shape)
        a[rng.random(shape) < 0.02] = np.nan
        return a

    regrets = RegretState(
        inf,
        fc,
        InferenceRegrets(
            inferer=fam((n,)),
            forecaster=fam((k,)),
            naive=fam((n,)),
            oneout_inferer_inferer=fam((n, n)),
            oneout_inferer_forecaster=fam((n, k)),
            oneout_forecaster_inferer=fam((k, n)),
            oneout_forecaster_forecaster=fam((k, k)),
            onein_inferer=fam((k, n)),
            onein_self=fam((k,)),
        ),
        initial_regret=-0.3,
    )
    base = rng.normal(-2.5, 0.5)

    def losses(shape: tuple[int, ...]) -> np.ndarray:
        return base + rng.normal(0.0, 0.4, shape)

    latest = None
    rounds = WorkerRound(inf, inferences, fc, forecasts)
    reports = ReputerReports(
        rep,
        inf,
        fc,
        LossReports(
            stakes=rng.uniform(1e4, 1e6, m),
            combined=losses((m,)),
            naive=losses((m,)),
            inferer=losses((m, n)),
            forecaster=losses((m, k)),
            oneout_inferer=losses((m, n)),
            oneout_forecaster=losses((m, k)),
            onein=losses((m, k)),
            oneout_inferer_forecaster=losses((m, k, n)),
        ),
    )
    latest = compute_network_losses(reports)
    coeff = {a: float(v) for a, v in zip(rep, rng.uniform(0.3, 1.0, m), strict=True)}
    return Scenario(rounds, regrets, latest, reports, coeff)


@dataclass(frozen=True)
class EpochOutputs:
    inferences: NetworkInferences
    losses: NetworkLosses
    regrets: RegretState
    scores: Scores
    rewards: Rewards


def run_epoch(
    s: Scenario, topic: TopicParams | None = None, module: ModuleParams | None = None
) -> EpochOutputs:
    """Every entry point once: inferences, losses, regret update, scores, rewards."""
    t = topic or TopicParams()
    mp = module or ModuleParams()
    net = compute_network_inferences(t, mp, s.round, s.regrets, s.latest)
    losses = compute_network_losses(s.reports)
    experienced = frozenset(s.round.inferers[::2])
    regrets = compute_regret_update(
        t, mp, s.regrets, losses, experienced, frozenset(s.round.forecasters[::2])
    )
    scores = compute_scores(t, mp, losses, s.reports, s.coefficients)
    rewards = compute_rewards(
        t,
        mp,
        10**21,
        scores,
        losses,
        s.reports.reports.stakes,
        scores.inferer,
        scores.forecaster,
        RewardState({}, {}, {}, 0.0),
    )
    return EpochOutputs(net, losses, regrets, scores, rewards)
