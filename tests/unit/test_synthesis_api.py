"""Properties and edge paths of the synthesis API (spec/synthesis.md 2-3.7, DESIGN.md 4)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alloranet import codec
from alloranet.errors import AlloraError
from alloranet.synthesis import (
    ModuleParams,
    NetworkLosses,
    RegretState,
    RewardState,
    SynthesisError,
    TopicParams,
    WorkerRound,
    compute_network_inferences,
    compute_network_losses,
    compute_regret_update,
    to_base_units,
)
from alloranet.synthesis.scenario import make_scenario, run_epoch
from alloranet.synthesis.stats import fixed_sum, quantile, weighted_percentiles
from alloranet.synthesis.weights import pool_weights

TOPIC = TopicParams()
MODULE = ModuleParams()


def _bits(x: object) -> bytes:
    return np.asarray(x, dtype=np.float64).tobytes()


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), data=st.data())
def test_worker_order_does_not_change_a_bit(seed: int, data: st.DataObject) -> None:
    """Workers arriving in any order give the same bits once sorted by address."""
    s = make_scenario(seed, 9, 4, elements=4)
    r = s.round
    infs = {a: float(v) for a, v in zip(r.inferers, r.inferences, strict=True)}
    fcs = {
        k: {
            j: float(r.forecasts[i, c])
            for c, j in enumerate(r.inferers)
            if not np.isnan(r.forecasts[i, c])
        }
        for i, k in enumerate(r.forecasters)
    }
    perm_i = data.draw(st.permutations(list(infs)))
    perm_f = data.draw(st.permutations(list(fcs)))
    shuffled = WorkerRound.from_mappings(
        {a: infs[a] for a in perm_i},
        {k: {j: fcs[k][j] for j in reversed(list(fcs[k]))} for k in perm_f},
    )
    a = compute_network_inferences(TOPIC, MODULE, r, s.regrets, s.latest)
    b = compute_network_inferences(TOPIC, MODULE, shuffled, s.regrets, s.latest)
    assert codec.encode(a.to_wire()) == codec.encode(b.to_wire()), f"seed {seed}"


@settings(max_examples=50, deadline=None)
@given(
    regrets=st.lists(st.floats(-50, 50), min_size=1, max_size=40),
    p=st.floats(2.5, 4.5),
)
def test_pool_weights_are_non_negative_and_someone_gets_weight(
    regrets: list[float], p: float
) -> None:
    r = np.array([regrets])
    w = pool_weights(r, np.ones_like(r, dtype=bool), p, 0.75, 0.01)
    assert np.all(w >= 0.0)
    assert np.max(w) > 0.0  # re-anchoring keeps the top worker above the cut-off
    top = int(np.argmax(r[0]))
    assert w[0, top] == np.max(w)


def test_equal_regrets_give_equal_weights() -> None:
    w = pool_weights(np.full((1, 7), -3.0), np.ones((1, 7), dtype=bool), 3.0, 0.75, 0.01)
    assert np.all(w == w[0, 0]) and w[0, 0] > 0


def test_fixed_sum_order_and_exactness() -> None:
    x = np.array([1e16, 1.0, -1e16, 1.0, 3.0])
    # explicit tree: (1e16 + -1e16) + (1.0 + 1.0), then + 3.0
    assert float(fixed_sum(x)) == 5.0
    rows = np.random.default_rng(3).normal(size=(4, 37))
    assert np.array_equal(fixed_sum(rows), np.array([fixed_sum(r) for r in rows]))
    assert float(fixed_sum(np.zeros(0))) == 0.0


def test_quantile_and_weighted_percentile() -> None:
    assert quantile([1.0, 2.0, 3.0, 4.0, 5.0], 0.25) == 2.0
    assert quantile([4.0], 0.3) == 4.0
    band = weighted_percentiles([1.0, 2.0, 3.0], [1.0, 1.0, 1.0], [0.0, 50.0, 100.0])
    assert list(band) == [1.0, 2.0, 3.0]


def _round(values: list[float], forecasts: np.ndarray | None = None) -> WorkerRound:
    inf = tuple(f"i{j}" for j in range(len(values)))
    k = 0 if forecasts is None else forecasts.shape[0]
    fc = tuple(f"f{j}" for j in range(k))
    mat = np.zeros((0, len(values))) if forecasts is None else forecasts
    return WorkerRound(inf, np.array(values), fc, mat)


def test_degenerate_paths() -> None:
    with pytest.raises(SynthesisError):
        _round([])
        compute_network_inferences(TOPIC, MODULE, _round([]), RegretState.empty(1.0), None)
    one = compute_network_inferences(TOPIC, MODULE, _round([0.7]), RegretState.empty(1.0), None)
    assert one.values.combined == one.values.naive == 0.7
    assert np.all(np.isnan(one.values.oneout_inferers))
    med = compute_network_inferences(
        TOPIC, MODULE, _round([1.0, 5.0, 2.0, 4.0]), RegretState.empty(1.0), None
    )
    assert med.values.combined == 3.0 and med.values.naive == 0.0
    s = make_scenario(5, 6, 3)
    fresh = RegretState.empty(0.0)  # initial regret 0: "all inferers new"
    mean = compute_network_inferences(TOPIC, MODULE, s.round, fresh, s.latest)
    assert mean.values.combined == pytest.approx(float(np.mean(s.round.inferences)), rel=1e-15)
    assert mean.values.naive == mean.values.combined


def test_forecaster_with_no_matching_inferer_is_dropped() -> None:
    r = WorkerRound.from_mappings({"a": 1.0, "b": 2.0}, {"f": {"zzz": -2.0}, "g": {"a": -1.0}})
    assert r.forecasters == ("g",)
    single = WorkerRound.from_mappings({"a": 1.0, "b": 2.0, "c": 3.0}, {"g": {"b": -1.0}})
    s = make_scenario(1, 3, 1)
    state = RegretState(
        single.inferers,
        single.forecasters,
        s.regrets.project(single.inferers, single.forecasters, -0.2),
        0.5,
    )
    net = compute_network_inferences(TOPIC, MODULE, single, state, s.latest)
    assert net.values.forecast_implied[0] == 2.0  # one element -> weight 1 -> that inference


def test_bad_inputs_raise_typed_errors() -> None:
    with pytest.raises(SynthesisError):
        WorkerRound(("b", "a"), np.zeros(2), (), np.zeros((0, 2)))
    with pytest.raises(SynthesisError):
        WorkerRound(("a",), np.array([np.nan]), (), np.zeros((0, 1)))
    with pytest.raises(SynthesisError):
        WorkerRound(("a",), np.zeros(1), ("f",), np.zeros((2, 1)))
    with pytest.raises(Exception, match="p_norm"):
        TopicParams(p_norm=9.0)
    with pytest.raises(Exception, match="finite"):
        to_base_units(float("inf"))
    with pytest.raises(Exception, match=">= 0"):
        to_base_units(-1.0)
    assert to_base_units(12.999) == 12


def test_wire_round_trip_is_bit_exact() -> None:
    s = make_scenario(11, 12, 4)
    out = run_epoch(s)
    blob = codec.encode(out.regrets.to_wire())
    back = RegretState.from_wire(codec.decode(blob))
    assert codec.encode(back.to_wire()) == blob
    lblob = codec.encode(out.losses.to_wire())
    assert codec.encode(NetworkLosses.from_wire(codec.decode(lblob)).to_wire()) == lblob
    rblob = codec.encode(out.rewards.state.to_wire())
    assert codec.encode(RewardState.from_wire(codec.decode(rblob)).to_wire()) == rblob
    with pytest.raises(AlloraError):
        RegretState.from_wire(codec.decode(codec.encode((("b", "a"), (), 0.0, ()))))


def test_regret_update_newcomer_and_carry_over() -> None:
    s = make_scenario(21, 6, 2)
    losses = compute_network_losses(s.reports)
    state = s.regrets
    new = compute_regret_update(TOPIC, MODULE, state, losses)
    assert new.inferers == state.inferers
    # newcomer: first update is alpha * dL + (1 - alpha) * initial regret
    drop = state.inferers[0]
    keep = tuple(a for a in state.inferers if a != drop)
    partial = RegretState(
        keep, state.forecasters, state.project(keep, state.forecasters, np.nan), 0.4
    )
    upd = compute_regret_update(TOPIC, MODULE, partial, losses)
    lv = losses.values
    expected = 0.1 * (lv.combined - lv.inferer[0]) + 0.9 * 0.4
    assert upd.regrets.inferer[0] == pytest.approx(expected, rel=1e-15)
    # an absent worker's stored regret is carried over unchanged
    ghost = RegretState(
        ("zz-ghost",), (), RegretState.empty().project(("zz-ghost",), (), 1.25), 0.4
    )
    merged = compute_regret_update(TOPIC, MODULE, ghost, losses)
    assert merged.inferers[-1] == "zz-ghost"
    assert merged.regrets.inferer[-1] == 1.25


@pytest.mark.parametrize("seed", range(8))
def test_rewards_are_integers_and_never_exceed_the_topic_reward(seed: int) -> None:
    out = run_epoch(make_scenario(seed, 10, 3))
    r = out.rewards
    paid = sum(v for _, v in r.inferer_payouts + r.forecaster_payouts + r.reputer_payouts)
    assert all(isinstance(v, int) and v >= 0 for _, v in r.inferer_payouts)
    assert paid <= 10**21
    assert paid >= 10**21 * (1 - 1e-12)  # only rounding dust stays behind
