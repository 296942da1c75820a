"""Epoch scheduling after the topic boundary: worker windows close, reputer nonces open and
close, and the synthesis hook runs; plus the per-block emission.

Emission (spec/synthesis.md 6, computed by :func:`alloranet.synthesis.emissions.
compute_monthly_emission`): on the first block and then on every block with
``height % BlocksPerMonth == 1`` the chain recomputes the per-block emission from the staked
tokens (bonded validator stake + topic stake), the unminted network-emissions share (our
"ecosystem treasury": 21.45 % of max supply, held back at genesis) and the vesting schedule of
the early-supporter and core-contributor buckets (48.55 %, the same share as Allora's investors,
pre-seed and team). Every block then pays that emission first out of the ecosystem account
(where topic fees land, so consumer fees offset minting) and mints only the rest, capped by
the unminted share. ValidatorsVsAlloraPercentReward of it goes to the fee collector (paid out
at end-block, distribution.py), the rest — the block's reward emission E_block, kept in
``meta/mint/reward_block`` — to the rewards account. The "previous percentage of rewards paid
to staked reputers" r that caps the rate starts at 0.3 (genesis) and is recomputed on every
block with ``height % BlocksPerMonth == 0`` as the reputers' part of the rewards paid since the
last recomputation (the epoch hook reports it: ``EpochOutcome.reputer_total``); a month without
payouts keeps the previous r.

A closing reputer nonce's reward budget is spec 5.2 in integers (truncating):
``E_t = w_t · E_block · epochLength_t // Σ w`` (Σ over the active topics' stored weights); if
the topics closing in this block ask for more than the rewards balance B, one topic gets B and
several share B in proportion to ``w_t · epochLength_t``. Every budget of a block is computed
before any payout, so together they never exceed B.
"""

from __future__ import annotations

from typing import Final

from alloranet.chain.actors import pay_reputer_reward
from alloranet.chain.context import BlockContext
from alloranet.chain.epoch_hook import (
    EPOCH_RECORDS_PER_TOPIC,
    EpochContext,
    EpochOutcome,
    EpochProcessor,
    Forecast,
    Inference,
    ReputerReport,
)
from alloranet.chain.errors import InvariantError
from alloranet.chain.ledger import (
    BONDED_POOL,
    ECOSYSTEM,
    FEE_COLLECTOR,
    REWARDS,
    TOPIC_STAKE_POOL,
    Ledger,
)
from alloranet.chain.msgs import ValueBundle
from alloranet.chain.params import compute_topic_params
from alloranet.chain.topics import PPM, WCLOSE, compute_ppm
from alloranet.errors import AlloraError
from alloranet.synthesis.emissions import MintParams, compute_monthly_emission
from alloranet.types import MAX_SUPPLY_UALLO

RCLOSE: Final = b"rclose/"


REPUTER_SHARE_OF_REWARDS: Final = 0.3  # spec 5.6: genesis "previous reputer percentage"


def _mint_params(ctx: BlockContext, cap: int) -> MintParams:
    return MintParams(
        max_supply=MAX_SUPPLY_UALLO,
        ecosystem_treasury_percent=cap / MAX_SUPPLY_UALLO,
        validators_share=ctx.emissions.validators_vs_allora_percent_reward,
        blocks_per_month=ctx.emissions.blocks_per_month,
    )


def process_emission_schedule(ledger: Ledger, ctx: BlockContext, cap: int, minted: int) -> int:
    """The per-block emission of spec 6, recomputed monthly; returns it."""
    month = ctx.emissions.blocks_per_month
    if ctx.height != 1 and ctx.height % month != 1:
        stored: int = ledger.get_meta("mint/per_block", 0)
        return stored
    staked = ledger.get_balance(BONDED_POOL) + ledger.get_balance(TOPIC_STAKE_POOL)
    previous: float | None = ledger.get_meta("mint/rate")
    try:
        schedule = compute_monthly_emission(
            ctx.height,
            staked,
            ledger.get_balance(ECOSYSTEM),
            minted,
            previous,
            get_reputer_share(ledger),
            _mint_params(ctx, cap),
        )
    except AlloraError:  # nothing staked, or a degenerate supply: emit nothing this month
        ledger.set_meta("mint/per_block", 0)
        return 0
    ledger.set_meta("mint/per_block", schedule.per_block)
    ledger.set_meta("mint/rate", schedule.smoothed_rate)
    return schedule.per_block


