"""workers and reputers: registration, reputer stake (add, delayed removal, delegation) and
the two payload messages with their windows.

Windows (consensus-critical, chosen to be simple to state and test):

* worker nonce ``n`` opens at the end of block ``n``; a worker payload for it is accepted in
  heights ``n + 1 .. n + WorkerSubmissionWindow`` (first and last block in), one per worker;
* the worker window closes at the end of block ``n + W`` and reputer nonce ``n`` opens;
* a reputer payload is accepted in heights ``n + GroundTruthLag .. n + 2 * GroundTruthLag``
  (spec/synthesis.md 0, step 4), once the worker window has closed, one per reputer, and only if
  the reputer's stake authority is at least RequiredMinimumStake;
* the reputer nonce closes at the end of block ``n + 2 * GroundTruthLag`` (the end of its window)
  and the epoch hook runs (alloranet/chain/epochs.py).

Active-set capacity: without score EMAs every actor has the same EMA, and Allora admits a
newcomer to a full set only with a strictly greater EMA, so a full set refuses newcomers
(MaxTopInferersToReward, MaxTopForecastersToReward, MaxTopReputersToReward).
"""

from __future__ import annotations

from typing import Final

from alloranet.chain.context import BlockContext
from alloranet.chain.epoch_hook import INFERER_SCORE_EMA
from alloranet.chain.errors import (
    InvalidMessageError,
    StakeError,
    UnauthorizedError,
    WindowError,
)
from alloranet.chain.ledger import REWARDS, TOPIC_STAKE_POOL, Ledger, Topic
from alloranet.chain.msgs import (
    MsgAddStake,
    MsgDelegateStake,
    MsgInsertReputerPayload,
    MsgInsertWorkerPayload,
    MsgRegister,
    MsgRemoveDelegateStake,
    MsgRemoveStake,
)
from alloranet.chain.topics import process_activation_check, process_payment, require_topic
from alloranet.codec import decode, sha256
from alloranet.errors import AlloraError
from alloranet.synthesis.rewards import split_reputer_reward

RMQ: Final = b"rmq/"
RDQ: Final = b"rdq/"


def process_register(ledger: Ledger, ctx: BlockContext, signer: str, msg: MsgRegister) -> None:
    topic = require_topic(ledger, msg.topic_id)
    role = "reputer" if msg.is_reputer else "worker"
    if ledger.is_registered(topic.id, signer, msg.is_reputer):
        raise InvalidMessageError(f"register: {signer} is already a {role} of topic {topic.id}")
    ledger.set_registered(topic.id, signer, msg.is_reputer)
    process_payment(ledger, ctx, signer, topic, ctx.emissions.registration_fee, "registration fee")


def _add_topic_stake(
    ledger: Ledger, ctx: BlockContext, topic_id: int, payer: str, amount: int
) -> None:
    ledger.transfer(payer, TOPIC_STAKE_POOL, amount, "stake")
    ledger.set_topic_stake(topic_id, ledger.get_topic_stake(topic_id) + amount)
    process_activation_check(ledger, ctx, topic_id)


def process_add_stake(ledger: Ledger, ctx: BlockContext, signer: str, msg: MsgAddStake) -> None:
    topic = require_topic(ledger, msg.topic_id)
    if not ledger.is_registered(topic.id, signer, True):
        raise UnauthorizedError(f"add_stake: {signer} is not a reputer of topic {topic.id}")
    ledger.set_reputer_stake(
        topic.id, signer, ledger.get_reputer_stake(topic.id, signer) + msg.amount
    )
    _add_topic_stake(ledger, ctx, topic.id, signer, msg.amount)


def process_remove_stake(
    ledger: Ledger, ctx: BlockContext, signer: str, msg: MsgRemoveStake
) -> None:
    topic = require_topic(ledger, msg.topic_id)
    stake = ledger.get_reputer_stake(topic.id, signer)
    pending = ledger.get_pending_removal(topic.id, signer)
    if msg.amount > stake - pending:
        raise StakeError(
            f"remove_stake: {msg.amount} exceeds the removable stake {stake - pending} "
            f"(stake {stake}, already pending removal {pending})"
        )
    ledger.set_pending_removal(topic.id, signer, pending + msg.amount)
    due = ctx.height + ctx.emissions.remove_stake_delay_window
    ledger.schedule(RMQ, due, (topic.id, signer, msg.amount, ctx.height))


def process_stake_removals(ledger: Ledger, ctx: BlockContext) -> None:
    """End-block: pay out stake removals whose delay has passed."""
    for topic_id, reputer, amount, _ in ledger.take_scheduled(RMQ, ctx.height):
        stake = ledger.get_reputer_stake(topic_id, reputer)
        paid = min(amount, stake)
        ledger.set_reputer_stake(topic_id, reputer, stake - paid)
        ledger.set_topic_stake(topic_id, ledger.get_topic_stake(topic_id) - paid)
        ledger.set_pending_removal(
            topic_id, reputer, max(0, ledger.get_pending_removal(topic_id, reputer) - amount)
        )
        ledger.transfer(TOPIC_STAKE_POOL, reputer, paid, "stake removal")


