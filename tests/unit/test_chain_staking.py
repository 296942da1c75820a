"""bank send, staking (create validator, delegate, undelegate/unbonding, validator updates)
and double-sign evidence."""

from __future__ import annotations

import pytest

from alloranet.chain.app import (
    get_balance,
    get_validator_set,
    select_evidence,
    validate_block,
    validate_invariants,
)
from alloranet.chain.errors import (
    BlockError,
    ChainError,
    InsufficientFundsError,
    InvalidMessageError,
    NotFoundError,
    StakeError,
)
from alloranet.chain.evidence import DuplicateVoteEvidence
from alloranet.chain.kv import Overlay
from alloranet.chain.ledger import BONDED_POOL, UNBONDING_POOL, Ledger
from alloranet.chain.msgs import (
    MsgCreateValidator,
    MsgDelegate,
    MsgSend,
    MsgSubmitEvidence,
    MsgUndelegate,
)
from alloranet.chain.params import StakingParams
from alloranet.chain.signbytes import PRECOMMIT, PREVOTE, vote_sign_bytes
from alloranet.chain.testkit import TestChain
from alloranet.crypto import PrivateKey
from alloranet.types import UALLO_PER_ALLO

ALLO = UALLO_PER_ALLO


@pytest.fixture
def chain() -> TestChain:
    return TestChain.create(staking=StakingParams(unbonding_blocks=3, max_entries=2))


def ok(result, i: int = 0) -> None:  # type: ignore[no-untyped-def]
    assert result.tx_results[i].code == 0, result.tx_results[i].log


def test_send_moves_funds_and_conserves_supply(chain: TestChain) -> None:
    a, b = chain.address("alice"), chain.address("bob")
    before = get_balance(chain.state, a), get_balance(chain.state, b)
    ok(chain.block([chain.tx("alice", MsgSend(b, 123))]))
    assert get_balance(chain.state, a) == before[0] - 123
    assert get_balance(chain.state, b) == before[1] + 123
    validate_invariants(chain.state)


