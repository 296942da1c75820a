"""Read-only JSON views of the committed state for the HTTP API and the CLI.

Why strings for amounts: balances reach 1e27 base units, beyond what JSON numbers carry
exactly in most clients (Allora's REST API does the same).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from alloranet.chain import app as chain
from alloranet.chain.block import Block
from alloranet.chain.kv import AppState
from alloranet.chain.ledger import BONDED_POOL, Ledger, ledger_of
from alloranet.crypto import address_from_public_key, validate_address
from alloranet.rpc.api import NotFoundError


def _u64(value: int) -> bytes:
    return value.to_bytes(8, "big")


def account_view(state: AppState, address: str) -> dict[str, Any]:
    validate_address(address)
    ledger = ledger_of(state)
    pubkey, sequence = ledger.get_account(address)
    return {
        "address": address,
        "balance": str(ledger.get_balance(address)),
        "sequence": sequence,
        "public_key": pubkey.hex() if pubkey else None,
    }


def block_view(block: Block, block_id: bytes | None = None) -> dict[str, Any]:
    from alloranet.codec import sha256

    h = block.header
    return {
        "height": h.height,
        "hash": h.hash.hex(),
        "block_id": (block_id or b"").hex() or None,
        "time_ms": h.time_ms,
        "chain_id": h.chain_id,
        "prev_block_hash": h.prev_block_hash.hex(),
        "app_hash": h.app_hash.hex(),
        "proposer": address_from_public_key(h.proposer),
        "num_txs": len(block.txs),
        "txs": [sha256(tx).hex() for tx in block.txs],
        "evidence": len(block.evidence),
        "evidence_items": _evidence_items(block.evidence),
        "last_commit_signers": _commit_signers(block.last_commit),
    }


def _evidence_items(wires: Any) -> list[dict[str, Any]]:
    """Who each committed piece of double-sign evidence accuses, and for which vote.

    Why in the public block view: that a double signer was caught is a fact of the chain,
    readable by any client (the chaos checks rest on it), not an admin-only detail."""
    from alloranet.chain.evidence import DuplicateVoteEvidence

    out = []
    for wire in wires:
        try:
            ev = DuplicateVoteEvidence.from_wire(wire)
        except Exception:
            continue
        out.append(
            {
                "address": address_from_public_key(ev.pubkey),
                "vote_type": ev.vote_type,
                "height": ev.height,
                "round": ev.round,
            }
        )
    return out


def _commit_signers(data: bytes) -> list[str]:
    """Addresses whose precommits for the previous block this block carries."""
    if not data:
        return []
    from alloranet.consensus.types import Commit

    try:
        commit = Commit.decode(data)
    except Exception:
        return []
    return sorted(address_from_public_key(s.validator) for s in commit.signatures)


def supply_view(state: AppState) -> dict[str, Any]:
    """The token supply the chain records (minted by emissions, burnt by slashing) and the part
    bonded to validators, at the latest height; amounts in uallo as decimal strings."""
    ledger = ledger_of(state)
    return {
        "height": chain.get_height(state),
        "supply": str(ledger.get_meta("supply", 0)),
        "bonded": str(ledger.get_balance(BONDED_POOL)),
    }


def validators_view(state: AppState) -> list[dict[str, Any]]:
    """Every validator record with its voting power in the set that signs the next block
    (0 when jailed, unbonded or outside the set) and its missed blocks in the downtime window:
    what an operator checks after slashing or downtime."""
    ledger = ledger_of(state)
    power = dict(chain.get_validator_set(state))
    out = []
    for pubkey in ledger.validator_pubkeys():
        record = ledger.get_validator(pubkey)
        if record is None:
            continue
        signing = ledger.get_signing_info(pubkey)
        out.append(
            {
                "address": address_from_public_key(pubkey),
                "public_key": pubkey.hex(),
                "operator": record.operator,
                "power": power.get(pubkey, 0),
                "tokens": str(record.tokens),
                "jailed": record.jailed,
                "jailed_until_ms": record.jailed_until_ms,
                "tombstoned": record.tombstoned,
                # blocks missed in the current downtime window (chain/liveness.py)
                "missed_blocks": 0 if signing is None else signing[1],
            }
        )
    return sorted(out, key=lambda v: v["address"])


def _addresses(ledger: Ledger, prefix: bytes) -> list[str]:
    return sorted(key[len(prefix) :].decode() for key, _ in ledger.kv.items_with_prefix(prefix))


def _nonces(ledger: Ledger, prefix: bytes) -> list[int]:
    return sorted(
        int.from_bytes(key[len(prefix) :], "big") for key, _ in ledger.kv.items_with_prefix(prefix)
    )


def topic_ids(state: AppState) -> list[int]:
    ledger = ledger_of(state)
    return sorted(
        int.from_bytes(key[len(b"topic/") :], "big")
        for key, _ in ledger.kv.items_with_prefix(b"topic/")
    )


def topic_view(state: AppState, topic_id: int) -> dict[str, Any]:
    """The topic's rules, money, members and open windows (what a worker SDK watches)."""
    ledger = ledger_of(state)
    topic = ledger.get_topic(topic_id)
    if topic is None:
        raise NotFoundError(f"no topic {topic_id}")
    height = chain.get_height(state)
    view = asdict(topic)
    tid = _u64(topic_id)
    worker_nonces = _nonces(ledger, b"wopen/" + tid)
    reputer_nonces = _nonces(ledger, b"ropen/" + tid)
    latest = max(worker_nonces) if worker_nonces else None
    reputers = _addresses(ledger, b"reputer/" + tid)
    view.update(
        {
            "height": height,
            "fee_revenue": str(ledger.get_fee_revenue(topic_id)),
            "weight": str(ledger.get_weight(topic_id)),
            "stake": str(ledger.get_topic_stake(topic_id)),
            "workers": _addresses(ledger, b"worker/" + tid),
            "reputers": reputers,
            "reputer_stakes": [
                {
                    "address": r,
                    "stake": str(ledger.get_reputer_stake(topic_id, r)),
                    "delegated": str(ledger.get_delegated_to(topic_id, r)),
                }
                for r in reputers
            ],
            "worker_nonce": None
            if latest is None
            else {
                "nonce": latest,
                "window_closes_at": latest + topic.worker_submission_window,
            },
            "reputer_nonces": [
                {
                    "nonce": n,
                    "window_opens_at": n + topic.ground_truth_lag,
                    "window_closes_at": n + 2 * topic.ground_truth_lag,
                }
                for n in reputer_nonces
            ],
        }
    )
    return view