def get_reputer_share(ledger: Ledger) -> float:
    """r of spec 6: the share of the rewards paid to staked reputers last month."""
    value: float = ledger.get_meta("mint/reputer_share", REPUTER_SHARE_OF_REWARDS)
    return value


def process_reputer_share(ledger: Ledger, ctx: BlockContext) -> None:
    """Monthly (``height % BlocksPerMonth == 0``): r = reputers' payouts / all payouts since
    the last recomputation, one correctly rounded division (deterministic); then reset."""
    if ctx.height % ctx.emissions.blocks_per_month != 0:
        return
    paid: tuple[int, int] = ledger.get_meta("mint/paid", (0, 0))
    total, reputers = paid
    if total > 0:
        ledger.set_meta("mint/reputer_share", reputers / total)
        ledger.kv.delete(b"meta/mint/paid")


def process_mint(ledger: Ledger, ctx: BlockContext) -> None:
    process_reputer_share(ledger, ctx)
    cap: int = ledger.get_meta("emission_cap", 0)
    minted: int = ledger.get_meta("minted", 0)
    if ctx.staking.emission_per_block > 0:
        emission = ctx.staking.emission_per_block
        from_fees = 0
    else:
        emission = process_emission_schedule(ledger, ctx, cap, minted)
        from_fees = min(emission, ledger.get_balance(ECOSYSTEM))
    to_mint = min(emission - from_fees, cap - minted)
    amount = from_fees + max(0, to_mint)
    to_validators = amount * compute_ppm(ctx.emissions.validators_vs_allora_percent_reward) // PPM
    if ledger.get_meta("mint/reward_block", 0) != amount - to_validators:
        ledger.set_meta("mint/reward_block", amount - to_validators)
    if amount <= 0:
        return
    if from_fees:
        ledger.transfer(ECOSYSTEM, REWARDS, from_fees, "emission from fees")
    if to_mint > 0:
        ledger.set_meta("minted", minted + to_mint)
        ledger.mint(REWARDS, to_mint)
    ledger.transfer(REWARDS, FEE_COLLECTOR, to_validators, "validator emission share")


def process_worker_window_closes(ledger: Ledger, ctx: BlockContext) -> None:
    for topic_id, nonce in ledger.take_scheduled(WCLOSE, ctx.height):
        topic = ledger.get_topic(topic_id)
        ledger.set_nonce_open(False, topic_id, nonce, False)
        if topic is None:
            continue
        ledger.set_nonce_open(True, topic_id, nonce, True)
        ledger.schedule(RCLOSE, nonce + 2 * topic.ground_truth_lag, (topic_id, nonce))


