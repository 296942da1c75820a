"""Network-inference and reward history per topic and nonce (the node's own record).

Why outside the chain state: the chain keeps only what the next epoch needs (regrets, latest
losses); a nonce's payloads are deleted when its reputer nonce closes. What the API serves as
history — the network inference with its weights, the network losses, the payouts per actor —
is recorded here when the close is committed, appended to ``data/history.jsonl`` and reloaded
at start. A node that synced those blocks records them the same way.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from pathlib import Path
from typing import Any

from alloranet.node.epoch import inference_json, losses_json

MAX_ENTRIES = 5000


class History:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries: OrderedDict[tuple[int, int], dict[str, Any]] = OrderedDict()
        if path.exists():
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
        entry = {
            "topic_id": topic_id,
            "nonce": nonce,
            "close_height": details["close_height"],
            "inference": inference,
            "rewards": payouts,
        }
        self._keep(entry)
        with self.path.open("a") as handle:
            handle.write(json.dumps(entry) + "\n")

    def get(self, topic_id: int, nonce: int) -> dict[str, Any] | None:
        return self.entries.get((topic_id, nonce))

    def latest(self, topic_id: int) -> dict[str, Any] | None:
        nonces = [n for (t, n) in self.entries if t == topic_id]
        return self.entries[(topic_id, max(nonces))] if nonces else None

    def for_topic(self, topic_id: int, limit: int) -> list[dict[str, Any]]:
        items = [e for (t, _), e in self.entries.items() if t == topic_id]
        items.sort(key=lambda e: int(e["nonce"]), reverse=True)
        return items[:limit]
