"""Canonical encoding of every message: decode(encode(m)) == m, and byte changes are caught."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alloranet.chain.evidence import DuplicateVoteEvidence
from alloranet.chain.msgs import (
    MAX_AMOUNT,
    MsgAddStake,
    MsgCreateTopic,
    MsgCreateValidator,
    MsgDelegate,
    MsgDelegateStake,
    MsgFundTopic,
    MsgInsertReputerPayload,
    MsgInsertWorkerPayload,
    MsgRegister,
    MsgRemoveDelegateStake,
    MsgRemoveStake,
    MsgSend,
    MsgSubmitEvidence,
    MsgUndelegate,
    ValueBundle,
    msg_from_wire,
)
from alloranet.chain.signbytes import PREVOTE
from alloranet.codec import decode, encode, hash_value
from alloranet.crypto import PrivateKey
from alloranet.errors import AlloraError, DecodeError

ADDRESSES = sorted(PrivateKey.from_label(f"m{i}").address for i in range(6))
address = st.sampled_from(ADDRESSES)
amount = st.integers(1, MAX_AMOUNT)
topic = st.integers(1, 2**63 - 1)
key = st.binary(min_size=32, max_size=32)
finite = st.floats(allow_nan=False, allow_infinity=False)
pairs = st.sets(address, max_size=4).flatmap(
    lambda addrs: st.tuples(*[st.tuples(st.just(a), finite) for a in sorted(addrs)])
)
bundles = st.builds(
    ValueBundle,
    finite,
    finite,
    pairs,
    pairs,
    pairs,
    pairs,
    pairs,
    st.sets(address, max_size=2).flatmap(
        lambda addrs: st.tuples(*[st.tuples(st.just(a), pairs) for a in sorted(addrs)])
    ),
)
unit = st.floats(0.0, 0.999)
topics = st.builds(
    MsgCreateTopic,
    st.text(max_size=20),
    st.text(min_size=1, max_size=10),
    st.just(12),
    st.integers(12, 1200),
    st.integers(1, 12),
    st.floats(2.5, 4.5),
    st.floats(0.001, 1.0),
    st.booleans(),
    st.floats(1e-9, 10.0),
    unit,
    unit,
    unit,
    unit,
)
evidence = st.builds(
    lambda k, h, r, a, b: DuplicateVoteEvidence.create(k, PREVOTE, h, r, a, b).to_wire(),
    key,
    st.integers(1, 10**9),
    st.integers(0, 100),
    st.tuples(st.just(b"\x01" * 32), st.binary(min_size=64, max_size=64)),
    st.tuples(st.just(b"\x02" * 32), st.binary(min_size=64, max_size=64)),
)
messages = st.one_of(
    st.builds(MsgSend, address, amount),
    st.builds(MsgCreateValidator, key, amount),
    st.builds(MsgDelegate, key, amount),
    st.builds(MsgUndelegate, key, amount),
    topics,
    st.builds(MsgFundTopic, topic, amount),
    st.builds(MsgRegister, topic, st.booleans()),
    st.builds(MsgAddStake, topic, amount),
    st.builds(MsgRemoveStake, topic, amount),
    st.builds(MsgDelegateStake, topic, address, amount),
    st.builds(MsgRemoveDelegateStake, topic, address, amount),
    st.builds(MsgInsertWorkerPayload, topic, topic, finite, pairs),
    st.builds(MsgInsertWorkerPayload, topic, topic, st.none(), pairs.filter(bool)),
    st.builds(MsgInsertReputerPayload, topic, topic, bundles),
    st.builds(MsgSubmitEvidence, evidence),
)


@settings(max_examples=400, deadline=None)
@given(messages)
def test_every_message_roundtrips(msg) -> None:  # type: ignore[no-untyped-def]
    data = encode(msg.to_wire())
    assert msg_from_wire(decode(data)) == msg
    assert encode(msg_from_wire(decode(data)).to_wire()) == data


@settings(max_examples=300, deadline=None)
@given(messages, st.data())
def test_byte_change_rejected_or_changes_hash(msg, data) -> None:  # type: ignore[no-untyped-def]
    raw = encode(msg.to_wire())
    index = data.draw(st.integers(0, len(raw) - 1))
    byte = data.draw(st.integers(0, 255).filter(lambda b: b != raw[index]))
    mutated = raw[:index] + bytes([byte]) + raw[index + 1 :]
    try:
        other = msg_from_wire(decode(mutated))
    except AlloraError:
        return
    assert hash_value(other.to_wire()) != hash_value(msg.to_wire())


@pytest.mark.parametrize(
    "wire",
    [
        (),
        (99, 1),
        (1, ADDRESSES[0]),  # missing field
        (1, ADDRESSES[0], 0),  # zero amount
        (1, ADDRESSES[0], MAX_AMOUNT + 1),
        (1, "allo1notanaddress", 5),
        (1, ADDRESSES[0][:-1] + ("q" if ADDRESSES[0][-1] != "q" else "p"), 5),  # checksum
        (1, ADDRESSES[0], 5.0),
        (2, b"short", 5),
        (11, 1, 5, None, ()),  # neither inference nor forecast
        (11, 1, 5, 1.0, ((ADDRESSES[1], 1.0), (ADDRESSES[0], 1.0))),  # unsorted forecast
        (11, 1, 5, 1.0, ((ADDRESSES[0], 1.0), (ADDRESSES[0], 2.0))),  # duplicate inferer
        (7, 1, 1),  # is_reputer must be a boolean
    ],
)
def test_malformed_messages(wire: tuple) -> None:
    with pytest.raises(AlloraError):
        msg_from_wire(wire)


def test_unknown_type_message() -> None:
    with pytest.raises(DecodeError, match="unknown message type"):
        msg_from_wire((250,))
