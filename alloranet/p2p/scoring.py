"""Peer scores: invalid data costs points, time gives them back, too low means a ban.

Why our own: gossipsub's ScoreParams default to all-zero weights (scoring off), and it has no
notion of our application's validity. The host calls :meth:`PeerScores.penalise` on every
REJECT verdict, malformed frame or protocol violation and disconnects a peer whose score
falls to the threshold; a banned peer is refused and not redialled until the ban ends.
Pure bookkeeping with an injected clock, so it is unit-testable.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

#: Default penalty weights by reason (points subtracted).
PENALTIES: Final[dict[str, float]] = {
    "invalid_message": 10.0,
    "malformed_frame": 30.0,
    "oversize": 30.0,
    "protocol_violation": 20.0,
}
DEFAULT_PENALTY: Final = 10.0
_MAX_TRACKED: Final = 10_000


class PeerScores:
    def __init__(
        self,
        *,
        threshold: float,
        ban_seconds: float,
        decay_per_s: float,
        now: Callable[[], float],
    ) -> None:
        self._threshold = threshold
        self._ban_seconds = ban_seconds
        self._decay = decay_per_s
        self._now = now
        self._scores: dict[str, tuple[float, float]] = {}  # peer -> (score, at)
        self._banned: dict[str, float] = {}  # peer -> until

    def get_score(self, peer_id: str) -> float:
        score, at = self._scores.get(peer_id, (0.0, self._now()))
        return min(0.0, score + self._decay * (self._now() - at))

    def penalise(self, peer_id: str, reason: str) -> bool:
        """Subtract the reason's penalty; True when the peer is now banned."""
        score = self.get_score(peer_id) - PENALTIES.get(reason, DEFAULT_PENALTY)
        if len(self._scores) >= _MAX_TRACKED and peer_id not in self._scores:
            self._forget_recovered()
        self._scores[peer_id] = (score, self._now())
        if score <= self._threshold:
            self._banned[peer_id] = self._now() + self._ban_seconds
            self._scores.pop(peer_id, None)
            return True
        return False

    def is_banned(self, peer_id: str) -> bool:
        until = self._banned.get(peer_id)
        if until is None:
            return False
        if self._now() >= until:
            del self._banned[peer_id]
            return False
        return True

    def banned(self) -> set[str]:
        return {peer for peer in list(self._banned) if self.is_banned(peer)}

    def _forget_recovered(self) -> None:
        for peer in [p for p in self._scores if self.get_score(p) >= 0.0]:
            del self._scores[peer]
