"""Fuzz: correctly signed envelopes carrying arbitrary message fields never crash the chain.

Every outcome must be a result code (or a clean success); no exception escapes execute_block,
and the supply invariants still hold.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from alloranet.chain.app import execute_block, validate_invariants
from alloranet.chain.testkit import TestChain
from alloranet.chain.tx import TX_SIGN_TAG
from alloranet.codec import encode
from alloranet.crypto import PrivateKey

ADDRESSES = [PrivateKey.from_label(x).address for x in ("alice", "bob", "carol")]
scalars = st.one_of(
    st.integers(-(2**70), 2**70),
    st.integers(0, 20),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
    st.sampled_from(ADDRESSES),
    st.binary(max_size=40),
    st.booleans(),
    st.none(),
)
fields = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4).map(tuple), max_leaves=12)
messages = st.tuples(st.integers(0, 16)).flatmap(
    lambda tag: st.lists(fields, max_size=14).map(lambda rest: (*tag, *rest))
)


@settings(max_examples=300, deadline=None)
@given(st.lists(messages, min_size=1, max_size=3), st.integers(0, 3), st.integers(0, 10**20))
def test_arbitrary_messages_never_crash(msgs, sequence, fee) -> None:  # type: ignore[no-untyped-def]
    chain = TestChain.create(accounts=("alice", "bob", "carol"))
    signer = chain.signers["alice"]
    body = (chain.genesis.chain_id, signer.public_key, sequence, fee, tuple(msgs))
    tx = encode((body, signer.sign(TX_SIGN_TAG + encode(body))))
    result = execute_block(chain.state, chain.build([tx]))
    assert len(result.tx_results) == 1
    validate_invariants(result.state)
