"""Liveness (downtime) slashing: a validator that misses too many of the last blocks is jailed.

spec/consensus.md 4.2 (x/slashing): each block, the validators in the block's LastCommit update
a bitmap over a sliding window of ``SignedBlocksWindow`` blocks; if ``missed > window −
MinSignedPerWindow·window`` and the validator has been tracked for a whole window, it is
slashed ``SlashFractionDowntime``, jailed until ``now + DowntimeJailDuration`` and its record is
reset. The operator then sends ``MsgUnjail`` (self-delegation still at least the minimum).
Downtime never tombstones. Defaults are the spec's (window 100, MinSignedPerWindow 0.5): the
proposer's last commit carries every precommit it had when the height finished, not only the
first >2/3, so absence from it means the vote was late by a whole timeout_commit or missing.

How the chain sees signatures: block H carries the commit for H−1 (``Block.last_commit``,
encoded by the consensus layer as ``(height, round, block_id, ((pubkey, signature), ...))``).
The chain reads only the signers' keys; the signatures were verified by the validators that
accepted the proposal (node: ``verify_commit`` before prevoting), as CometBFT hands LastCommit to
the application. An **empty** last commit (height 1, or the in-memory test driver) carries no
information and changes nothing; a malformed one, or one for another height, makes the block
invalid. The set judged is the one that signs H−1 (``get_validator_set_at(H−1)``).

Cheap and deterministic: the record is ``sign/<pubkey>`` = (start height, missed count, ring of
``window`` bits) with slot ``h % window`` for height h; it is written only when a slot's bit
changes, so a validator that keeps signing costs no write. A validator with no record started at
genesis (height 1) and has missed nothing; one that (re)enters the set gets a fresh record that
starts when it first signs (H+2), so bits from an earlier stint never count. Unbonding entries are
not slashed for downtime (the infraction has no single height; Cosmos slashes them only for
entries created after it, which the reset window makes negligible here).
"""

from __future__ import annotations

from dataclasses import replace

from alloranet.chain.context import BlockContext
from alloranet.chain.errors import (
    BlockError,
    InvalidMessageError,
    NotFoundError,
    StakeError,
    UnauthorizedError,
)
from alloranet.chain.ledger import BONDED_POOL, Ledger
from alloranet.chain.msgs import MsgUnjail
from alloranet.chain.staking import get_validator_set_at
from alloranet.codec import decode, expect_bytes, expect_int, expect_tuple
from alloranet.crypto import PUBLIC_KEY_SIZE
from alloranet.errors import AlloraError

MAX_COMMIT_BYTES = 1 << 20
MAX_COMMIT_SIGNATURES = 10_000


def compute_commit_signers(last_commit: bytes, height: int) -> frozenset[bytes] | None:
    """The keys whose precommits for block ``height − 1`` block ``height`` carries; None for an
    empty commit. Raises BlockError for a malformed commit or one of another height."""
    if not last_commit:
        return None
    try:
        fields = expect_tuple(decode(last_commit, max_size=MAX_COMMIT_BYTES), "last_commit", 4)
        committed = expect_int(fields[0], "last_commit.height", 0)
        signatures = expect_tuple(
            fields[3], "last_commit.signatures", max_len=MAX_COMMIT_SIGNATURES
        )
        signers = frozenset(
            expect_bytes(
                expect_tuple(pair, "last_commit.signature", 2)[0],
                "last_commit.validator",
                size=PUBLIC_KEY_SIZE,
            )
            for pair in signatures
        )
    except AlloraError as exc:
        raise BlockError(f"block: malformed last commit: {exc}") from None
    if committed != height - 1:
        raise BlockError(f"block: last commit is for height {committed}, expected {height - 1}")
    return signers


def compute_max_missed(window: int, min_signed_ppm: int) -> int:
    """``window − ⌊window · MinSignedPerWindow⌋``: more misses than this jails."""
    return window - window * min_signed_ppm // 1_000_000