def process_delegate_stake(
    ledger: Ledger, ctx: BlockContext, signer: str, msg: MsgDelegateStake
) -> None:
    topic = require_topic(ledger, msg.topic_id)
    if not ledger.is_registered(topic.id, msg.reputer, True):
        raise UnauthorizedError(
            f"delegate_stake: {msg.reputer} is not a reputer of topic {topic.id}"
        )
    ledger.add_reputer_delegation(topic.id, msg.reputer, signer, msg.amount)
    _add_topic_stake(ledger, ctx, topic.id, signer, msg.amount)


def process_remove_delegate_stake(
    ledger: Ledger, ctx: BlockContext, signer: str, msg: MsgRemoveDelegateStake
) -> None:
    topic = require_topic(ledger, msg.topic_id)
    delegated = ledger.get_reputer_delegation(topic.id, msg.reputer, signer)
    pending = ledger.get_pending_delegation_removal(topic.id, msg.reputer, signer)
    if msg.amount > delegated - pending:
        raise StakeError(
            f"remove_delegate_stake: {msg.amount} exceeds the removable delegation "
            f"{delegated - pending} (delegated {delegated}, already pending removal {pending})"
        )
    ledger.set_pending_delegation_removal(topic.id, msg.reputer, signer, pending + msg.amount)
    due = ctx.height + ctx.emissions.remove_stake_delay_window
    ledger.schedule(RDQ, due, (topic.id, msg.reputer, signer, msg.amount, ctx.height))


def process_delegation_removals(ledger: Ledger, ctx: BlockContext) -> None:
    """End-block: pay out delegated-stake removals whose delay has passed."""
    for topic_id, reputer, delegator, amount, _ in ledger.take_scheduled(RDQ, ctx.height):
        delegated = ledger.get_reputer_delegation(topic_id, reputer, delegator)
        paid = min(amount, delegated)
        ledger.add_reputer_delegation(topic_id, reputer, delegator, -paid)
        ledger.set_topic_stake(topic_id, ledger.get_topic_stake(topic_id) - paid)
        pending = ledger.get_pending_delegation_removal(topic_id, reputer, delegator)
        ledger.set_pending_delegation_removal(
            topic_id, reputer, delegator, max(0, pending - amount)
        )
        ledger.transfer(TOPIC_STAKE_POOL, delegator, paid, "delegation removal")


def pay_reputer_reward(
    ledger: Ledger, ctx: BlockContext, topic_id: int, reputer: str, reward: int
) -> None:
    """Split a reputer's epoch reward W_m (spec/synthesis.md 5.4, Allora's
    ``GetRewardForReputerFromTotalReward``) and pay it out of the rewards account.

    Delegators get ⌊W_m · delegated / S_m⌋ (S_m = own + delegated stake), each its
    ⌊· delegation / delegated⌋ part, sent to its account at once (Allora keeps it in a pool
    with a reward-per-share accumulator to be claimed: the same amounts, without a claim
    message); the floor dust stays with the reputer. The reputer's part is added to its stake
    in the topic, as in Allora, so its weight compounds; it withdraws it like any stake."""
    own = ledger.get_reputer_stake(topic_id, reputer)
    delegated = ledger.get_delegated_to(topic_id, reputer)
    _, to_delegators = split_reputer_reward(reward, own, delegated)
    paid = 0
    for delegator in ledger.reputer_delegators(topic_id, reputer):
        share = to_delegators * ledger.get_reputer_delegation(topic_id, reputer, delegator)
        share //= delegated
        if share:
            ledger.transfer(REWARDS, delegator, share, "delegator reward")
            paid += share
    kept = reward - paid
    if kept:
        ledger.set_reputer_stake(topic_id, reputer, own + kept)
        ledger.transfer(REWARDS, TOPIC_STAKE_POOL, kept, "reputer reward to stake")
        ledger.set_topic_stake(topic_id, ledger.get_topic_stake(topic_id) + kept)
        process_activation_check(ledger, ctx, topic_id)


def _count_key(kind: bytes, topic_id: int, nonce: int) -> bytes:
    return b"cnt/" + kind + topic_id.to_bytes(8, "big") + nonce.to_bytes(8, "big")


def _bump_count(
    ledger: Ledger, kind: bytes, topic_id: int, nonce: int, cap: int, what: str
) -> None:
    key = _count_key(kind, topic_id, nonce)
    raw = ledger.kv.get(key)
    count = 0 if raw is None else int.from_bytes(raw, "big")
    if count >= cap:
        raise WindowError(f"{what}: the active set of nonce {nonce} is full ({cap})")
    ledger.kv.set(key, (count + 1).to_bytes(4, "big"))


