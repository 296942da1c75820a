"""The chain's epoch hook filled with the real synthesis (spec/synthesis.md 2-5).

Why in the node package: the chain ships a trivial :class:`NoSynthesis` and the synthesis
package ships pure maths; this module connects them (node may import both) and is injected
into the chain's block execution by the daemon. It is pure and deterministic like both sides:
the same :class:`EpochContext` gives the same :class:`EpochOutcome` on every node.

Per closing reputer nonce: network losses from the stake-weighted reputer bundles → all nine
regret families (with the topic's initial regret from experienced workers) → scores → reward
fractions → integer payouts within ``ctx.reward_budget``. Stored per topic as whole packed
values (one per family, DESIGN.md section 5): ``regrets``, ``losses`` (the latest network
losses, used by the next network inference), ``rewards`` (smoothed fractions), ``listening``
(reputer listening coefficients), ``samples`` (recent score records), ``inclusions``.

It also keeps, outside consensus, a :attr:`SynthesisProcessor.details` note of what each close
computed (losses per worker, payouts per actor) for the node's history API.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from alloranet.chain.epoch_hook import (
    INFERER_SCORE_EMA,
    EpochContext,
    EpochOutcome,
    ReputerReport,
)

# re-exported: the daemon converts parameters for queries with the same two functions
from alloranet.chain.params import compute_module_params as compute_module_params
from alloranet.chain.params import compute_topic_params as compute_topic_params
from alloranet.codec import decode, encode
from alloranet.errors import AlloraError
from alloranet.synthesis import (
    LossReports,
    NetworkInferences,
    NetworkLosses,
    RegretState,
    ReputerReports,
    RewardState,
    SynthesisError,
    WorkerRound,
    compute_network_inferences,
    compute_network_losses,
    compute_regret_update,
    compute_rewards,
    compute_scores,
)
from alloranet.synthesis.ema import ema_scalar

NAN = float("nan")


def _family(families: Mapping[str, bytes], name: str) -> Any:
    packed = families.get(name)
    return None if packed is None else decode(packed, max_size=256 << 20, max_depth=8)


def load_regrets(families: Mapping[str, bytes]) -> RegretState:
    wire = _family(families, "regrets")
    return RegretState.empty() if wire is None else RegretState.from_wire(wire)


def load_losses(families: Mapping[str, bytes]) -> NetworkLosses | None:
    wire = _family(families, "losses")
    return None if wire is None else NetworkLosses.from_wire(wire)


def compute_round(
    inferences: Mapping[str, float], forecasts: Mapping[str, Mapping[str, float]]
) -> WorkerRound:
    return WorkerRound.from_mappings(inferences, forecasts)


def compute_reports(round_: WorkerRound, reports: tuple[ReputerReport, ...]) -> ReputerReports:
    """Align every reputer's bundle to the round's sorted workers (NaN = not reported)."""
    inf = {a: j for j, a in enumerate(round_.inferers)}
    fc = {a: k for k, a in enumerate(round_.forecasters)}
    m, n, k = len(reports), len(inf), len(fc)

    def row(pairs: tuple[tuple[str, float], ...], index: Mapping[str, int], size: int) -> Any:
        out = np.full(size, NAN)
        for address, value in pairs:
            if address in index and math.isfinite(value):
                out[index[address]] = value
        return out

    nested = np.full((m, k, n), NAN)
    for r, report in enumerate(reports):
        for forecaster, values in report.bundle.one_out_inferer_forecaster_values:
            if forecaster in fc:
                nested[r, fc[forecaster]] = row(values, inf, n)
    b = [r.bundle for r in reports]
    lr = LossReports(
        stakes=np.array([float(r.stake) for r in reports], dtype=np.float64),
        combined=np.array([x.combined for x in b], dtype=np.float64),
        naive=np.array([x.naive for x in b], dtype=np.float64),
        inferer=np.array([row(x.inferer_values, inf, n) for x in b]).reshape(m, n),
        forecaster=np.array([row(x.forecaster_values, fc, k) for x in b]).reshape(m, k),
        oneout_inferer=np.array([row(x.one_out_inferer_values, inf, n) for x in b]).reshape(m, n),
        oneout_forecaster=np.array([row(x.one_out_forecaster_values, fc, k) for x in b]).reshape(
            m, k
        ),
        onein=np.array([row(x.one_in_forecaster_values, fc, k) for x in b]).reshape(m, k),
        oneout_inferer_forecaster=nested,
    )
    return ReputerReports(
        tuple(r.reputer for r in reports), round_.inferers, round_.forecasters, lr
    )


def _pairs(m: Mapping[str, float]) -> tuple[tuple[str, float], ...]:
    return tuple((a, float(m[a])) for a in sorted(m))


class SynthesisProcessor:
    """The chain's EpochProcessor running the real synthesis."""

    def __init__(self) -> None:
        #: (topic, nonce) -> what the last close computed (for the node's history only)
        self.details: dict[tuple[int, int], dict[str, Any]] = {}

    def process_reputer_nonce_close(self, ctx: EpochContext) -> EpochOutcome:
        families = dict(ctx.synthesis_state)
        if not ctx.inferences or not ctx.reports:
            return EpochOutcome()
        try:
            return self._process(ctx, families)
        except (SynthesisError, AlloraError, ValueError, ArithmeticError) as exc:
            # Degenerate input (e.g. every loss missing): no update, no payout, on every node.
            # Never raise: an exception here would halt the chain at this block.
            return EpochOutcome(events=(("synthesis_skipped", f"{ctx.nonce}: {exc}"),))

    def _process(self, ctx: EpochContext, families: dict[str, bytes]) -> EpochOutcome:
        topic = ctx.topic
        module = compute_module_params(ctx.params)
        round_ = compute_round(
            {i.worker: i.value for i in ctx.inferences},
            {f.forecaster: dict(f.elements) for f in ctx.forecasts},
        )
        regrets = load_regrets(families)
        inference = compute_network_inferences(
            topic, module, round_, regrets, load_losses(families)
        )
        reports = compute_reports(round_, ctx.reports)
        losses = compute_network_losses(reports)

        counts: dict[str, int] = dict(_family(families, "inclusions") or ())
        for address in (*round_.inferers, *round_.forecasters):
            counts[address] = counts.get(address, 0) + 1
        threshold = 1.0 / topic.alpha_regret
        experienced = frozenset(a for a, c in counts.items() if c >= threshold)
        new_regrets = compute_regret_update(
            topic, module, regrets, losses, experienced, experienced
        )

        listening = dict(_family(families, "listening") or ())
        scores = compute_scores(topic, module, losses, reports, listening)
        samples_wire = _family(families, "samples") or ((), ())
        keep = module.max_samples_to_scale_scores * max(1, len(round_.inferers))
        inf_samples = tuple(float(x) for x in scores.inferer if math.isfinite(x)) + tuple(
            samples_wire[0]
        )
        keep_f = module.max_samples_to_scale_scores * max(1, len(round_.forecasters))
        fc_samples = tuple(float(x) for x in scores.forecaster if math.isfinite(x)) + tuple(
            samples_wire[1]
        )
        inf_samples, fc_samples = inf_samples[:keep], fc_samples[:keep_f]
        reward_wire = _family(families, "rewards")
        previous = (
            RewardState({}, {}, {}) if reward_wire is None else RewardState.from_wire(reward_wire)
        )
        stakes = np.array([float(r.stake) for r in ctx.reports], dtype=np.float64)
        rewards = compute_rewards(
            topic,
            module,
            ctx.reward_budget,
            scores,
            losses,
            stakes,
            np.array(inf_samples, dtype=np.float64),
            np.array(fc_samples, dtype=np.float64),
            previous,
        )
        payouts: dict[str, int] = {}
        for address, amount in (
            *rewards.inferer_payouts,
            *rewards.forecaster_payouts,
            *rewards.reputer_payouts,
        ):
            if amount > 0:
                payouts[address] = payouts.get(address, 0) + amount
        emas: dict[str, float] = dict(_family(families, INFERER_SCORE_EMA) or ())
        for address, score in zip(scores.inferers, scores.inferer, strict=True):
            if math.isfinite(float(score)):  # spec 4.4 EMA, alpha = MeritSortitionAlpha
                emas[address] = ema_scalar(
                    topic.merit_sortition_alpha, float(score), emas.get(address)
                )
        coefficients = {
            a: float(c)
            for a, c in zip(scores.reputers, scores.listening_coefficients, strict=True)
            if math.isfinite(float(c))
        }
        state = (
            ("inclusions", encode(tuple(sorted(counts.items())))),
            (INFERER_SCORE_EMA, encode(_pairs(emas))),
            ("listening", encode(_pairs(coefficients))),
            ("losses", encode(losses.to_wire())),
            ("regrets", encode(new_regrets.to_wire())),
            ("rewards", encode(_finite_reward_state(rewards.state).to_wire())),
            ("samples", encode((inf_samples, fc_samples))),
        )
        details = {
            "inference": inference,
            "round": round_,
            "losses": losses,
            "rewards": rewards,
            "close_height": ctx.block_height,
        }
        self.details[(ctx.topic_id, ctx.nonce)] = details
        record = compute_epoch_record(
            ctx.topic_id, ctx.nonce, details, ctx.nonce + ctx.worker_submission_window
        )
        while len(self.details) > 64:
            self.details.pop(next(iter(self.details)))
        return EpochOutcome(
            synthesis_state=state,
            payouts=tuple(sorted(payouts.items())),
            events=(("synthesis", f"{ctx.topic_id}:{ctx.nonce}"),),
            reputer_total=sum(a for _, a in rewards.reputer_payouts if a > 0),
            reputer_payouts=tuple(
                (a, amount) for a, amount in rewards.reputer_payouts if amount > 0
            ),
            record=encode_epoch_record(record),
        )


