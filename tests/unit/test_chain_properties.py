"""Hypothesis properties of whole blocks: supply conservation, determinism, atomicity."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from alloranet.chain.app import (
    compute_total_supply,
    execute_block,
    get_balance,
    validate_invariants,
)
from alloranet.chain.msgs import MsgDelegate, MsgFundTopic, MsgSend, MsgUndelegate
from alloranet.chain.params import StakingParams
from alloranet.chain.testkit import TestChain, topic_msg
from alloranet.types import UALLO_PER_ALLO

LABELS = ("alice", "bob", "carol")
amounts = st.sampled_from([1, 7, 10**18, 10**23, 10**24 + 1, 10**26])
actions = st.lists(
    st.tuples(
        st.sampled_from(LABELS),
        st.sampled_from(LABELS),
        st.integers(0, 5),
        amounts,
        st.sampled_from([0, 3, 10**25]),
    ),
    min_size=1,
    max_size=25,
)


def build(chain: TestChain, action: tuple[str, str, int, int, int]) -> bytes:
    sender, receiver, kind, amount, fee = action
    val = chain.signers["val0"].public_key
    msg = (
        MsgSend(chain.address(receiver), amount),
        MsgDelegate(val, amount),
        MsgUndelegate(val, amount),
        topic_msg(),
        MsgFundTopic(1, amount),
        MsgSend(chain.address(receiver), amount),
    )[kind]
    return chain.tx(sender, msg, fee=fee)


@settings(max_examples=40, deadline=None)
@given(st.lists(actions, min_size=1, max_size=4))
def test_supply_is_conserved_and_execution_deterministic(blocks) -> None:  # type: ignore[no-untyped-def]
    chain = TestChain.create(
        accounts=LABELS,
        balance=10**24,
        staking=StakingParams(unbonding_blocks=2, emission_per_block=100 * UALLO_PER_ALLO),
    )
    twin = TestChain.create(
        accounts=LABELS,
        balance=10**24,
        staking=StakingParams(unbonding_blocks=2, emission_per_block=100 * UALLO_PER_ALLO),
    )
    for block_actions in blocks:
        supply = compute_total_supply(chain.state)
        txs = [build(chain, a) for a in block_actions]
        raw = chain.build(txs)
        result = chain.block(txs)
        again = execute_block(twin.state, raw)
        twin.state = again.state
        assert again.app_hash == result.app_hash and again.changes == result.changes
        # only the block emission changes the supply
        assert compute_total_supply(chain.state) == supply + 100 * UALLO_PER_ALLO
        validate_invariants(chain.state)
        for label in LABELS:
            assert get_balance(chain.state, chain.address(label)) >= 0
