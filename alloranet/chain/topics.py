"""topics: creation, funding (pay what you want), fee revenue and drip, weight, activation,
and the per-topic epoch boundary that opens worker nonces.

Topic weight (spec/synthesis.md 5.1) in exact integers: with the default exponents
mu = nu = 1/2, ``w_hat = isqrt(S_t * C_t // epoch_length)`` (S_t topic stake, C_t fee revenue,
both base units), and ``w = w_hat`` the first time, else the EMA
``(a * w_hat + (10**6 - a) * w_prev) // 10**6`` with ``a`` = TopicRewardAlpha in parts per
million. No pow(), so every node computes the same bits (DESIGN.md section 4). Other exponents
are not supported and are refused at genesis.

Epoch boundary (spec/synthesis.md 0, step 1-2) at the end of block b for each topic scheduled
there: update and store its weight, drip its fee revenue, deactivate it if the weight is below
MinTopicWeight, else reschedule it at b + epoch_length; of those still active, the
MaxActiveTopicsPerBlock heaviest (ties: lower topic id) open worker nonce b.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Final

from alloranet.chain.context import BlockContext
from alloranet.chain.errors import InvalidMessageError, NotFoundError
from alloranet.chain.ledger import ECOSYSTEM, Ledger, Topic
from alloranet.chain.msgs import MsgCreateTopic, MsgFundTopic

SCHED: Final = b"sched/"
WCLOSE: Final = b"wclose/"
PPM: Final = 1_000_000


def compute_ppm(fraction: float) -> int:
    """The one documented float -> integer conversion for coefficients: round to ppm."""
    return round(fraction * PPM)


def require_topic(ledger: Ledger, topic_id: int) -> Topic:
    topic = ledger.get_topic(topic_id)
    if topic is None:
        raise NotFoundError(f"topic {topic_id} does not exist")
    return topic


def compute_target_weight(stake: int, revenue: int, epoch_length: int) -> int:
    if revenue == 0 or stake == 0:
        return 0
    return math.isqrt(stake * revenue // epoch_length)


def compute_weight(ledger: Ledger, ctx: BlockContext, topic: Topic) -> int:
    """The topic's current weight (EMA of the target weight), without storing it."""
    target = compute_target_weight(
        ledger.get_topic_stake(topic.id), ledger.get_fee_revenue(topic.id), topic.epoch_length
    )
    previous = ledger.get_weight(topic.id)
    if target == 0:
        return 0
    if previous == 0:
        return target
    alpha = compute_ppm(ctx.emissions.topic_reward_alpha)
    return (alpha * target + (PPM - alpha) * previous) // PPM


def process_payment(
    ledger: Ledger, ctx: BlockContext, payer: str, topic: Topic, amount: int, what: str
) -> None:
    """Pay a topic fee into the ecosystem account, credit the topic's revenue, maybe activate."""
    ledger.transfer(payer, ECOSYSTEM, amount, what)
    ledger.set_fee_revenue(topic.id, ledger.get_fee_revenue(topic.id) + amount)
    process_activation_check(ledger, ctx, topic.id)


def process_activation_check(ledger: Ledger, ctx: BlockContext, topic_id: int) -> None:
    """Activate an inactive topic whose current weight reached MinTopicWeight."""
    topic = ledger.get_topic(topic_id)
    if topic is None or topic.active:
        return
    if compute_weight(ledger, ctx, topic) >= ctx.emissions.min_topic_weight:
        ledger.set_topic(replace(topic, active=True))
        ledger.set_topic_active(topic.id, True)
        ledger.schedule(SCHED, ctx.height + topic.epoch_length, topic.id)


def process_create_topic(
    ledger: Ledger, ctx: BlockContext, signer: str, msg: MsgCreateTopic
) -> int:
    msg.validate_basic()
    if msg.epoch_length < ctx.emissions.min_epoch_length:
        raise InvalidMessageError(
            f"create_topic: epoch_length {msg.epoch_length} is below the minimum "
            f"{ctx.emissions.min_epoch_length}"
        )
    topic_id: int = ledger.get_meta("next_topic_id", 1)
    topic = Topic(
        **msg.rules(), id=topic_id, creator=signer, active=False, created_height=ctx.height
    )
    ledger.set_meta("next_topic_id", topic_id + 1)
    ledger.set_topic(topic)
    process_payment(ledger, ctx, signer, topic, ctx.emissions.create_topic_fee, "create_topic fee")
    return topic_id


def process_fund_topic(ledger: Ledger, ctx: BlockContext, signer: str, msg: MsgFundTopic) -> None:
    topic = require_topic(ledger, msg.topic_id)
    process_payment(ledger, ctx, signer, topic, msg.amount, "fund_topic")


def compute_drip(revenue: int, blocks_per_month: int, epoch_length: int) -> int:
    """Revenue left after one epoch's drip: C - C / epochsPerWeek, never below zero."""
    epochs_per_week_milli = blocks_per_month * 1000 // (4345 * epoch_length)
    if epochs_per_week_milli < 1000:  # fewer than one epoch per week: drips everything
        return 0
    return revenue - revenue * 1000 // epochs_per_week_milli


def process_epoch_ends(ledger: Ledger, ctx: BlockContext) -> list[int]:
    """End-block step: topics whose epoch ends now; returns the topic ids that open nonce b."""
    candidates: list[tuple[int, int]] = []
    for topic_id in ledger.take_scheduled(SCHED, ctx.height):
        topic = ledger.get_topic(topic_id)
        if topic is None or not topic.active:
            continue
        weight = compute_weight(ledger, ctx, topic)
        ledger.set_weight(topic.id, weight)
        ledger.set_fee_revenue(
            topic.id,
            compute_drip(
                ledger.get_fee_revenue(topic.id), ctx.emissions.blocks_per_month, topic.epoch_length
            ),
        )
        if weight < ctx.emissions.min_topic_weight:
            ledger.set_topic(replace(topic, active=False))
            ledger.set_topic_active(topic.id, False)
            continue
        ledger.schedule(SCHED, ctx.height + topic.epoch_length, topic.id)
        candidates.append((-weight, topic.id))
    candidates.sort()
    opened = []
    for _, topic_id in candidates[: ctx.emissions.max_active_topics_per_block]:
        topic = require_topic(ledger, topic_id)
        ledger.set_nonce_open(False, topic_id, ctx.height, True)
        ledger.schedule(WCLOSE, ctx.height + topic.worker_submission_window, (topic_id, ctx.height))
        opened.append(topic_id)
    return opened