def _finite_reward_state(state: RewardState) -> RewardState:
    """Drop non-finite smoothed fractions (a worker without a score this round): the
    canonical encoding has no NaN, and a missing entry means "no history" to synthesis."""

    def keep(m: Mapping[str, float]) -> dict[str, float]:
        return {a: float(v) for a, v in m.items() if math.isfinite(float(v))}

    ratio = state.score_ratio if math.isfinite(state.score_ratio) else 0.0
    return RewardState(
        keep(state.inferer_smoothed),
        keep(state.forecaster_smoothed),
        keep(state.reputer_smoothed),
        ratio,
    )


# --- JSON views (Allora's GetLatestNetworkInferences shape where it has one) ---------------


def _num(value: float) -> str | None:
    return None if not math.isfinite(value) else repr(float(value))


def _attributed(addresses: tuple[str, ...], values: Any) -> list[dict[str, Any]]:
    return [
        {"worker": a, "value": _num(float(v))}
        for a, v in zip(addresses, values, strict=True)
        if math.isfinite(float(v))
    ]


def inference_json(
    topic_id: int, nonce: int, ni: NetworkInferences, round_: WorkerRound, window_closes_at: int
) -> dict[str, Any]:
    from alloranet.synthesis.inference import BAND_PERCENTILES

    v = ni.values
    one_out_if = [
        {"forecaster": f, "values": _attributed(ni.inferers, v.forecast_implied_oneout[k])}
        for k, f in enumerate(ni.forecasters)
    ]
    bundle = {
        "topic_id": str(topic_id),
        "reputer_request_nonce": {"reputer_nonce": None, "worker_nonce": {"block_height": nonce}},
        "combined_value": _num(v.combined),
        "naive_value": _num(v.naive),
        "inferer_values": _attributed(round_.inferers, round_.inferences),
        "forecaster_values": _attributed(ni.forecasters, v.forecast_implied),
        "one_out_inferer_values": _attributed(ni.inferers, v.oneout_inferers),
        "one_out_forecaster_values": _attributed(ni.forecasters, v.oneout_forecasters),
        "one_in_forecaster_values": _attributed(ni.forecasters, v.onein),
        "one_out_inferer_forecaster_values": one_out_if,
    }
    return {
        "network_inferences": bundle,
        "inferer_weights": [
            {"worker": a, "weight": _num(float(w))}
            for a, w in zip(ni.inferers, v.inferer_weights, strict=True)
        ],
        "forecaster_weights": [
            {"worker": a, "weight": _num(float(w))}
            for a, w in zip(ni.forecasters, v.forecaster_weights, strict=True)
        ],
        "forecast_implied_inferences": _attributed(ni.forecasters, v.forecast_implied),
        "inference_block_height": str(window_closes_at),
        "loss_block_height": None,
        "confidence_interval_raw_percentiles": [repr(p) for p in BAND_PERCENTILES],
        "confidence_interval_values": [_num(float(x)) for x in v.confidence_band],
        "nonce": nonce,
    }