def test_send_more_than_balance_fails(chain: TestChain) -> None:
    a = chain.address("alice")
    result = chain.block([chain.tx("alice", MsgSend(chain.address("bob"), 10**30 // 10**3))])
    assert result.tx_results[0].code == InsufficientFundsError.code
    assert "has" in result.tx_results[0].log and a in result.tx_results[0].log


def test_create_validator_delegate_and_updates(chain: TestChain) -> None:
    key = PrivateKey.from_label("newval").public_key
    result = chain.block([chain.tx("alice", MsgCreateValidator(key, 5 * ALLO))])
    ok(result)
    assert (key, 5) in result.validator_updates
    # updates from end-block 1 take effect at height 3 (H+2)
    assert key not in dict(get_validator_set(chain.state))  # the set of height 2
    assert dict(get_validator_set(chain.state, 3))[key] == 5
    result = chain.block([chain.tx("bob", MsgDelegate(key, 2 * ALLO))])
    ok(result)
    assert result.validator_updates == ((key, 7),)
    validate_invariants(chain.state)


def test_create_validator_rejections(chain: TestChain) -> None:
    key = PrivateKey.from_label("newval").public_key
    existing = chain.signers["val0"].public_key
    res = chain.block(
        [
            chain.tx("alice", MsgCreateValidator(existing, 5 * ALLO)),
            chain.tx("bob", MsgCreateValidator(key, ALLO // 2)),
        ]
    )
    assert res.tx_results[0].code == InvalidMessageError.code
    assert res.tx_results[1].code == StakeError.code and "minimum" in res.tx_results[1].log


def test_delegate_to_unknown_validator(chain: TestChain) -> None:
    res = chain.block([chain.tx("bob", MsgDelegate(bytes(32), ALLO))])
    assert res.tx_results[0].code == NotFoundError.code


def test_undelegate_unbonds_after_period(chain: TestChain) -> None:
    val = chain.signers["val0"].public_key
    ok(chain.block([chain.tx("bob", MsgDelegate(val, 10 * ALLO))]))
    bob = chain.address("bob")
    res = chain.block([chain.tx("bob", MsgUndelegate(val, 4 * ALLO))])  # height 2
    ok(res)
    before = get_balance(chain.state, bob)
    assert res.validator_updates == ((val, 1006),)
    assert get_balance(chain.state, UNBONDING_POOL) == 4 * ALLO
    # bob also earns his delegation's validator rewards every block (the same amount each
    # block while stakes and the emission stay put): the unbonding shows as 4 ALLO on top
    gains = []
    for _ in range(3):  # heights 3, 4 (not yet: matures at 2 + 3 = 5), 5
        chain.block()
        gains.append(get_balance(chain.state, bob) - before)
        before = get_balance(chain.state, bob)
    assert gains[0] == gains[1] < ALLO
    assert gains[2] == gains[1] + 4 * ALLO
    assert get_balance(chain.state, UNBONDING_POOL) == 0
    validate_invariants(chain.state)


def test_undelegate_rejections(chain: TestChain) -> None:
    val = chain.signers["val0"].public_key
    res = chain.block([chain.tx("bob", MsgUndelegate(val, ALLO))])
    assert res.tx_results[0].code == StakeError.code and "no delegation" in res.tx_results[0].log
    ok(chain.block([chain.tx("bob", MsgDelegate(val, 3 * ALLO))]))
    res = chain.block([chain.tx("bob", MsgUndelegate(val, 4 * ALLO))])
    assert res.tx_results[0].code == StakeError.code and "exceeds" in res.tx_results[0].log
    res = chain.block([chain.tx("bob", MsgUndelegate(val, ALLO)) for _ in range(3)])
    assert [r.code for r in res.tx_results] == [0, 0, StakeError.code]  # max_entries = 2
    assert "unbonding entries" in res.tx_results[2].log


def _evidence(chain: TestChain, label: str = "val0", height: int = 1) -> DuplicateVoteEvidence:
    signer = chain.signers[label]
    ids = (b"\x01" * 32, b"\x02" * 32)
    votes = [
        (bid, signer.sign(vote_sign_bytes(chain.genesis.chain_id, PREVOTE, height, 0, bid)))
        for bid in ids
    ]
    return DuplicateVoteEvidence.create(signer.public_key, PREVOTE, height, 0, votes[0], votes[1])


def two_validator_chain() -> TestChain:
    return TestChain.create(validators=("val0", "val1"))


def test_double_sign_slashes_jails_tombstones_once() -> None:
    chain = two_validator_chain()
    chain.advance_to(2)
    evidence = _evidence(chain, "val1")
    bonded = get_balance(chain.state, BONDED_POOL)
    res = chain.block(evidence=[evidence])
    key = chain.signers["val1"].public_key
    assert ("slash_double_sign", key.hex()) in res.events
    assert res.validator_updates == ((key, 0),)
    validator = Ledger(Overlay(chain.state)).get_validator(key)
    assert validator is not None and validator.jailed and validator.tombstoned
    assert validator.tokens == 1000 * ALLO * 95 // 100
    assert get_balance(chain.state, BONDED_POOL) == bonded - 50 * ALLO
    validate_invariants(chain.state)
    # at most once: the same or another equivocation is refused
    with pytest.raises(BlockError, match="already punished"):
        validate_block(chain.state, chain.build(evidence=[evidence]))
    res = chain.block([chain.tx("alice", MsgSubmitEvidence(_evidence(chain, "val1", 2).to_wire()))])
    assert res.tx_results[0].code != 0 and "already punished" in res.tx_results[0].log


def test_evidence_via_transaction() -> None:
    chain = two_validator_chain()
    chain.advance_to(2)
    res = chain.block([chain.tx("alice", MsgSubmitEvidence(_evidence(chain, "val1").to_wire()))])
    ok(res)
    assert res.validator_updates == ((chain.signers["val1"].public_key, 0),)


def test_evidence_rejections() -> None:
    chain = two_validator_chain()
    chain.advance_to(2)
    signer = chain.signers["val1"]
    # bad signature
    good = _evidence(chain, "val1")
    bad = DuplicateVoteEvidence(
        good.pubkey,
        good.vote_type,
        1,
        0,
        good.block_id_a,
        bytes(64),
        good.block_id_b,
        good.signature_b,
    )
    with pytest.raises(BlockError, match="does not verify"):
        validate_block(chain.state, chain.build(evidence=[bad]))
    # signed for another chain
    ids = (b"\x01" * 32, b"\x02" * 32)
    votes = [(b, signer.sign(vote_sign_bytes("other", PREVOTE, 1, 0, b))) for b in ids]
    other = DuplicateVoteEvidence.create(signer.public_key, PREVOTE, 1, 0, *votes)
    with pytest.raises(BlockError, match="does not verify"):
        validate_block(chain.state, chain.build(evidence=[other]))
    # different vote types cannot be combined: vote b signed as precommit
    mixed_sig = signer.sign(vote_sign_bytes(chain.genesis.chain_id, PRECOMMIT, 1, 0, ids[1]))
    mixed = DuplicateVoteEvidence.create(
        signer.public_key, PREVOTE, 1, 0, (ids[0], good.signature_a), (ids[1], mixed_sig)
    )
    with pytest.raises(BlockError, match="does not verify"):
        validate_block(chain.state, chain.build(evidence=[mixed]))
    # from the future
    with pytest.raises(BlockError, match="not in the past"):
        validate_block(chain.state, chain.build(evidence=[_evidence(chain, "val1", 3)]))
    # not a validator
    stranger = TestChain.create(validators=("val0", "val1", "nobody"))
    outsider = _evidence(stranger, "nobody")
    with pytest.raises(BlockError, match="not a validator"):
        validate_block(chain.state, chain.build(evidence=[outsider]))


def test_evidence_too_old() -> None:
    chain = TestChain.create(
        validators=("val0", "val1"), staking=StakingParams(evidence_max_age_blocks=3)
    )
    chain.advance_to(5)
    with pytest.raises(BlockError, match="older than"):
        validate_block(chain.state, chain.build(evidence=[_evidence(chain, "val1", 2)]))
    validate_block(chain.state, chain.build(evidence=[_evidence(chain, "val1", 3)]))


def test_evidence_decoding_rules() -> None:
    chain = two_validator_chain()
    ev = _evidence(chain, "val1").to_wire()
    swapped = (*ev[:4], ev[6], ev[7], ev[4], ev[5])
    from alloranet.errors import DecodeError

    with pytest.raises(DecodeError, match="ascending"):
        DuplicateVoteEvidence.from_wire(swapped)
    same = (*ev[:4], ev[4], ev[5], ev[4], ev[5])
    with pytest.raises(DecodeError):
        DuplicateVoteEvidence.from_wire(same)
    with pytest.raises(DecodeError, match="vote type"):
        DuplicateVoteEvidence.from_wire((ev[0], 7, *ev[2:]))


def test_slash_reaches_unbonding_entries_after_infraction() -> None:
    chain = TestChain.create(validators=("val0", "val1"))
    val1 = chain.signers["val1"].public_key
    ok(chain.block([chain.tx("bob", MsgDelegate(val1, 100 * ALLO))]))  # h1
    ok(chain.block([chain.tx("bob", MsgUndelegate(val1, 40 * ALLO))]))  # h2, after infraction 1
    chain.block(evidence=[_evidence(chain, "val1", 1)])
    assert get_balance(chain.state, UNBONDING_POOL) == 38 * ALLO
    # 5 % of the 1,000 ALLO that signed height 1 = 50: 2 from the entry, 48 from the tokens
    # (1,000 + 100 - 40 = 1,060 before); bob's later stake is not slashed on its own account
    validator = Ledger(Overlay(chain.state)).get_validator(val1)
    assert validator is not None and validator.tokens == 1012 * ALLO
    validate_invariants(chain.state)


def test_double_sign_slash_uses_the_power_at_the_infraction_height() -> None:
    """Stake delegated after the double-sign did not sign it: the slash is 5 % of the power
    that did (Cosmos Keeper.Slash), not of the tokens when the evidence lands."""
    chain = TestChain.create(validators=("val0", "val1"))
    val1 = chain.signers["val1"].public_key
    chain.advance_to(2)
    ok(chain.block([chain.tx("bob", MsgDelegate(val1, 1000 * ALLO))]))  # h3: 2,000 ALLO now
    chain.advance_to(6)  # the delegation signs from height 5 on
    bonded = get_balance(chain.state, BONDED_POOL)
    chain.block(evidence=[_evidence(chain, "val1", 2)])  # power 1,000 then
    validator = Ledger(Overlay(chain.state)).get_validator(val1)
    assert validator is not None and validator.tokens == 1950 * ALLO
    assert get_balance(chain.state, BONDED_POOL) == bonded - 50 * ALLO
    validate_invariants(chain.state)


def test_validator_set_changes_take_effect_at_h_plus_2() -> None:
    chain = two_validator_chain()
    chain.advance_to(2)
    val1 = chain.signers["val1"].public_key
    chain.block(evidence=[_evidence(chain, "val1")])  # h3: val1 jailed, removed from h5
    assert val1 in dict(get_validator_set(chain.state, 4))
    assert val1 not in dict(get_validator_set(chain.state, 5))
    with pytest.raises(ChainError, match="not known"):
        get_validator_set(chain.state, 6)
    # val1 still proposes height 4 legitimately, but not height 5
    from alloranet.chain.app import build_block, execute_block

    block4 = build_block(chain.state, time_ms=chain.time_ms + 1, proposer=val1)
    result = execute_block(chain.state, block4)
    block5 = build_block(result.state, time_ms=chain.time_ms + 2, proposer=val1)
    with pytest.raises(BlockError, match="proposer"):
        execute_block(result.state, block5)


def test_evidence_requires_membership_at_the_infraction_height() -> None:
    chain = TestChain.create(validators=("val0",), accounts=("alice", "bob"))
    newcomer = chain.signers["alice"]
    ok(chain.block([chain.tx("alice", MsgCreateValidator(newcomer.public_key, 5 * ALLO))]))
    chain.advance_to(4)  # alice's validator signs from height 3 on
    ids = (b"\x01" * 32, b"\x02" * 32)

    def equivocation(height: int) -> DuplicateVoteEvidence:
        votes = [
            (b, newcomer.sign(vote_sign_bytes(chain.genesis.chain_id, PREVOTE, height, 0, b)))
            for b in ids
        ]
        return DuplicateVoteEvidence.create(newcomer.public_key, PREVOTE, height, 0, *votes)

    with pytest.raises(BlockError, match="not a validator at height 2"):
        validate_block(chain.state, chain.build(evidence=[equivocation(2)]))
    validate_block(chain.state, chain.build(evidence=[equivocation(3)]))


def test_proposer_selects_only_includable_evidence() -> None:
    chain = TestChain.create(validators=("val0", "val1", "val2", "val3"))
    chain.advance_to(3)
    first, second = _evidence(chain, "val1", 1), _evidence(chain, "val1", 2)
    future = _evidence(chain, "val2", 4)  # height 4 is not yet in the past at block 4
    included, dead = select_evidence(
        chain.state, time_ms=chain.time_ms + 1000, proposer=chain.proposer,
        candidates=[first, second, future],
    )  # fmt: skip
    # two pieces against one validator: only the first can be punished; future waits
    assert included == (first,)
    assert dead == (second,)
    validate_block(chain.state, chain.build(evidence=included))
    with pytest.raises(BlockError, match="already punished"):
        validate_block(chain.state, chain.build(evidence=[first, second]))
    chain.block(evidence=included)
    included, dead = select_evidence(
        chain.state, time_ms=chain.time_ms + 1000, proposer=chain.proposer,
        candidates=[second, future],
    )  # fmt: skip
    assert included == (future,) and dead == (second,)
