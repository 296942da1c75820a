"""staking and slashing: validators, delegations with shares, unbonding, double-sign slashing.

Why shares (spec/consensus.md 4.1): a validator holds ``tokens`` and issues ``shares``;
slashing burns tokens, never shares, so every delegator loses the same fraction without the
chain touching each delegation. Bonded tokens sit in the BONDED_POOL account and unbonding
tokens in UNBONDING_POOL, so the total-supply invariant is just "sum of balances".

Voting power = tokens // power_reduction. Validator-set updates are computed at end-block by
comparing the top ``max_validators`` non-jailed validators with the set last returned; the
consensus layer applies them at H+2 (spec/consensus.md 1.7).
"""

from __future__ import annotations

from dataclasses import replace

from alloranet.chain.context import BlockContext
from alloranet.chain.errors import EvidenceError, InvalidMessageError, NotFoundError, StakeError
from alloranet.chain.evidence import DuplicateVoteEvidence
from alloranet.chain.ledger import BONDED_POOL, UNBONDING_POOL, Ledger, UnbondingEntry, Validator
from alloranet.chain.msgs import MsgCreateValidator, MsgDelegate, MsgUndelegate


def _require_validator(ledger: Ledger, pubkey: bytes) -> Validator:
    validator = ledger.get_validator(pubkey)
    if validator is None:
        raise NotFoundError(f"no validator with consensus key {pubkey.hex()}")
    return validator


def _bond(ledger: Ledger, validator: Validator, delegator: str, amount: int) -> Validator:
    ledger.transfer(delegator, BONDED_POOL, amount, "delegate")
    if validator.tokens == 0 or validator.shares == 0:
        new_shares = amount
    else:
        new_shares = amount * validator.shares // validator.tokens
    if new_shares == 0:
        raise StakeError("delegate: amount too small to buy a share of this validator")
    ledger.set_delegation(
        validator.pubkey, delegator, ledger.get_delegation(validator.pubkey, delegator) + new_shares
    )
    updated = replace(
        validator, tokens=validator.tokens + amount, shares=validator.shares + new_shares
    )
    ledger.set_validator(updated)
    return updated


def process_create_validator(
    ledger: Ledger, ctx: BlockContext, signer: str, msg: MsgCreateValidator
) -> None:
    if ledger.get_validator(msg.pubkey) is not None:
        raise InvalidMessageError(f"validator {msg.pubkey.hex()} already exists")
    if msg.amount < ctx.staking.min_self_delegation:
        raise StakeError(
            f"create_validator: self-delegation {msg.amount} is below the minimum "
            f"{ctx.staking.min_self_delegation}"
        )
    validator = Validator(msg.pubkey, signer, 0, 0, False, False)
    _bond(ledger, validator, signer, msg.amount)


def process_delegate(ledger: Ledger, ctx: BlockContext, signer: str, msg: MsgDelegate) -> None:
    del ctx
    validator = _require_validator(ledger, msg.pubkey)
    if validator.tombstoned:
        raise StakeError("delegate: validator is tombstoned for double signing")
    _bond(ledger, validator, signer, msg.amount)