def losses_json(losses: NetworkLosses) -> dict[str, Any]:
    v = losses.values
    return {
        "combined_loss": _num(v.combined),
        "naive_loss": _num(v.naive),
        "inferer_losses": _attributed(losses.inferers, v.inferer),
        "forecaster_losses": _attributed(losses.forecasters, v.forecaster),
    }


def compute_epoch_record(
    topic_id: int, nonce: int, details: Mapping[str, Any], window_closes_at: int
) -> dict[str, Any]:
    """The history entry of a closed nonce: the network inference view (with the network
    losses it was scored by) and every payout by role — what the history API serves."""
    inference = inference_json(
        topic_id, nonce, details["inference"], details["round"], window_closes_at
    )
    inference["loss_block_height"] = str(details["close_height"])
    inference["losses"] = losses_json(details["losses"])
    rewards = details["rewards"]
    payouts = [
        {"actor": a, "role": role, "amount": str(amount)}
        for role, items in (
            ("inferer", rewards.inferer_payouts),
            ("forecaster", rewards.forecaster_payouts),
            ("reputer", rewards.reputer_payouts),
        )
        for a, amount in items
    ]
    return {
        "topic_id": topic_id,
        "nonce": nonce,
        "close_height": details["close_height"],
        "inference": inference,
        "rewards": payouts,
    }


def encode_epoch_record(entry: Mapping[str, Any]) -> bytes:
    """Deterministic bytes of an entry for chain state: compact JSON with sorted keys. Every
    number in it is an int or a float's ``repr`` string, both the same on every node."""
    return json.dumps(entry, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def decode_epoch_record(data: bytes) -> dict[str, Any]:
    entry: dict[str, Any] = json.loads(data)
    return entry