def compute_reward_budgets(
    weights: tuple[tuple[int, int, int], ...], total_weight: int, reward_block: int, balance: int
) -> tuple[int, ...]:
    """Spec 5.2 for the topics closing in one block, given as (id, weight w_t, epochLength_t)
    with ``total_weight`` = Σ w of the active topics: ``E_t = w_t·E_block·L_t // Σw``, and if
    ΣE_t exceeds the rewards balance, the whole balance (one topic) or shares of it by
    ``w_t·L_t`` (several). Pure; the result never sums above ``balance``."""
    total = max(total_weight, max((w for _, w, _ in weights), default=0))
    if total <= 0 or balance <= 0:
        return tuple(0 for _ in weights)
    asked = tuple(w * reward_block * length // total for _, w, length in weights)
    if sum(asked) <= balance:
        return asked
    paid = [(w, length) for _, w, length in weights]
    if sum(1 for w, _ in paid if w > 0) == 1:
        return tuple(balance if w > 0 else 0 for w, _ in paid)
    denominator = sum(w * length for w, length in paid)
    return tuple(balance * w * length // denominator for w, length in paid)


def build_epoch_context(
    ledger: Ledger, ctx: BlockContext, topic_id: int, nonce: int, reward_budget: int
) -> EpochContext:
    """Collect (and remove from state) the nonce's payloads, sorted by address."""
    topic = ledger.get_topic(topic_id)
    assert topic is not None
    workers = ledger.take_payloads(False, topic_id, nonce)
    inferences = tuple(Inference(addr, w[0]) for addr, w in workers if w[0] is not None)
    inferers = {i.worker for i in inferences}
    forecasts: list[Forecast] = []
    for addr, w in workers:
        elements = tuple((inferer, value) for inferer, value in w[1] if inferer in inferers)
        if elements:  # forecasts of inferers outside the active set are dropped
            forecasts.append(Forecast(addr, elements))
    reports = tuple(
        ReputerReport(addr, ledger.stake_authority(topic_id, addr), ValueBundle.from_wire(wire))
        for addr, wire in ledger.take_payloads(True, topic_id, nonce)
    )
    for kind in (b"i", b"f", b"r"):
        ledger.kv.delete(b"cnt/" + kind + topic_id.to_bytes(8, "big") + nonce.to_bytes(8, "big"))
    return EpochContext(
        topic_id=topic_id,
        nonce=nonce,
        block_height=ctx.height,
        epoch_length=topic.epoch_length,
        topic=compute_topic_params(topic),
        inferences=inferences,
        forecasts=tuple(forecasts),
        reports=reports,
        synthesis_state=tuple(sorted(ledger.synthesis_families(topic_id).items())),
        params=ctx.emissions,
        reward_budget=reward_budget,
        worker_submission_window=topic.worker_submission_window,
    )


def _check_payouts(pairs: tuple[tuple[str, int], ...], what: str) -> None:
    addresses = [address for address, _ in pairs]
    if addresses != sorted(set(addresses)):
        raise InvariantError(f"epoch outcome: {what} must be sorted by address and unique")
    if any(type(a) is not int or a <= 0 for _, a in pairs):
        raise InvariantError(f"epoch outcome: every {what[:-1]} must be a positive integer")


def process_epoch_outcome(
    ledger: Ledger, ctx: BlockContext, epoch: EpochContext, outcome: EpochOutcome
) -> None:
    """Apply what synthesis returned; refuse anything that would break supply or determinism."""
    _check_payouts(outcome.payouts, "payouts")
    _check_payouts(outcome.reputer_payouts, "reputer payouts")
    totals = dict(outcome.payouts)
    reporters = {r.reputer for r in epoch.reports}
    for address, amount in outcome.reputer_payouts:
        if address not in reporters or amount > totals.get(address, 0):
            raise InvariantError(
                "epoch outcome: a reputer payout must go to a reporting reputer, within its payout"
            )
    if sum(a for _, a in outcome.payouts) > epoch.reward_budget:
        raise InvariantError("epoch outcome: payouts exceed the reward budget")
    families = [family for family, _ in outcome.synthesis_state]
    if families != sorted(set(families)):
        raise InvariantError("epoch outcome: synthesis state families must be sorted and unique")
    for family, packed in outcome.synthesis_state:
        ledger.set_synthesis_state(epoch.topic_id, family, packed)
    as_reputer = dict(outcome.reputer_payouts)
    for address, amount in outcome.payouts:
        reputer_part = as_reputer.get(address, 0)
        if amount > reputer_part:
            ledger.transfer(REWARDS, address, amount - reputer_part, "reward payout")
        if reputer_part:
            pay_reputer_reward(ledger, ctx, epoch.topic_id, address, reputer_part)
    if outcome.record is not None:
        if type(outcome.record) is not bytes:
            raise InvariantError("epoch outcome: the record must be bytes")
        ledger.add_epoch_record(
            epoch.topic_id, epoch.nonce, outcome.record, EPOCH_RECORDS_PER_TOPIC
        )
    total = sum(a for _, a in outcome.payouts)
    if total:
        paid_total, paid_reputers = ledger.get_meta("mint/paid", (0, 0))
        ledger.set_meta(
            "mint/paid", (paid_total + total, paid_reputers + min(outcome.reputer_total, total))
        )


def process_reputer_nonce_closes(
    ledger: Ledger, ctx: BlockContext, processor: EpochProcessor
) -> list[tuple[int, int]]:
    closing: list[tuple[int, int, int, int]] = []  # (topic, nonce, weight, epoch length)
    for topic_id, nonce in ledger.take_scheduled(RCLOSE, ctx.height):
        ledger.set_nonce_open(True, topic_id, nonce, False)
        topic = ledger.get_topic(topic_id)
        if topic is not None:
            closing.append((topic_id, nonce, ledger.get_weight(topic_id), topic.epoch_length))
    if not closing:
        return []
    budgets = compute_reward_budgets(
        tuple((t, w, length) for t, _, w, length in closing),
        sum(ledger.get_weight(t) for t in ledger.active_topics()),
        ledger.get_meta("mint/reward_block", 0),
        ledger.get_balance(REWARDS),
    )
    closed = []
    for (topic_id, nonce, _, _), budget in zip(closing, budgets, strict=True):
        epoch = build_epoch_context(ledger, ctx, topic_id, nonce, budget)
        outcome = processor.process_reputer_nonce_close(epoch)
        process_epoch_outcome(ledger, ctx, epoch, outcome)
        closed.append((topic_id, nonce))
    return closed
