"""The node's synthesis epoch hook on a simulated topic: it stores state, pays, never raises."""

from __future__ import annotations

import json
import math

from alloranet.chain.epoch_hook import EpochContext, Forecast, Inference, ReputerReport
from alloranet.chain.msgs import ValueBundle
from alloranet.chain.params import EmissionsParams
from alloranet.codec import decode
from alloranet.crypto import PrivateKey
from alloranet.node.epoch import SynthesisProcessor, compute_module_params, inference_json
from alloranet.synthesis import TopicParams
from alloranet.worker.simulation import World

SEED = 7


def _addresses(prefix: str, n: int) -> list[str]:
    return sorted(PrivateKey.from_label(f"{prefix}{i}").address for i in range(n))


WORKERS = _addresses("w", 4)
FORECASTERS = _addresses("f", 2)
REPUTERS = _addresses("r", 2)


def _loss(truth: float, value: float) -> float:
    return math.log10(max((truth - value) ** 2, 1e-18))


def _bundle(truth: float, values: dict[str, float]) -> ValueBundle:
    mean = sum(values.values()) / len(values)

    def without(w: str) -> float:
        rest = [v for a, v in values.items() if a != w]
        return sum(rest) / len(rest)

    return ValueBundle(
        combined=_loss(truth, mean),
        naive=_loss(truth, mean),
        inferer_values=tuple((w, _loss(truth, v)) for w, v in sorted(values.items())),
        forecaster_values=tuple((f, _loss(truth, mean)) for f in FORECASTERS),
        one_out_inferer_values=tuple((w, _loss(truth, without(w))) for w in WORKERS),
        one_out_forecaster_values=tuple((f, _loss(truth, mean)) for f in FORECASTERS),
        one_in_forecaster_values=tuple((f, _loss(truth, mean)) for f in FORECASTERS),
        one_out_inferer_forecaster_values=tuple(
            (f, tuple((w, _loss(truth, without(w))) for w in WORKERS)) for f in FORECASTERS
        ),
    )


def _context(world: World, nonce: int, state: tuple[tuple[str, bytes], ...]) -> EpochContext:
    truth = world.ground_truth(nonce)
    inferences = tuple(Inference(w, world.predict(i, nonce)) for i, w in enumerate(WORKERS))
    forecasts = tuple(
        Forecast(f, tuple((w, world.forecast_loss(k, i, nonce)) for i, w in enumerate(WORKERS)))
        for k, f in enumerate(FORECASTERS)
    )
    values = {i.worker: i.value for i in inferences}
    # Each reputer reads the truth with its own small error, so their reports differ.
    bundles = [_bundle(truth + 0.01 * (m + 1), values) for m in range(len(REPUTERS))]
    return EpochContext(
        topic_id=1,
        nonce=nonce,
        block_height=nonce + 16,
        epoch_length=8,
        topic=TopicParams(  # p_norm 3, epsilon 0.01, merit-sortition alpha 0.1: defaults
            alpha_regret=0.5,
            **{f"active_{kind}_quantile": 0.25 for kind in ("inferer", "forecaster", "reputer")},
        ),
        inferences=inferences,
        forecasts=forecasts,
        reports=tuple(ReputerReport(r, 10**21, b) for r, b in zip(REPUTERS, bundles, strict=True)),
        synthesis_state=state,
        params=EmissionsParams(),
        reward_budget=10**21,
        worker_submission_window=4,
    )


def _run(epochs: int) -> list[tuple[object, ...]]:
    world = World(SEED, len(WORKERS))
    processor = SynthesisProcessor()
    state: dict[str, bytes] = {}
    outcomes = []
    for epoch in range(epochs):
        nonce = 8 * (epoch + 1)
        outcome = processor.process_reputer_nonce_close(
            _context(world, nonce, tuple(sorted(state.items())))
        )
        for family, packed in outcome.synthesis_state:
            if packed is None:
                state.pop(family, None)
            else:
                state[family] = packed
        outcomes.append((outcome.synthesis_state, outcome.payouts, outcome.events))
        if outcome.payouts:
            rewards = processor.details[(1, nonce)]["rewards"]
            reputers = sum(a for _, a in rewards.reputer_payouts if a > 0)
            assert 0 < outcome.reputer_total == reputers <= sum(a for _, a in outcome.payouts)
        if epoch == epochs - 1:
            details = processor.details[(1, nonce)]
            view = inference_json(1, nonce, details["inference"], details["round"], nonce + 4)
            weights = [w["weight"] for w in view["inferer_weights"]]
            assert all(w is not None and float(w) >= 0.0 for w in weights), weights
    return outcomes


def test_processor_stores_state_pays_and_is_deterministic() -> None:
    first = _run(6)
    assert first == _run(6), f"seed {SEED}: two runs differ"
    families = {f for f, _ in first[-1][0]}
    assert {"regrets", "losses", "rewards", "inferer_score_ema"} <= families
    emas = dict(decode(dict(first[-1][0])["inferer_score_ema"]))
    assert set(emas) == set(WORKERS) and all(math.isfinite(v) for v in emas.values())
    total_paid = sum(amount for _, amount in first[-1][1])
    assert 0 < total_paid <= 10**21
    assert all(e[0] != "synthesis_skipped" for o in first for e in o[2]), first[-1][2]


def test_module_params_follow_chain_params() -> None:
    params = EmissionsParams(c_norm=0.5)
    assert compute_module_params(params).c_norm == 0.5


def test_epoch_record_goes_to_chain_state_and_history_serves_it(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The record is built inside the close (deterministic bytes), stored by the chain, and the
    History reading chain state serves exactly what the old node-local file served."""
    from alloranet.chain.kv import AppState, Overlay
    from alloranet.chain.ledger import Ledger
    from alloranet.node.epoch import compute_epoch_record, decode_epoch_record
    from alloranet.node.history import History

    world = World(SEED, len(WORKERS))
    processor, twin = SynthesisProcessor(), SynthesisProcessor()
    families: dict[str, bytes] = {}
    kv = Overlay(AppState.empty())
    file_history = History(tmp_path / "history.jsonl")
    for epoch in range(3):
        nonce = 8 * (epoch + 1)
        ctx = _context(world, nonce, tuple(sorted(families.items())))
        outcome = processor.process_reputer_nonce_close(ctx)
        assert outcome.record is not None
        assert twin.process_reputer_nonce_close(ctx).record == outcome.record  # deterministic
        details = processor.details[(1, nonce)]
        assert decode_epoch_record(outcome.record) == json.loads(
            json.dumps(compute_epoch_record(1, nonce, details, nonce + 4))
        )
        file_history.record(1, nonce, details, nonce + 4)
        Ledger(kv).add_epoch_record(1, nonce, outcome.record, keep=2)
        families.update({f: p for f, p in outcome.synthesis_state if p is not None})
    state = AppState.empty().apply(kv.changes())
    chain_history = History(tmp_path / "unused.jsonl", state=lambda: state)
    assert not (tmp_path / "unused.jsonl").exists()
    # the chain keeps the newest two; those read back exactly as the file had them
    assert [e["nonce"] for e in chain_history.for_topic(1, 10)] == [24, 16]
    for entry in chain_history.for_topic(1, 10):
        assert entry == json.loads(json.dumps(file_history.get(1, entry["nonce"])))
    assert chain_history.get(1, 8) is None
    latest = chain_history.latest(1)
    assert latest is not None and latest["nonce"] == 24
    assert latest["inference"]["network_inferences"]["combined_value"] is not None
    assert chain_history.for_topic(1, 0) == [] and chain_history.latest(2) is None