def get_inferer_score_emas(ledger: Ledger, topic_id: int) -> dict[str, float]:
    """The topic's inferer score EMAs, as the epoch hook stored them (family
    ``INFERER_SCORE_EMA``: canonical ``((address, ema), ...)``); empty before the first close."""
    packed = ledger.get_synthesis_state(topic_id, INFERER_SCORE_EMA)
    if packed is None:
        return {}
    try:
        return {str(a): float(v) for a, v in decode(packed, max_size=64 << 20)}
    except (AlloraError, TypeError, ValueError):
        return {}  # not the documented shape: rank every inferer as unscored


def compute_top_forecast(
    forecast: tuple[tuple[str, float], ...],
    scores: dict[str, float],
    height: int,
    limit: int,
) -> tuple[tuple[str, float], ...]:
    """spec/synthesis.md 1.1: keep the ``limit`` elements whose inferers have the highest score
    EMA (an inferer without one scores 0, as Allora's default score), ties broken by a
    pseudo-random order seeded by the block height (SHA-256 of height and address, so every
    node draws the same); the kept elements stay sorted by address."""
    seed = height.to_bytes(8, "big")

    def rank(element: tuple[str, float]) -> tuple[float, bytes]:
        return (-scores.get(element[0], 0.0), sha256(seed + element[0].encode()))

    kept = sorted(forecast, key=rank)[:limit]
    return tuple(sorted(kept))


def _validate_submission(
    ledger: Ledger,
    ctx: BlockContext,
    signer: str,
    topic: Topic,
    nonce: int,
    reputer: bool,
    window: tuple[int, int],
) -> None:
    """The signer is registered in the role, the nonce's window is open and includes this
    height (``window`` = first and last height), and this is the signer's first payload."""
    what, role = ("reputer_payload", "reputer") if reputer else ("worker_payload", "worker")
    if not ledger.is_registered(topic.id, signer, reputer):
        raise UnauthorizedError(f"{what}: {signer} is not a {role} of topic {topic.id}")
    first, last = window
    if not (ledger.is_nonce_open(reputer, topic.id, nonce) and first <= ctx.height <= last):
        raise WindowError(
            f"{what}: no open {role} window for nonce {nonce} of topic {topic.id} at height "
            f"{ctx.height} (a window is heights nonce+{first - nonce} .. nonce+{last - nonce})"
        )
    if ledger.get_payload(reputer, topic.id, nonce, signer) is not None:
        raise WindowError(f"{what}: {signer} already submitted for nonce {nonce}")


def process_worker_payload(
    ledger: Ledger, ctx: BlockContext, signer: str, msg: MsgInsertWorkerPayload
) -> None:
    topic = require_topic(ledger, msg.topic_id)
    n = msg.nonce
    _validate_submission(
        ledger, ctx, signer, topic, n, False, (n + 1, n + topic.worker_submission_window)
    )
    for inferer, _ in msg.forecast:
        if not ledger.is_registered(topic.id, inferer, False):
            raise InvalidMessageError(
                f"worker_payload: forecasted {inferer} is not a worker of the topic"
            )
    forecast = msg.forecast
    if len(forecast) > ctx.emissions.max_elements_per_forecast:
        forecast = compute_top_forecast(
            forecast,
            get_inferer_score_emas(ledger, topic.id),
            ctx.height,
            ctx.emissions.max_elements_per_forecast,
        )
    if msg.inference is not None:
        _bump_count(
            ledger, b"i", topic.id, n, ctx.emissions.max_top_inferers_to_reward, "worker_payload"
        )
    if msg.forecast:
        _bump_count(
            ledger, b"f", topic.id, n, ctx.emissions.max_top_forecasters_to_reward, "worker_payload"
        )
    ledger.set_payload(False, topic.id, n, signer, (msg.inference, forecast))
    process_payment(ledger, ctx, signer, topic, ctx.emissions.data_sending_fee, "data sending fee")


def process_reputer_payload(
    ledger: Ledger, ctx: BlockContext, signer: str, msg: MsgInsertReputerPayload
) -> None:
    topic = require_topic(ledger, msg.topic_id)
    n = msg.nonce
    lag = topic.ground_truth_lag
    _validate_submission(ledger, ctx, signer, topic, n, True, (n + lag, n + 2 * lag))
    stake = ledger.stake_authority(topic.id, signer)
    if stake < ctx.emissions.required_minimum_stake:
        raise StakeError(
            f"reputer_payload: stake {stake} is below the required minimum "
            f"{ctx.emissions.required_minimum_stake}"
        )
    _bump_count(
        ledger, b"r", topic.id, n, ctx.emissions.max_top_reputers_to_reward, "reputer_payload"
    )
    ledger.set_payload(True, topic.id, n, signer, msg.bundle.to_wire())
    process_payment(ledger, ctx, signer, topic, ctx.emissions.data_sending_fee, "data sending fee")
