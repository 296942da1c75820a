"""Fee distribution: the fee collector is paid out to the bonded validators' delegators.

What lands in ``module:fee_collector``: every transaction fee (app.py, ante step) and the
validators' share ``ValidatorsVsAlloraPercentReward`` of each block's emission
(epochs.process_mint, spec/synthesis.md 5.5). spec/consensus.md 4.3 (x/distribution) splits it
among the validators in proportion to power, each validator's commission first and the rest to
its delegators pro rata. This chain has no commission (validators declare none), so a
validator's part goes straight to its delegators — the operator's self-delegation included.

When: **every block, at end-block** (after the block's transactions, before the validator-set
update). Why per block and not per epoch: epochs are per topic and there is no chain-wide one;
a per-block payout never lets the collector grow; each block's pot goes to the set that signs
that very block (``get_validator_set_at(height)``), so a validator that leaves the set (jailed
for downtime or double signing, out-ranked) stops earning at once without any extra bookkeeping;
and the cost is one balance write per delegation of the ≤ ``max_validators`` bonded validators,
small next to a block's transactions. (Cosmos' F1 lazy accounting would make that O(1) per
block but needs withdraw messages and per-period state; at this chain's size eager is simpler.)

Exact integer arithmetic, with floors at both levels:

* validator ``v`` with power ``p_v`` out of ``P`` gets ``R_v = ⌊pot · p_v / P⌋``;
* delegator ``d`` of ``v`` holding ``s_d`` of the validator's ``S_v`` shares gets
  ``⌊R_v · s_d / S_v⌋`` (shares, not tokens: after a slash every delegator keeps its fraction);
* **remainder rule**: whatever the floors leave (fewer than validators + delegations base units)
  and the part of a validator that is jailed or has no shares stays in the fee collector and
  joins the next block's pot. Nothing is minted or burnt: supply is conserved exactly.
"""

from __future__ import annotations

from alloranet.chain.context import BlockContext
from alloranet.chain.ledger import FEE_COLLECTOR, Ledger
from alloranet.chain.staking import get_validator_set_at


def compute_validator_rewards(
    pot: int, powers: tuple[tuple[bytes, int], ...]
) -> tuple[tuple[bytes, int], ...]:
    """``⌊pot · power / total⌋`` per validator, in the (sorted) order given; pure."""
    total = sum(power for _, power in powers)
    if pot <= 0 or total <= 0:
        return ()
    return tuple((pubkey, pot * power // total) for pubkey, power in powers)


def compute_delegator_rewards(
    reward: int, holdings: tuple[tuple[str, int], ...], total_shares: int
) -> tuple[tuple[str, int], ...]:
    """``⌊reward · shares / total_shares⌋`` per delegator (zero amounts left out); pure."""
    if reward <= 0 or total_shares <= 0:
        return ()
    out = []
    for address, shares in holdings:
        amount = reward * shares // total_shares
        if amount > 0:
            out.append((address, amount))
    return tuple(out)


def process_fee_distribution(ledger: Ledger, ctx: BlockContext) -> int:
    """End-block: pay the fee collector's balance to this block's validator set; returns the
    amount paid (the remainder stays in the collector).

    Amounts are summed per address first, so each balance (the collector's included) is
    written once per block however many validators an address delegates to."""
    pot = ledger.get_balance(FEE_COLLECTOR)
    owed: dict[str, int] = {}
    for pubkey, reward in compute_validator_rewards(pot, get_validator_set_at(ledger, ctx.height)):
        validator = ledger.get_validator(pubkey)
        if validator is None or validator.jailed or validator.shares <= 0:
            continue
        holdings = tuple(
            (address, ledger.get_delegation(pubkey, address))
            for address in ledger.delegators(pubkey)
        )
        for address, amount in compute_delegator_rewards(reward, holdings, validator.shares):
            owed[address] = owed.get(address, 0) + amount
    paid = sum(owed.values())
    if paid:
        ledger.set_balance(FEE_COLLECTOR, pot - paid)
        for address in sorted(owed):
            ledger.set_balance(address, ledger.get_balance(address) + owed[address])
    return paid
