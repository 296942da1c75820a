"""topics: create (every rule of spec 5.6), fund, fee revenue, weight, activation, drip."""

from __future__ import annotations

import pytest

from alloranet.chain.app import get_balance, validate_invariants
from alloranet.chain.errors import InvalidMessageError, NotFoundError
from alloranet.chain.kv import Overlay
from alloranet.chain.ledger import ECOSYSTEM, Ledger
from alloranet.chain.msgs import MsgAddStake, MsgFundTopic, MsgRegister
from alloranet.chain.params import EmissionsParams
from alloranet.chain.testkit import TestChain, topic_msg
from alloranet.chain.topics import compute_drip, compute_target_weight
from alloranet.codec import decode, encode
from alloranet.errors import DecodeError


def ledger(chain: TestChain) -> Ledger:
    return Ledger(Overlay(chain.state))


def test_create_topic_charges_fee_and_credits_revenue() -> None:
    chain = TestChain.create()
    eco = get_balance(chain.state, ECOSYSTEM)
    res = chain.block([chain.tx("alice", topic_msg())])
    assert res.tx_results[0].code == 0 and res.tx_results[0].data == (1,)
    topic = ledger(chain).get_topic(1)
    assert topic is not None and topic.creator == chain.address("alice") and not topic.active
    assert ledger(chain).get_fee_revenue(1) == 75_000
    assert get_balance(chain.state, ECOSYSTEM) == eco + 75_000
    res = chain.block([chain.tx("bob", topic_msg())])
    assert res.tx_results[0].data == (2,)
    validate_invariants(chain.state)


@pytest.mark.parametrize(
    ("fields", "needle"),
    [
        ({"p_norm": 2.4}, "p_norm"),
        ({"p_norm": 4.6}, "p_norm"),
        ({"alpha_regret": 0.0}, "alpha_regret"),
        ({"alpha_regret": 1.01}, "alpha_regret"),
        ({"epsilon": 0.0}, "epsilon"),
        ({"merit_sortition_alpha": 1.0}, "merit_sortition_alpha"),
        ({"merit_sortition_alpha": -0.1}, "merit_sortition_alpha"),
        ({"active_inferer_quantile": 1.0}, "active_inferer_quantile"),
        ({"active_forecaster_quantile": -0.5}, "active_forecaster_quantile"),
        ({"active_reputer_quantile": 1.5}, "active_reputer_quantile"),
        ({"ground_truth_lag": 11}, "ground_truth_lag"),
        ({"ground_truth_lag": 1201}, "ground_truth_lag"),
        ({"window": 13}, "worker_submission_window"),
        ({"loss_method": ""}, "loss_method"),
    ],
)
def test_create_topic_rule_violations(fields: dict[str, object], needle: str) -> None:
    msg = topic_msg(**fields)  # type: ignore[arg-type]
    with pytest.raises(InvalidMessageError, match=needle):
        msg.validate_basic()
    # the same message on the wire is refused at decode time
    with pytest.raises((InvalidMessageError, DecodeError)):
        type(msg).from_fields(decode(encode(msg.to_wire()))[1:])


def test_boundary_values_accepted() -> None:
    for fields in (
        {"p_norm": 2.5},
        {"p_norm": 4.5},
        {"alpha_regret": 1.0},
        {"ground_truth_lag": 12},
        {"ground_truth_lag": 1200},
        {"window": 12},
        {"merit_sortition_alpha": 0.0},
    ):
        topic_msg(**fields).validate_basic()  # type: ignore[arg-type]


def test_epoch_length_below_minimum_and_unaffordable_fee() -> None:
    chain = TestChain.create(accounts=("alice", "bob", "poor"), balance=10**24)
    res = chain.block([chain.tx("alice", topic_msg(epoch_length=11, ground_truth_lag=11))])
    assert res.tx_results[0].code == InvalidMessageError.code and "minimum" in res.tx_results[0].log
    poor = TestChain.create(accounts=("alice",), balance=74_999)
    res = poor.block([poor.tx("alice", topic_msg())])
    assert res.tx_results[0].code != 0 and "create_topic fee" in res.tx_results[0].log
    assert ledger(poor).get_topic(1) is None


def test_fund_topic_and_unknown_topic() -> None:
    chain = TestChain.create()
    chain.block([chain.tx("alice", topic_msg())])
    res = chain.block(
        [chain.tx("bob", MsgFundTopic(1, 5000)), chain.tx("carol", MsgFundTopic(7, 1))]
    )
    assert res.tx_results[0].code == 0
    assert res.tx_results[1].code == NotFoundError.code and "topic 7" in res.tx_results[1].log
    assert ledger(chain).get_fee_revenue(1) == 80_000


def test_activation_needs_weight_then_nonces_open_each_epoch() -> None:
    chain = TestChain.create()
    chain.block([chain.tx("alice", topic_msg())])  # h1
    assert ledger(chain).active_topics() == ()
    chain.block([chain.tx("dave", MsgRegister(1, True)), chain.tx("dave", MsgAddStake(1, 20_000))])
    assert ledger(chain).active_topics() == (1,)  # weight isqrt(20000*75200//12) >= 100
    chain.advance_to(13)
    res = chain.block()  # h14 = 2 + 12
    assert ("worker_nonce_opened", "1:14") in res.events
    assert ledger(chain).is_nonce_open(False, 1, 14)
    assert ledger(chain).get_weight(1) == compute_target_weight(20_000, 75_200, 12)
    chain.advance_to(25)
    res = chain.block()  # h26
    assert ("worker_nonce_opened", "1:26") in res.events


def test_unfunded_topic_deactivates() -> None:
    chain = TestChain.create(emissions=EmissionsParams(blocks_per_month=200))
    chain.block([chain.tx("alice", topic_msg())])
    chain.block([chain.tx("dave", MsgRegister(1, True)), chain.tx("dave", MsgAddStake(1, 1))])
    assert ledger(chain).active_topics() == ()  # isqrt(1*75200//12)=79 < 100
    chain.block([chain.tx("dave", MsgAddStake(1, 2))])
    assert ledger(chain).active_topics() == (1,)  # isqrt(3*75200//12)=137
    # the fee revenue drips away each epoch until the weight drops below the minimum
    for _ in range(100):
        chain.block()
    topic = ledger(chain).get_topic(1)
    assert topic is not None and not topic.active and ledger(chain).active_topics() == ()


def test_drip_and_weight_arithmetic() -> None:
    assert compute_drip(0, 864_000, 12) == 0
    per_week = 864_000 * 1000 // (4345 * 12)  # milli-epochs per week
    assert compute_drip(10**9, 864_000, 12) == 10**9 - 10**9 * 1000 // per_week
    assert compute_drip(10**9, 864_000, 10**6) == 0  # under one epoch per week
    assert compute_target_weight(0, 10, 1) == 0
    assert compute_target_weight(100, 100, 1) == 100


def test_max_active_topics_per_block_prefers_heavier() -> None:
    chain = TestChain.create()
    chain.block([chain.tx("alice", topic_msg()), chain.tx("bob", topic_msg())])
    chain.block(
        [
            chain.tx("dave", MsgRegister(1, True)),
            chain.tx("dave", MsgAddStake(1, 20_000)),
            chain.tx("carol", MsgRegister(2, True)),
            chain.tx("carol", MsgAddStake(2, 90_000)),
        ]
    )
    chain.advance_to(13)
    res = chain.block()
    opened = [e for e in res.events if e[0] == "worker_nonce_opened"]
    assert opened == [("worker_nonce_opened", "2:14")]  # MaxActiveTopicsPerBlock = 1
