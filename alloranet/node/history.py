"""Network-inference and reward history per topic and nonce, as the API serves it.

Where it lives: the epoch hook (alloranet/node/epoch.py) turns each closed reputer nonce into a
record (network inference with weights and band, network losses, payouts by role) that the
chain stores in consensus state (``hist/``, newest 500 nonces per topic;
alloranet/chain/history.py). Given the chain state (``state=``), this class reads it there, so
every node — restarted, block-synced or state-synced — serves the same history and nothing is
kept on the side.

Without a state source it falls back to the node-local ``data/history.jsonl`` it used to keep
(appended when a close is committed, reloaded at start): a node that state-syncs or loses that
file loses its history, which is why the state source is the one to use.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from alloranet.chain.history import get_epoch_record, get_recorded_nonces
from alloranet.chain.kv import AppState
from alloranet.node.epoch import compute_epoch_record, decode_epoch_record

MAX_ENTRIES = 5000


class History:
    def __init__(self, path: Path, state: Callable[[], AppState] | None = None) -> None:
        self.path = path
        self.state = state
        self.entries: OrderedDict[tuple[int, int], dict[str, Any]] = OrderedDict()
        if state is None and path.exists():
            for line in path.read_text().splitlines():
                try:
                    entry = json.loads(line)
                    self._keep(entry)
                except (ValueError, KeyError, TypeError):
                    continue  # a torn last line after a crash

    def _keep(self, entry: dict[str, Any]) -> None:
        self.entries[(int(entry["topic_id"]), int(entry["nonce"]))] = entry
        while len(self.entries) > MAX_ENTRIES:
            self.entries.popitem(last=False)

    def record(
        self, topic_id: int, nonce: int, details: dict[str, Any], window_closes_at: int
    ) -> None:
        """Called when a close is committed; with chain state as the source the block already
        stored the record, so only the file fallback writes."""
        if self.state is not None:
            return
        entry = compute_epoch_record(topic_id, nonce, details, window_closes_at)
        self._keep(entry)
        with self.path.open("a") as handle:
            handle.write(json.dumps(entry) + "\n")

    def get(self, topic_id: int, nonce: int) -> dict[str, Any] | None:
        if self.state is not None:
            data = get_epoch_record(self.state(), topic_id, nonce)
            return None if data is None else decode_epoch_record(data)
        return self.entries.get((topic_id, nonce))

    def latest(self, topic_id: int) -> dict[str, Any] | None:
        if self.state is not None:
            items = self.for_topic(topic_id, 1)
            return items[0] if items else None
        nonces = [n for (t, n) in self.entries if t == topic_id]
        return self.entries[(topic_id, max(nonces))] if nonces else None

    def for_topic(self, topic_id: int, limit: int) -> list[dict[str, Any]]:
        """The newest ``limit`` entries of the topic, newest first."""
        limit = max(0, limit)
        if self.state is not None:
            state = self.state()
            out = []
            for nonce in reversed(get_recorded_nonces(state, topic_id)[-limit:] if limit else ()):
                data = get_epoch_record(state, topic_id, nonce)
                if data is not None:
                    out.append(decode_epoch_record(data))
            return out
        items = [e for (t, _), e in self.entries.items() if t == topic_id]
        items.sort(key=lambda e: int(e["nonce"]), reverse=True)
        return items[:limit]
