"""The seam between the chain and synthesis: what runs when a reputer nonce closes.

Why a Protocol: the maths of spec/synthesis.md (network losses -> regrets -> scores ->
rewards) lives in alloranet/synthesis/ and is written separately; the chain only promises to
hand it everything it needs, in a deterministic order, and to apply what it returns while
conserving supply. :class:`NoSynthesis` is the trivial implementation the chain ships with: it
stores the closed nonce's payloads as packed state and pays nothing, so the chain runs end to
end before the real processor is wired in.

Contract for an implementation of :class:`EpochProcessor`:

* pure and deterministic: the same context gives the same outcome on every node;
* ``synthesis_state`` updates are whole packed values per family (``None`` deletes); the
  one-out regret families are N x N and must stay one value each (DESIGN.md section 5);
* ``payouts`` are integer base units to (address, amount) pairs, sorted by address, each > 0,
  summing to at most ``ctx.reward_budget``; the chain pays them from the rewards account and
  rejects an outcome that breaks these rules (it raises InvariantError: a synthesis bug must not
  silently corrupt balances).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from alloranet.chain.msgs import ValueBundle
from alloranet.chain.params import EmissionsParams
from alloranet.codec import encode
from alloranet.synthesis import TopicParams

#: Synthesis-state family the chain itself reads: the inferers' score EMAs, stored by the
#: processor as ``encode(((address, ema), ...))`` sorted by address. The chain ranks over-long
#: forecasts by it (spec/synthesis.md 1.1, alloranet.chain.actors.compute_top_forecast).
INFERER_SCORE_EMA = "inferer_score_ema"

#: Closed-nonce records kept in state per topic (the history API's largest page is 500).
EPOCH_RECORDS_PER_TOPIC = 500


@dataclass(frozen=True, slots=True)
class Inference:
    worker: str
    value: float


@dataclass(frozen=True, slots=True)
class Forecast:
    forecaster: str
    elements: tuple[tuple[str, float], ...]  # (inferer, predicted log10 loss), sorted


@dataclass(frozen=True, slots=True)
class ReputerReport:
    reputer: str
    stake: int  # S_m: own + delegated (spec/synthesis.md 1.3)
    bundle: ValueBundle


@dataclass(frozen=True, slots=True)
class EpochContext:
    """Everything synthesis needs for one closing reputer nonce (all lists sorted by address)."""

    topic_id: int
    nonce: int
    block_height: int
    epoch_length: int
    topic: TopicParams  # the topic's synthesis rules (chain.params.compute_topic_params)
    inferences: tuple[Inference, ...]
    forecasts: tuple[Forecast, ...]
    reports: tuple[ReputerReport, ...]
    synthesis_state: tuple[tuple[str, bytes], ...]  # (family, packed value), sorted by family
    params: EmissionsParams
    reward_budget: int
    worker_submission_window: int  # the nonce's worker window closed at nonce + this


@dataclass(frozen=True, slots=True)
class EpochOutcome:
    synthesis_state: tuple[tuple[str, bytes | None], ...] = ()
    payouts: tuple[tuple[str, int], ...] = ()
    events: tuple[tuple[str, str], ...] = field(default=())
    #: how much of ``payouts`` went to reputers (spec 6's r is recomputed from it monthly)
    reputer_total: int = 0
    #: the reputers' rewards W_m within ``payouts`` (sorted, each at most its address's
    #: payout): the chain splits them with delegators and adds the rest to the reputer's stake
    #: (spec 5.4); the rest of a payout goes to the account
    reputer_payouts: tuple[tuple[str, int], ...] = ()
    #: what the API serves for this nonce (network inference, weights, band, losses, rewards)
    #: as deterministic bytes; the chain keeps the newest EPOCH_RECORDS_PER_TOPIC per topic in
    #: state, so every node — restarted, block-synced or state-synced — serves the same history
    record: bytes | None = None


class EpochProcessor(Protocol):
    """Runs network losses, regrets, scores and rewards for one closing reputer nonce."""

    def process_reputer_nonce_close(self, ctx: EpochContext) -> EpochOutcome: ...


class NoSynthesis:
    """Stores the closed nonce's inputs (family ``last_nonce``) and pays nothing."""

    def process_reputer_nonce_close(self, ctx: EpochContext) -> EpochOutcome:
        packed = encode(
            (
                ctx.nonce,
                tuple((i.worker, i.value) for i in ctx.inferences),
                tuple((f.forecaster, f.elements) for f in ctx.forecasts),
                tuple((r.reputer, r.stake, r.bundle.to_wire()) for r in ctx.reports),
            )
        )
        return EpochOutcome(synthesis_state=(("last_nonce", packed),))
