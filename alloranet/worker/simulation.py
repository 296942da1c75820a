"""The simulated world of the local testnet: a ground truth, contexts, models good in some.

It follows the self-improvement benchmark's context set-up (setup B): a hidden context decides
which worker is accurate at each nonce; forecasters see the context (not the realised loss) and
predict each inferer's log10 loss from it; reputers read the synthetic ground truth and report
log10 squared errors. Everything is a pure function of (seed, nonce), so every actor process and
every restart agrees on the world without talking to each other.
"""

from __future__ import annotations

import hashlib
import math
import random

#: Error standard deviations of a worker inside / outside its context.
GOOD_SIGMA = 0.2
BAD_SIGMA = 2.0


def _rng(seed: int, *parts: object) -> random.Random:
    digest = hashlib.sha256(repr((seed, *parts)).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


class World:
    def __init__(self, seed: int, contexts: int) -> None:
        if contexts < 1:
            raise ValueError("need at least one context")
        self.seed = seed
        self.contexts = contexts

    def context(self, nonce: int) -> int:
        return _rng(self.seed, "context", nonce).randrange(self.contexts)

    def ground_truth(self, nonce: int) -> float:
        """A smooth signal plus noise: a stand-in for a price at the nonce's block."""
        noise = _rng(self.seed, "truth", nonce).gauss(0.0, 1.0)
        return 100.0 + 10.0 * math.sin(nonce / 40.0) + noise

    def worker_sigma(self, worker: int, nonce: int) -> float:
        return GOOD_SIGMA if worker % self.contexts == self.context(nonce) else BAD_SIGMA

    def predict(self, worker: int, nonce: int) -> float:
        """Worker ``worker``'s inference: the truth plus its context-dependent error."""
        error = _rng(self.seed, "worker", worker, nonce).gauss(
            0.0, self.worker_sigma(worker, nonce)
        )
        return self.ground_truth(nonce) + error

    def forecast_loss(self, forecaster: int, worker: int, nonce: int) -> float:
        """A forecaster's predicted log10 loss of ``worker``: from the context, with noise."""
        expected = math.log10(self.worker_sigma(worker, nonce) ** 2)
        return expected + _rng(self.seed, "forecast", forecaster, worker, nonce).gauss(0.0, 0.1)
