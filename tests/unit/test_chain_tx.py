"""Transactions: canonical encoding, decode limits, ante checks, replay protection, fees."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alloranet.chain.app import check_tx, get_balance, get_next_sequence, validate_invariants
from alloranet.chain.errors import (
    BadSignatureError,
    InsufficientFundsError,
    MalformedTxError,
    SequenceError,
    WrongChainError,
)
from alloranet.chain.ledger import FEE_COLLECTOR
from alloranet.chain.msgs import MsgFundTopic, MsgSend
from alloranet.chain.params import StakingParams
from alloranet.chain.testkit import TestChain
from alloranet.chain.tx import decode_tx, sign_tx
from alloranet.codec import sha256


@pytest.fixture
def chain() -> TestChain:
    return TestChain.create()


def test_roundtrip_and_hash(chain: TestChain) -> None:
    raw = chain.tx("alice", MsgSend(chain.address("bob"), 7), fee=3)
    tx = decode_tx(raw)
    assert tx.body.msgs == (MsgSend(chain.address("bob"), 7),)
    assert tx.body.fee == 3 and tx.body.sequence == 0
    assert tx.hash == sha256(raw)
    assert tx.signer_address == chain.address("alice")
    assert tx.sign_bytes == tx.body.sign_bytes()  # the sliced sign bytes are the body's


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_any_byte_change_is_rejected_or_changes_hash(data: st.DataObject) -> None:
    chain = TestChain.create(accounts=("alice", "bob"))
    raw = chain.tx("alice", MsgSend(chain.address("bob"), 7))
    index = data.draw(st.integers(0, len(raw) - 1))
    byte = data.draw(st.integers(0, 255).filter(lambda b: b != raw[index]))
    mutated = raw[:index] + bytes([byte]) + raw[index + 1 :]
    try:
        tx = decode_tx(mutated)
    except MalformedTxError:
        return
    assert tx.hash != sha256(raw)
    with pytest.raises((BadSignatureError, WrongChainError, SequenceError, InsufficientFundsError)):
        check_tx(chain.state, mutated)


@pytest.mark.parametrize(
    "raw",
    [b"", b"\xc1", b"\x92\x01", b"\x92" + b"\x95" + b"\x00" * 5 + b"\xc4\x40" + b"\x00" * 64],
)
def test_garbage_is_malformed(raw: bytes) -> None:
    with pytest.raises(MalformedTxError):
        decode_tx(raw)


def test_oversized_tx_rejected(chain: TestChain) -> None:
    raw = chain.tx("alice", MsgSend(chain.address("bob"), 1))
    with pytest.raises(MalformedTxError, match="exceeds"):
        decode_tx(raw, max_size=len(raw) - 1)


def test_check_tx_accepts_and_rejects(chain: TestChain) -> None:
    good = chain.tx("alice", MsgSend(chain.address("bob"), 1))
    assert check_tx(chain.state, good).body.sequence == 0
    with pytest.raises(SequenceError):
        check_tx(chain.state, chain.tx("alice", MsgSend(chain.address("bob"), 1), sequence=5))
    assert check_tx(
        chain.state,
        chain.tx("alice", MsgSend(chain.address("bob"), 1), sequence=5),
        expected_sequence=5,
    )
    other = sign_tx(chain.signers["alice"], "other-chain", 0, 0, [MsgSend(chain.address("bob"), 1)])
    with pytest.raises(WrongChainError):
        check_tx(chain.state, other)
    poor = TestChain.create(accounts=("alice", "bob"), balance=10)
    with pytest.raises(InsufficientFundsError):
        check_tx(poor.state, poor.tx("alice", MsgSend(poor.address("bob"), 1), fee=11))


def test_bad_signature_rejected(chain: TestChain) -> None:
    raw = chain.tx("alice", MsgSend(chain.address("bob"), 1))
    tx = decode_tx(raw)
    from alloranet.codec import encode

    forged = encode((tx.body.to_wire(), bytes(64)))
    with pytest.raises(BadSignatureError):
        check_tx(chain.state, forged)
    result = chain.block([forged])
    assert result.tx_results[0].code == BadSignatureError.code
    assert get_next_sequence(chain.state, chain.address("alice")) == 0


def test_min_fee_enforced() -> None:
    chain = TestChain.create(staking=StakingParams(min_tx_fee=5))
    with pytest.raises(InsufficientFundsError, match="minimum"):
        check_tx(chain.state, chain.tx("alice", MsgSend(chain.address("bob"), 1), fee=4))
    result = chain.block([chain.tx("alice", MsgSend(chain.address("bob"), 1), fee=4, sequence=0)])
    assert result.tx_results[0].code == InsufficientFundsError.code


def test_replay_is_rejected(chain: TestChain) -> None:
    raw = chain.tx("alice", MsgSend(chain.address("bob"), 5))
    bob = get_balance(chain.state, chain.address("bob"))
    first = chain.block([raw])
    assert first.tx_results[0].code == 0
    second = chain.block([raw])
    assert second.tx_results[0].code == SequenceError.code
    assert "sequence" in second.tx_results[0].log
    assert get_balance(chain.state, chain.address("bob")) == bob + 5
    # the same tx twice in one block: the second is a replay too
    again = chain.tx("alice", MsgSend(chain.address("bob"), 5))
    result = chain.block([again, again])
    assert [r.code for r in result.tx_results] == [0, SequenceError.code]


def test_fee_charged_even_when_message_fails(chain: TestChain) -> None:
    alice = chain.address("alice")
    before = get_balance(chain.state, alice)
    operator = get_balance(chain.state, chain.address("val0"))
    # second message fails (no topic 99): the first message is rolled back too
    raw = chain.tx("alice", MsgSend(chain.address("bob"), 100), MsgFundTopic(99, 5), fee=17)
    result = chain.block([raw])
    assert result.tx_results[0].code != 0 and "topic 99" in result.tx_results[0].log
    assert get_balance(chain.state, alice) == before - 17
    # the fee was collected and, at end-block, paid to the validator's (only) delegator
    assert get_balance(chain.state, chain.address("val0")) - operator >= 17
    assert get_balance(chain.state, FEE_COLLECTOR) == 0
    assert get_next_sequence(chain.state, alice) == 1
    validate_invariants(chain.state)


def test_failed_ante_changes_nothing(chain: TestChain) -> None:
    stale = chain.tx("alice", MsgSend(chain.address("bob"), 1), fee=1, sequence=3)
    empty = chain.block([])
    chain2 = TestChain.create()
    failing = chain2.block([stale])
    assert failing.tx_results[0].code == SequenceError.code
    # identical to an empty block, except for the block hash the state records
    strip = {b"meta/block_hash"}
    assert {k: v for k, v in failing.changes.items() if k not in strip} == {
        k: v for k, v in empty.changes.items() if k not in strip
    }


def test_peek_signer_reads_the_decoded_signer_or_gives_none() -> None:
    from alloranet.chain.tx import decode_tx, peek_signer, sign_tx
    from alloranet.crypto import PrivateKey

    key = PrivateKey.from_label("peek")
    for chain_id in ("c", "alloranet-local", "x" * 31, "y" * 32, "z" * 64):
        raw = sign_tx(key, chain_id, 5, 1, [MsgSend(key.address, 1)])
        assert peek_signer(raw) == decode_tx(raw).body.signer == key.public_key
    raw = sign_tx(key, "c", 5, 1, [MsgSend(key.address, 1)])
    assert peek_signer(raw[:30]) is None
    assert peek_signer(b"\x93" + raw[1:]) is None
    assert peek_signer(raw[:2] + b"\xc0" + raw[3:]) is None


def test_decode_cache_keeps_the_size_limit_and_never_caches_failures() -> None:
    from alloranet.chain.tx import decode_tx, sign_tx
    from alloranet.crypto import PrivateKey

    key = PrivateKey.from_label("cache")
    raw = sign_tx(key, "c", 1, 0, [MsgSend(key.address, 1)])
    first = decode_tx(raw)
    assert decode_tx(bytes(raw)) is first  # equal bytes, another object: the cached decode
    assert decode_tx(bytearray(raw)).hash == first.hash
    with pytest.raises(MalformedTxError):
        decode_tx(raw, max_size=len(raw) - 1)  # cached, yet the smaller limit refuses it
    for _ in range(2):
        with pytest.raises(MalformedTxError):
            decode_tx(raw[:-1])
