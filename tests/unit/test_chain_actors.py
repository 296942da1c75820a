"""workers and reputers: registration, stake, delegation, removal delay, payload windows
(first and last block in, one before and one after out) and the epoch hook."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alloranet.chain.app import get_balance, validate_invariants
from alloranet.chain.epoch_hook import EpochContext, EpochOutcome
from alloranet.chain.errors import (
    InvalidMessageError,
    InvariantError,
    NotFoundError,
    StakeError,
    UnauthorizedError,
    WindowError,
)
from alloranet.chain.kv import Overlay
from alloranet.chain.ledger import TOPIC_STAKE_POOL, Ledger
from alloranet.chain.msgs import (
    MsgAddStake,
    MsgDelegateStake,
    MsgInsertReputerPayload,
    MsgInsertWorkerPayload,
    MsgRegister,
    MsgRemoveStake,
    ValueBundle,
)
from alloranet.chain.params import EmissionsParams
from alloranet.chain.testkit import TestChain, topic_msg

WORKERS = ("w1", "w2", "w3", "w4", "w5")
REPUTERS = ("r1", "r2", "r3", "r4", "r5")
# topic 1: epoch 12, ground-truth lag 12, worker window 6. Created at h1, activated at h2,
# first epoch end h14 -> worker window 15..20, reputer window 26..38, closes at end of 38.
NONCE = 14


class Recorder:
    """An EpochProcessor that records its input and pays a fixed payout."""

    def __init__(self, payout: int = 0) -> None:
        self.calls: list[EpochContext] = []
        self.payout = payout

    def process_reputer_nonce_close(self, ctx: EpochContext) -> EpochOutcome:
        self.calls.append(ctx)
        payouts = ()
        if self.payout and ctx.reports:
            payouts = ((ctx.reports[0].reputer, min(self.payout, ctx.reward_budget)),)
        return EpochOutcome(synthesis_state=(("regret/inferer", b"packed"),), payouts=payouts)


def setup(processor: Recorder | None = None, **params: int) -> TestChain:
    chain = TestChain.create(
        accounts=("alice", "bob", *WORKERS, *REPUTERS),
        emissions=EmissionsParams(**params) if params else None,
    )
    if processor is not None:
        chain.processor = processor
    chain.block([chain.tx("alice", topic_msg())])
    txs = [chain.tx(w, MsgRegister(1, False)) for w in WORKERS]
    txs += [chain.tx(r, MsgRegister(1, True)) for r in REPUTERS]
    txs += [chain.tx(r, MsgAddStake(1, 20_000)) for r in REPUTERS[:4]]
    results = chain.block(txs)
    assert all(r.code == 0 for r in results.tx_results), results.tx_results
    return chain


def payload(chain: TestChain, label: str, nonce: int = NONCE, value: float = 1.5, fc=()) -> bytes:  # type: ignore[no-untyped-def]
    return chain.tx(label, MsgInsertWorkerPayload(1, nonce, value, tuple(fc)))


def bundle(chain: TestChain) -> ValueBundle:
    inferers = tuple(sorted((chain.address(w), -1.0) for w in ("w1", "w2")))
    return ValueBundle(-1.0, -0.5, inferers, (), (), (), (), ())


def rep(chain: TestChain, label: str, nonce: int = NONCE) -> bytes:
    return chain.tx(label, MsgInsertReputerPayload(1, nonce, bundle(chain)))


def _close_with(chain: TestChain, processor: object) -> None:
    """Up to h37 with one worker and one reputer (r1) payload; the caller's next block (h38)
    closes the reputer nonce."""
    chain.processor = processor  # type: ignore[assignment]
    chain.advance_to(15)
    chain.block([payload(chain, "w1")])
    chain.advance_to(26)
    chain.block([rep(chain, "r1")])
    chain.advance_to(37)


def codes(result) -> list[int]:  # type: ignore[no-untyped-def]
    return [r.code for r in result.tx_results]


def test_register_charges_fee_and_rejects_twice_and_unknown_topic() -> None:
    chain = setup()
    lg = Ledger(Overlay(chain.state))
    assert lg.is_registered(1, chain.address("w1"), False)
    assert lg.is_registered(1, chain.address("r1"), True)
    assert lg.get_fee_revenue(1) == 75_000 + 10 * 200
    res = chain.block(
        [chain.tx("w1", MsgRegister(1, False)), chain.tx("bob", MsgRegister(9, True))]
    )
    assert codes(res) == [InvalidMessageError.code, NotFoundError.code]
    assert "already a worker" in res.tx_results[0].log


def test_stake_rules() -> None:
    chain = setup()
    res = chain.block(
        [
            chain.tx("w1", MsgAddStake(1, 5)),  # not a reputer
            chain.tx("bob", MsgDelegateStake(1, chain.address("w1"), 5)),  # w1 not a reputer
            chain.tx("bob", MsgDelegateStake(1, chain.address("r5"), 7_000)),
            chain.tx("r5", MsgAddStake(1, 3_000)),
        ]
    )
    assert codes(res) == [UnauthorizedError.code, UnauthorizedError.code, 0, 0]
    lg = Ledger(Overlay(chain.state))
    assert lg.stake_authority(1, chain.address("r5")) == 10_000
    assert lg.get_topic_stake(1) == 4 * 20_000 + 10_000
    assert get_balance(chain.state, TOPIC_STAKE_POOL) == 90_000
    validate_invariants(chain.state)


def test_remove_stake_waits_for_delay() -> None:
    chain = setup(remove_stake_delay_window=5)
    r1 = chain.address("r1")
    before = get_balance(chain.state, r1)
    res = chain.block(
        [
            chain.tx("r1", MsgRemoveStake(1, 15_000)),  # h3 -> paid at end of h8
            chain.tx("r1", MsgRemoveStake(1, 5_001)),  # only 5,000 left removable
        ]
    )
    assert codes(res) == [0, StakeError.code] and "removable" in res.tx_results[1].log
    chain.advance_to(7)
    assert get_balance(chain.state, r1) == before
    assert Ledger(Overlay(chain.state)).get_reputer_stake(1, r1) == 20_000
    chain.block()  # h8
    assert get_balance(chain.state, r1) == before + 15_000
    assert Ledger(Overlay(chain.state)).get_reputer_stake(1, r1) == 5_000
    validate_invariants(chain.state)


def test_worker_window_boundaries() -> None:
    chain = setup()
    chain.advance_to(13)
    res = chain.block([payload(chain, "w1")])  # h14: nonce opens only at the end of 14
    assert codes(res) == [WindowError.code] and "no open worker window" in res.tx_results[0].log
    assert codes(chain.block([payload(chain, "w1")])) == [0]  # h15 first in
    chain.advance_to(19)
    assert codes(chain.block([payload(chain, "w2")])) == [0]  # h20 last in
    assert codes(chain.block([payload(chain, "w3")])) == [WindowError.code]  # h21 out


def test_worker_payload_rules() -> None:
    chain = setup(max_elements_per_forecast=2, max_top_inferers_to_reward=3)
    chain.advance_to(14)
    w = {label: chain.address(label) for label in WORKERS}
    fc_ok = tuple(sorted(((w["w2"], 0.1), (w["w3"], 0.2))))
    fc_long = tuple(sorted((w[x], 0.1) for x in ("w2", "w3", "w4")))
    res = chain.block(
        [
            payload(chain, "w1", fc=fc_ok),
            payload(chain, "w1"),  # a second payload for the same nonce
            payload(chain, "w2", fc=fc_long),  # too many forecast elements: cut, not refused
            payload(chain, "w3", fc=((chain.address("bob"), 0.1),)),  # bob is not a worker
            chain.tx("bob", MsgInsertWorkerPayload(1, NONCE, 1.0, ())),  # not registered
            payload(chain, "w4", nonce=13),  # no such nonce
            payload(chain, "w3"),
            payload(chain, "w4"),  # the inferer set (capacity 3) is full
        ]
    )
    assert codes(res) == [
        0,
        WindowError.code,
        0,
        InvalidMessageError.code,
        UnauthorizedError.code,
        WindowError.code,
        0,
        WindowError.code,
    ]
    assert "already submitted" in res.tx_results[1].log
    assert "full" in res.tx_results[7].log
    stored = Ledger(Overlay(chain.state)).get_payload(False, 1, NONCE, w["w2"])
    assert len(stored[1]) == 2 and set(stored[1]) < set(fc_long)


def test_reputer_window_boundaries() -> None:
    chain = setup()
    chain.advance_to(15)
    chain.block([payload(chain, "w1")])  # h16
    chain.advance_to(24)
    assert codes(chain.block([rep(chain, "r1")])) == [WindowError.code]  # h25: one before
    assert codes(chain.block([rep(chain, "r1")])) == [0]  # h26: first in
    chain.advance_to(37)
    assert codes(chain.block([rep(chain, "r2")])) == [0]  # h38: last in
    assert codes(chain.block([rep(chain, "r3")])) == [WindowError.code]  # h39: closed


def test_reputer_payload_rules() -> None:
    chain = setup(max_top_reputers_to_reward=2)
    chain.advance_to(15)
    chain.block([payload(chain, "w1")])
    chain.advance_to(25)
    res = chain.block(
        [
            rep(chain, "r1"),
            rep(chain, "r1"),  # duplicate
            rep(chain, "r5"),  # registered, no stake
            chain.tx("w1", MsgInsertReputerPayload(1, NONCE, bundle(chain))),  # not a reputer
            rep(chain, "r2"),
            rep(chain, "r3"),  # reputer set (capacity 2) full
        ]
    )
    assert codes(res) == [
        0,
        WindowError.code,
        StakeError.code,
        UnauthorizedError.code,
        0,
        WindowError.code,
    ]
    assert "below the required minimum" in res.tx_results[2].log


def test_hook_receives_sorted_context_and_pays() -> None:
    recorder = Recorder(payout=1_000)
    chain = setup(recorder)
    chain.advance_to(14)
    w = {label: chain.address(label) for label in WORKERS}
    fc = tuple(sorted(((w["w1"], 0.3), (w["w5"], 0.4))))  # w5 never infers: element dropped
    chain.block(
        [
            payload(chain, "w2", value=2.0),
            payload(chain, "w1", value=1.0, fc=fc),
            chain.tx("w3", MsgInsertWorkerPayload(1, NONCE, None, ((w["w5"], 0.1),))),
        ]
    )
    chain.advance_to(26)
    chain.block([rep(chain, "r2"), rep(chain, "r1")])
    chain.advance_to(37)
    assert recorder.calls == []
    r1 = chain.address("r1")
    reputers = sorted([r1, chain.address("r2")])
    before = {a: get_balance(chain.state, a) for a in reputers}
    res = chain.block()  # h38: reputer nonce closes at the end of its window
    assert ("reputer_nonce_closed", f"1:{NONCE}") in res.events
    (ctx,) = recorder.calls
    assert ctx.topic_id == 1 and ctx.nonce == NONCE and ctx.block_height == 38
    assert [i.worker for i in ctx.inferences] == sorted([w["w1"], w["w2"]])
    assert {i.worker: i.value for i in ctx.inferences} == {w["w1"]: 1.0, w["w2"]: 2.0}
    assert [(f.forecaster, f.elements) for f in ctx.forecasts] == [(w["w1"], ((w["w1"], 0.3),))]
    assert [r.reputer for r in ctx.reports] == reputers
    assert all(r.stake == 20_000 for r in ctx.reports)
    assert ctx.reward_budget > 0 and ctx.topic.p_norm == 3.0
    assert get_balance(chain.state, reputers[0]) == before[reputers[0]] + 1_000
    assert get_balance(chain.state, reputers[1]) == before[reputers[1]]
    lg = Ledger(Overlay(chain.state))
    assert lg.get_synthesis_state(1, "regret/inferer") == b"packed"
    assert lg.get_payload(False, 1, NONCE, w["w1"]) is None  # payloads cleaned up
    validate_invariants(chain.state)


def test_outcome_breaking_the_rules_is_refused() -> None:
    class Greedy:
        def process_reputer_nonce_close(self, ctx: EpochContext) -> EpochOutcome:
            return EpochOutcome(payouts=((ctx.reports[0].reputer, ctx.reward_budget + 1),))

    chain = setup()
    _close_with(chain, Greedy())
    with pytest.raises(InvariantError, match="budget"):
        chain.block()


@pytest.mark.parametrize(
    "msg",
    [
        MsgRegister(9, False),
        MsgAddStake(9, 1),
        MsgRemoveStake(9, 1),
        MsgInsertWorkerPayload(9, 14, 1.0, ()),
    ],
    ids=["register", "add_stake", "remove_stake", "worker_payload"],
)
def test_unknown_topic_is_not_found(msg: object) -> None:
    chain = setup()
    res = chain.block([chain.tx("w1", msg)])  # type: ignore[arg-type]
    assert codes(res) == [NotFoundError.code] and "topic 9 does not exist" in res.tx_results[0].log


def test_unknown_topic_for_delegation_and_reputer_payload() -> None:
    chain = setup()
    res = chain.block(
        [
            chain.tx("bob", MsgDelegateStake(9, chain.address("r1"), 1)),
            chain.tx("r1", MsgInsertReputerPayload(9, NONCE, bundle(chain))),
        ]
    )
    assert codes(res) == [NotFoundError.code, NotFoundError.code]


def test_unsorted_bundle_is_malformed() -> None:
    from alloranet.chain.errors import MalformedTxError
    from alloranet.chain.tx import decode_tx
    from alloranet.codec import encode

    chain = setup()
    pairs = sorted((chain.address(w), -1.0) for w in ("w1", "w2"))
    wire = bundle(chain).to_wire()
    bad = (*wire[:2], tuple(reversed(pairs)), *wire[3:])
    body = (chain.genesis.chain_id, chain.signers["r1"].public_key, 0, 0, ((12, 1, NONCE, bad),))
    from alloranet.chain.tx import TX_SIGN_TAG

    sig = chain.signers["r1"].sign(TX_SIGN_TAG + encode(body))
    with pytest.raises(MalformedTxError, match="sorted"):
        decode_tx(encode((body, sig)))


def test_remove_delegated_stake_waits_for_delay() -> None:
    from alloranet.chain.msgs import MsgRemoveDelegateStake

    chain = setup(remove_stake_delay_window=4)
    r1 = chain.address("r1")
    bob = chain.address("bob")
    res = chain.block([chain.tx("bob", MsgDelegateStake(1, r1, 9_000))])  # h3
    assert codes(res) == [0]
    before = get_balance(chain.state, bob)
    res = chain.block(
        [
            chain.tx("bob", MsgRemoveDelegateStake(1, r1, 6_000)),  # h4 -> paid at end of h8
            chain.tx("bob", MsgRemoveDelegateStake(1, r1, 3_001)),  # only 3,000 removable
            chain.tx("alice", MsgRemoveDelegateStake(1, r1, 1)),  # alice delegated nothing
            chain.tx("bob", MsgRemoveDelegateStake(9, r1, 1)),
        ]
    )
    assert codes(res) == [0, StakeError.code, StakeError.code, NotFoundError.code]
    chain.advance_to(7)
    lg = Ledger(Overlay(chain.state))
    assert lg.stake_authority(1, r1) == 29_000 and get_balance(chain.state, bob) == before
    chain.block()  # h8
    lg = Ledger(Overlay(chain.state))
    assert lg.stake_authority(1, r1) == 23_000
    assert lg.get_topic_stake(1) == 4 * 20_000 + 3_000
    assert get_balance(chain.state, bob) == before + 6_000
    validate_invariants(chain.state)


def test_over_long_forecast_keeps_the_best_scored_inferers() -> None:
    from alloranet.chain.epoch_hook import INFERER_SCORE_EMA
    from alloranet.codec import encode

    chain = setup(max_elements_per_forecast=2)
    w = {label: chain.address(label) for label in WORKERS}
    # scores as the epoch hook stores them: w4 best, then w2; w3 and w5 unscored (0)
    kv = Overlay(chain.state)
    emas = tuple(sorted(((w["w2"], 0.5), (w["w4"], 0.9), (w["w5"], -0.2))))
    Ledger(kv).set_synthesis_state(1, INFERER_SCORE_EMA, encode(emas))
    chain.state = chain.state.apply(kv.changes())
    chain.advance_to(14)
    fc = tuple(sorted((w[x], 0.1 * i) for i, x in enumerate(("w2", "w3", "w4", "w5"))))
    assert codes(chain.block([payload(chain, "w1", fc=fc)])) == [0]
    stored = Ledger(Overlay(chain.state)).get_payload(False, 1, NONCE, w["w1"])
    assert stored[1] == tuple(sorted(e for e in fc if e[0] in (w["w2"], w["w4"])))


@settings(max_examples=60, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from([f"a{i}" for i in range(10)]),
        st.sampled_from([-1.0, 0.0, 0.5, 2.0]),
        min_size=1,
    ),
    st.dictionaries(st.sampled_from([f"a{i}" for i in range(10)]), st.floats(-5, 5)),
    st.integers(1, 10**9),
    st.integers(1, 12),
)
def test_top_forecast_ranks_by_score_with_height_seeded_ties(
    elements: dict[str, float], scores: dict[str, float], height: int, limit: int
) -> None:
    from alloranet.chain.actors import compute_top_forecast

    forecast = tuple(sorted(elements.items()))
    kept = compute_top_forecast(forecast, scores, height, limit)
    assert len(kept) == min(limit, len(forecast))
    assert list(kept) == sorted(kept) and set(kept) <= set(forecast)
    dropped = set(forecast) - set(kept)
    if kept and dropped:
        worst_kept = min(scores.get(a, 0.0) for a, _ in kept)
        assert all(scores.get(a, 0.0) <= worst_kept for a, _ in dropped)
    assert compute_top_forecast(forecast, scores, height, limit) == kept  # deterministic


def test_unscored_ties_are_drawn_by_block_height() -> None:
    from alloranet.chain.actors import compute_top_forecast

    forecast = tuple((f"a{i}", 0.0) for i in range(10))
    draws = {compute_top_forecast(forecast, {}, height, 3) for height in range(1, 21)}
    assert len(draws) > 1  # the tie order changes with the height...
    assert compute_top_forecast(forecast, {}, 7, 3) in draws  # ...and repeats for the same one


def test_epoch_record_is_kept_in_state_newest_per_topic() -> None:
    from alloranet.chain.history import get_epoch_record, get_recorded_nonces

    class Recording(Recorder):
        def process_reputer_nonce_close(self, ctx: EpochContext) -> EpochOutcome:
            super().process_reputer_nonce_close(ctx)
            return EpochOutcome(record=f"record {ctx.nonce}".encode())

    chain = setup(Recording())
    chain.advance_to(15)
    chain.block([payload(chain, "w1")])
    chain.advance_to(38)
    assert get_epoch_record(chain.state, 1, NONCE) == f"record {NONCE}".encode()
    assert get_recorded_nonces(chain.state, 1) == (NONCE,)
    assert get_epoch_record(chain.state, 1, NONCE + 12) is None
    # the ledger keeps only the newest `keep` records of a topic
    kv = Overlay(chain.state)
    for nonce in (50, 62, 74):
        Ledger(kv).add_epoch_record(1, nonce, b"r", keep=2)
    assert Ledger(kv).recorded_nonces(1) == (62, 74)
    assert Ledger(kv).get_epoch_record(1, NONCE) is None


class ReputerPayer:
    """Pays the first reporting reputer ``reputer`` as a reputer and ``extra`` more as a
    worker (one address can be both)."""

    def __init__(self, reputer: int, extra: int = 0) -> None:
        self.reputer, self.extra = reputer, extra

    def process_reputer_nonce_close(self, ctx: EpochContext) -> EpochOutcome:
        address = ctx.reports[0].reputer
        return EpochOutcome(
            payouts=((address, self.reputer + self.extra),),
            reputer_total=self.reputer,
            reputer_payouts=((address, self.reputer),),
        )


def test_reputer_reward_is_split_with_delegators_and_the_rest_staked() -> None:
    """spec 5.4: delegators get floor(W * delegated / S), each by its delegation; the reputer's
    part goes to its stake (not its account); a worker part of the same address is paid."""
    chain = setup()
    r1 = chain.address("r1")
    chain.block(
        [
            chain.tx("bob", MsgDelegateStake(1, r1, 10_000)),
            chain.tx("alice", MsgDelegateStake(1, r1, 5_000)),
        ]
    )  # S = 20,000 own + 15,000 delegated
    lg = Ledger(Overlay(chain.state))
    assert lg.reputer_delegators(1, r1) == tuple(
        sorted([chain.address("alice"), chain.address("bob")])
    )
    _close_with(chain, ReputerPayer(7_001, extra=50))
    before = {a: get_balance(chain.state, chain.address(a)) for a in ("alice", "bob", "r1")}
    pool = get_balance(chain.state, TOPIC_STAKE_POOL)
    chain.block()
    # to delegators: 7,001 * 15,000 // 35,000 = 3,000 -> bob 2,000, alice 1,000
    after = {a: get_balance(chain.state, chain.address(a)) for a in ("alice", "bob", "r1")}
    assert after["bob"] - before["bob"] == 2_000
    assert after["alice"] - before["alice"] == 1_000
    assert after["r1"] - before["r1"] == 50  # the worker part only
    lg = Ledger(Overlay(chain.state))
    assert lg.get_reputer_stake(1, r1) == 20_000 + 4_001
    assert get_balance(chain.state, TOPIC_STAKE_POOL) == pool + 4_001
    assert lg.get_topic_stake(1) == 4 * 20_000 + 15_000 + 4_001
    validate_invariants(chain.state)


def test_undelegated_reputer_keeps_its_whole_reward_as_stake() -> None:
    chain = setup()
    r1 = chain.address("r1")
    _close_with(chain, ReputerPayer(900))
    before = get_balance(chain.state, r1)
    chain.block()
    assert get_balance(chain.state, r1) == before
    assert Ledger(Overlay(chain.state)).get_reputer_stake(1, r1) == 20_900
    validate_invariants(chain.state)


def test_delegators_list_follows_delegation_and_its_removal() -> None:
    from alloranet.chain.msgs import MsgRemoveDelegateStake

    chain = setup(remove_stake_delay_window=3)
    r1 = chain.address("r1")
    chain.block([chain.tx("bob", MsgDelegateStake(1, r1, 100))])
    assert Ledger(Overlay(chain.state)).reputer_delegators(1, r1) == (chain.address("bob"),)
    chain.block([chain.tx("bob", MsgRemoveDelegateStake(1, r1, 100))])  # h4, paid at h7
    chain.advance_to(8)
    assert Ledger(Overlay(chain.state)).reputer_delegators(1, r1) == ()


@pytest.mark.parametrize(
    "outcome",
    [
        EpochOutcome(payouts=(("x", 5),), reputer_payouts=(("x", 5),)),  # not a reporter
        "over",  # more as a reputer than its payout
    ],
)
def test_reputer_payouts_breaking_the_rules_are_refused(outcome: object) -> None:
    class Bad:
        def process_reputer_nonce_close(self, ctx: EpochContext) -> EpochOutcome:
            if isinstance(outcome, EpochOutcome):
                return outcome
            address = ctx.reports[0].reputer
            return EpochOutcome(payouts=((address, 5),), reputer_payouts=((address, 6),))

    chain = setup()
    _close_with(chain, Bad())
    with pytest.raises(InvariantError, match="reputer payout"):
        chain.block()