def topic_summaries(state: AppState) -> list[dict[str, Any]]:
    ledger = ledger_of(state)
    out = []
    for topic_id in topic_ids(state):
        topic = ledger.get_topic(topic_id)
        assert topic is not None
        out.append(
            {
                "id": topic.id,
                "metadata": topic.metadata,
                "active": topic.active,
                "epoch_length": topic.epoch_length,
                "weight": str(ledger.get_weight(topic_id)),
            }
        )
    return out


def worker_payloads(state: AppState, topic_id: int, nonce: int) -> list[tuple[str, Any]]:
    """The nonce's stored worker payloads (inference, forecast) sorted by worker."""
    from alloranet.codec import decode

    ledger = ledger_of(state)
    prefix = Ledger.payload_key(False, topic_id, nonce)
    return [
        (key[len(prefix) :].decode(), decode(raw))
        for key, raw in ledger.kv.items_with_prefix(prefix)
    ]


def tx_result(tx_hash: bytes, status: str, error: str | None = None) -> dict[str, Any]:
    """One entry of a batch submission's results: ``pending`` (admitted), ``known`` (already
    pooled or committed), ``rejected`` (invalid: ``error`` says why) or ``unavailable`` (the pool
    is full: resubmit later)."""
    out: dict[str, Any] = {"hash": tx_hash.hex(), "status": status}
    if error is not None:
        out["error"] = error
    return out
