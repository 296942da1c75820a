"""Rewards, emissions and the reputer scorers (spec/synthesis.md 4.3, 5, 6)."""

from __future__ import annotations

import numpy as np
import pytest

from alloranet.synthesis import compute_monthly_emission
from alloranet.synthesis.emissions import locked_vesting_fraction
from alloranet.synthesis.errors import SynthesisError
from alloranet.synthesis.rewards import (
    fee_drip,
    split_reputer_reward,
    task_split,
    topic_rewards,
    topic_target_weight,
    topic_weight,
)
from alloranet.synthesis.scenario import make_scenario
from alloranet.synthesis.scores import consensus_scores, reputer_scores, reputer_vectors


def test_gram_scorer_matches_direct_consensus() -> None:
    s = make_scenario(3, 8, 3)
    x = reputer_vectors(s.reports.reports)
    stakes = s.reports.reports.stakes
    coeff = np.linspace(0.4, 1.0, stakes.size)
    direct = consensus_scores(x, coeff[None], stakes, 0.01, 1e-7)[0]
    fast = reputer_scores(s.reports.reports, coeff, max_iters=1).scores
    assert np.allclose(fast, direct, rtol=1e-12, atol=0.0)


def test_zero_total_reputer_stake_is_a_typed_error() -> None:
    """The gradient loop divides by the total stake: all-zero stakes (every reputer unstaked
    after reporting) are a SynthesisError the epoch hook turns into a skipped epoch, not a
    bare ZeroDivisionError."""
    r = make_scenario(5, 6, 2).reports.reports
    unstaked = type(r)(**{**r.__dict__, "stakes": np.zeros_like(r.stakes)})
    with pytest.raises(SynthesisError, match="total reputer stake"):
        reputer_scores(unstaked, np.ones(r.stakes.size))


def test_reputer_gaps_use_the_lowest_reported_value() -> None:
    s = make_scenario(4, 6, 2)
    r = s.reports.reports
    inferer = r.inferer.copy()
    inferer[0, 2] = np.nan  # reputer 0 did not report inferer 2
    holed = type(r)(**{**r.__dict__, "inferer": inferer})
    out = reputer_scores(holed, np.ones(r.stakes.size))
    assert np.all(np.isfinite(out.scores)) and np.all(out.scores > 0)
    assert np.all((out.coefficients >= 0.0) & (out.coefficients <= 1.0))


def test_task_split_adds_up_and_handles_no_forecasters() -> None:
    sp = task_split(1000.0, 1.2, 0.9, 1.1, 0.3)
    assert sp.inferers + sp.forecasters + sp.reputers == pytest.approx(1000.0, rel=1e-15)
    none = task_split(1000.0, 1.2, 0.0, 1.1, 0.3)
    assert none.forecasters == 0.0
    assert none.inferers == pytest.approx(1000.0 * 1.2 / 2.3, rel=1e-15)


def test_topic_weight_and_rewards() -> None:
    assert topic_target_weight(1e6, 0.0, 10, 0.5, 0.5) == 0.0
    w = topic_target_weight(1e6, 4e4, 10, 0.5, 0.5)
    assert w == pytest.approx(1000.0 * 63.245553203367585, rel=1e-15)
    assert topic_weight(w, None, 0.5) == w
    assert topic_weight(w, 0.0, 0.5) == 0.5 * w
    rewards = topic_rewards(np.array([1.0, 3.0]), np.array([10, 10]), 5.0, 1e9)
    assert list(rewards) == [12.5, 37.5]
    capped = topic_rewards(np.array([1.0, 3.0]), np.array([10, 10]), 5.0, 20.0)
    assert capped.sum() == pytest.approx(20.0)


def test_fee_drip_and_delegator_split_are_integers() -> None:
    c = 10**20
    left = fee_drip(c, 720, 864_000)
    assert isinstance(left, int) and 0 < left < c
    assert fee_drip(0, 720, 864_000) == 0
    keep, deleg = split_reputer_reward(1001, own_stake=3, delegated_stake=1)
    assert (keep, deleg) == (751, 250) and keep + deleg == 1001
    assert split_reputer_reward(10, 5, 0) == (10, 0)


def test_vesting_and_monthly_emission() -> None:
    bpm = 864_000
    assert locked_vesting_fraction(0) == 1.0
    assert locked_vesting_fraction(11 * bpm + 5) == 1.0
    assert locked_vesting_fraction(12 * bpm) == 24 / 36
    assert locked_vesting_fraction(36 * bpm) == 0.0
    em = compute_monthly_emission(bpm + 1, 47 * 10**24, 0, 0, None, 1 / 3)
    assert isinstance(em.monthly, int) and em.monthly > 0
    assert em.capped_rate == min(em.target_rate, em.max_rate)
    assert em.smoothed_rate == em.capped_rate  # first month: no history
    assert em.validators_per_block + em.rewards_per_block == em.per_block
    later = compute_monthly_emission(2 * bpm + 1, 47 * 10**24, 0, 0, 0.05, 1 / 3)
    assert later.smoothed_rate == pytest.approx(0.1 * later.capped_rate + 0.9 * 0.05, rel=1e-15)