def process_undelegate(ledger: Ledger, ctx: BlockContext, signer: str, msg: MsgUndelegate) -> None:
    validator = _require_validator(ledger, msg.pubkey)
    shares = ledger.get_delegation(msg.pubkey, signer)
    if validator.tokens == 0 or shares == 0:
        raise StakeError(f"undelegate: {signer} has no delegation to this validator")
    # Shares to burn, rounded up so the validator's other delegators never lose.
    burn = -(-msg.amount * validator.shares // validator.tokens)
    if burn > shares:
        held = shares * validator.tokens // validator.shares
        raise StakeError(f"undelegate: {msg.amount} exceeds the delegation of {held}")
    count = ledger.unbonding_count(msg.pubkey, signer)
    if count >= ctx.staking.max_entries:
        raise StakeError(
            f"undelegate: already {count} unbonding entries (max {ctx.staking.max_entries})"
        )
    ledger.set_delegation(msg.pubkey, signer, shares - burn)
    ledger.set_validator(
        replace(validator, tokens=validator.tokens - msg.amount, shares=validator.shares - burn)
    )
    ledger.transfer(BONDED_POOL, UNBONDING_POOL, msg.amount, "undelegate")
    mature = ctx.height + ctx.staking.unbonding_blocks
    due = ledger.unbonding_due(mature)
    ledger.set_unbonding_due(
        mature, (*due, UnbondingEntry(signer, msg.pubkey, msg.amount, ctx.height))
    )
    ledger.set_unbonding_count(msg.pubkey, signer, count + 1)


def process_matured_unbondings(ledger: Ledger, height: int) -> None:
    """End-block: pay out the unbonding entries that mature at ``height``."""
    entries = ledger.unbonding_due(height)
    for entry in entries:
        ledger.transfer(UNBONDING_POOL, entry.delegator, entry.amount, "unbonding payout")
        ledger.set_unbonding_count(
            entry.pubkey, entry.delegator, ledger.unbonding_count(entry.pubkey, entry.delegator) - 1
        )
    ledger.set_unbonding_due(height, ())


def validate_evidence(
    ledger: Ledger, ctx: BlockContext, evidence: DuplicateVoteEvidence
) -> tuple[Validator, int]:
    """Every rule of spec/consensus.md 1.10 / 4.2 that a block's evidence must satisfy; returns
    the validator and its voting power at the infraction height (what the slash is taken of)."""
    if evidence.height >= ctx.height:
        raise EvidenceError(f"evidence: height {evidence.height} is not in the past")
    if ctx.height - evidence.height > ctx.staking.evidence_max_age_blocks:
        raise EvidenceError(
            f"evidence: height {evidence.height} is older than "
            f"{ctx.staking.evidence_max_age_blocks} blocks"
        )
    validator = ledger.get_validator(evidence.pubkey)
    signers = dict(get_validator_set_at(ledger, evidence.height))
    if validator is None or evidence.pubkey not in signers:
        raise EvidenceError(
            f"evidence: {evidence.pubkey.hex()} was not a validator at height {evidence.height}"
        )
    if validator.tombstoned or ledger.is_evidence_seen(evidence.hash):
        raise EvidenceError("evidence: this validator was already punished for double signing")
    evidence.validate_signatures(ctx.chain_id)
    return validator, signers[evidence.pubkey]


def process_evidence(ledger: Ledger, ctx: BlockContext, evidence: DuplicateVoteEvidence) -> None:
    """Slash SlashFractionDoubleSign of the power *at the infraction height*, jail forever and
    tombstone — at most once per validator (spec/consensus.md 4.2, Cosmos ``Keeper.Slash``).

    Why the infraction-time power: stake that joined after the double-sign did not take part
    in it, and stake that left afterwards (unbonding entries created at or after the
    infraction height) is still liable. The amount is fraction x (power x PowerReduction);
    the liable unbonding entries pay their share first (fraction x entry, at most the entry),
    and the rest is burnt from the validator's current tokens (never more than it has).
    """
    validator, infraction_power = validate_evidence(ledger, ctx, evidence)
    ppm = ctx.staking.slash_fraction_double_sign_ppm
    remaining = infraction_power * ctx.staking.power_reduction * ppm // 1_000_000
    for mature in range(ctx.height, ctx.height + ctx.staking.unbonding_blocks + 1):
        entries = ledger.unbonding_due(mature)
        if not entries:
            continue
        changed = []
        for entry in entries:
            if entry.pubkey == evidence.pubkey and entry.created_height >= evidence.height:
                share = entry.amount * ppm // 1_000_000
                ledger.burn(UNBONDING_POOL, share)
                remaining -= share
                entry = replace(entry, amount=entry.amount - share)
            changed.append(entry)
        ledger.set_unbonding_due(mature, tuple(changed))
    burnt = max(0, min(remaining, validator.tokens))
    ledger.burn(BONDED_POOL, burnt)
    ledger.set_validator(
        replace(validator, tokens=validator.tokens - burnt, jailed=True, tombstoned=True)
    )
    ledger.mark_evidence(evidence.hash, ctx.height)


def compute_validator_set(ledger: Ledger, ctx: BlockContext) -> tuple[tuple[bytes, int], ...]:
    """The top ``max_validators`` non-jailed validators by power (ties by key), as (key, power)."""
    ranked: list[tuple[int, bytes]] = []
    for pubkey in ledger.validator_pubkeys():
        validator = ledger.get_validator(pubkey)
        if validator is None or validator.jailed:
            continue
        power = validator.tokens // ctx.staking.power_reduction
        if power > 0:
            ranked.append((-power, pubkey))
    ranked.sort()
    chosen = ranked[: ctx.staking.max_validators]
    return tuple(sorted((pubkey, -neg) for neg, pubkey in chosen))


def process_validator_updates(ledger: Ledger, ctx: BlockContext) -> tuple[tuple[bytes, int], ...]:
    """End-block: the changes to the validator set (power 0 = removed), sorted by key.

    The new set is also recorded in ``valset_schedule`` as taking effect at H+2, so the chain
    knows which set signs (and proposes) each of the next heights.
    """
    new = dict(compute_validator_set(ledger, ctx))
    old = dict(ledger.get_meta("valset", ()))
    updates = [(k, p) for k, p in new.items() if old.get(k) != p]
    updates += [(k, 0) for k in old if k not in new]
    if updates:
        new_set = tuple(sorted(new.items()))
        ledger.set_meta("valset", new_set)
        schedule = [*ledger.get_meta("valset_schedule", ()), (ctx.height + 2, new_set)]
        # keep every set that was in effect within the evidence window, and all later ones
        oldest = ctx.height + 1 - ctx.staking.evidence_max_age_blocks
        while len(schedule) > 1 and schedule[1][0] <= oldest:
            schedule.pop(0)
        ledger.set_meta("valset_schedule", tuple(schedule))
    return tuple(sorted(updates))


def get_validator_set_at(ledger: Ledger, height: int) -> tuple[tuple[bytes, int], ...]:
    """The (pubkey, power) set that signs block ``height`` (known up to two heights ahead)."""
    current: tuple[tuple[bytes, int], ...] = ()
    for effective, validators in ledger.get_meta("valset_schedule", ()):
        if effective <= height:
            current = validators
    return current