def _empty_record(start: int, window: int) -> tuple[int, int, bytes]:
    return (start, 0, bytes((window + 7) // 8))


def process_liveness(
    ledger: Ledger, ctx: BlockContext, signers: frozenset[bytes] | None
) -> list[str]:
    """Begin-block: record who signed block ``height − 1``; jail and slash the absent ones
    over the limit. Returns the hex keys jailed (for events)."""
    window = ctx.staking.signed_blocks_window
    if signers is None or window <= 0 or ctx.height < 2:
        return []
    signed_height = ctx.height - 1
    slot = signed_height % window
    byte, bit = divmod(slot, 8)
    max_missed = compute_max_missed(window, ctx.staking.min_signed_per_window_ppm)
    jailed: list[str] = []
    for pubkey, _ in get_validator_set_at(ledger, signed_height):
        validator = ledger.get_validator(pubkey)
        if validator is None or validator.jailed:
            continue
        record = ledger.get_signing_info(pubkey)
        start, missed, ring = _empty_record(1, window) if record is None else record
        if len(ring) != (window + 7) // 8:  # the window parameter changed: start afresh
            start, missed, ring = _empty_record(signed_height, window)
            ledger.set_signing_info(pubkey, (start, missed, ring))
        was = (ring[byte] >> bit) & 1
        now = 0 if pubkey in signers else 1
        if was != now:
            bits = bytearray(ring)
            bits[byte] ^= 1 << bit
            missed += now - was
            ledger.set_signing_info(pubkey, (start, missed, bytes(bits)))
        if now and missed > max_missed and signed_height >= start + window - 1:
            _jail_for_downtime(ledger, ctx, pubkey)
            jailed.append(pubkey.hex())
    return jailed


def _jail_for_downtime(ledger: Ledger, ctx: BlockContext, pubkey: bytes) -> None:
    validator = ledger.get_validator(pubkey)
    assert validator is not None
    slashed = validator.tokens * ctx.staking.slash_fraction_downtime_ppm // 1_000_000
    ledger.burn(BONDED_POOL, slashed)
    ledger.set_validator(
        replace(
            validator,
            tokens=validator.tokens - slashed,
            jailed=True,
            jailed_until_ms=ctx.time_ms + ctx.staking.downtime_jail_ms,
        )
    )
    ledger.set_signing_info(pubkey, None)


def process_new_signers(ledger: Ledger, ctx: BlockContext, entering: list[bytes]) -> None:
    """End-block: validators entering the set (they sign from H+2) start a fresh record."""
    window = ctx.staking.signed_blocks_window
    for pubkey in entering:
        if window > 0:
            ledger.set_signing_info(pubkey, _empty_record(ctx.height + 2, window))


def process_unjail(ledger: Ledger, ctx: BlockContext, signer: str, msg: MsgUnjail) -> None:
    """``MsgUnjail``: the operator returns a downtime-jailed validator once its jail time is
    over; it rejoins the set at the next validator update (H+2) if its power still ranks."""
    validator = ledger.get_validator(msg.pubkey)
    if validator is None:
        raise NotFoundError(f"unjail: no validator with consensus key {msg.pubkey.hex()}")
    if signer != validator.operator:
        raise UnauthorizedError(f"unjail: {signer} is not the operator of this validator")
    if not validator.jailed:
        raise InvalidMessageError("unjail: the validator is not jailed")
    if validator.tombstoned:
        raise StakeError("unjail: the validator is tombstoned for double signing")
    if ctx.time_ms < validator.jailed_until_ms:
        raise StakeError(
            f"unjail: jailed until block time {validator.jailed_until_ms} ms (now {ctx.time_ms})"
        )
    shares = ledger.get_delegation(msg.pubkey, signer)
    own = shares * validator.tokens // validator.shares if validator.shares else 0
    if own < ctx.staking.min_self_delegation:
        raise StakeError(
            f"unjail: self-delegation {own} is below the minimum {ctx.staking.min_self_delegation}"
        )
    ledger.set_validator(replace(validator, jailed=False, jailed_until_ms=0))
