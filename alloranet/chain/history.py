"""Queries of the closed-nonce records the chain keeps in state (the history API's source).

Why in chain state: the record of a closed reputer nonce (network inference with weights and
confidence band, network losses, payouts) is produced by the epoch hook inside block execution
and stored under ``hist/<topic><nonce>``, so it is covered by the app hash and every node —
restarted, block-synced or state-synced — serves identical history. The chain treats a record as
opaque bytes; the epoch hook that writes it defines the format (alloranet/node/epoch.py).
"""

from __future__ import annotations

from alloranet.chain.kv import AppState
from alloranet.chain.ledger import ledger_of


def get_epoch_record(state: AppState, topic_id: int, nonce: int) -> bytes | None:
    return ledger_of(state).get_epoch_record(topic_id, nonce)


def get_recorded_nonces(state: AppState, topic_id: int) -> tuple[int, ...]:
    """Nonces of ``topic_id`` with a record, ascending (at most EPOCH_RECORDS_PER_TOPIC)."""
    return ledger_of(state).recorded_nonces(topic_id)
