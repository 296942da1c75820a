"""Timeout durations: linear growth per round, reset at each height (spec 1.3, 1.5).

Why presets: tests and the simulator want blocks well under a second (CometBFT's
TestConsensusConfig, scaled), production wants CometBFT's defaults. The core only reads these
numbers; the shell turns them into timers on its injected clock.
"""

from __future__ import annotations

from dataclasses import dataclass

from alloranet.errors import ConfigError

PROPOSE = 0
PREVOTE_WAIT = 1
PRECOMMIT_WAIT = 2
COMMIT = 3
TIMEOUT_KINDS = (PROPOSE, PREVOTE_WAIT, PRECOMMIT_WAIT, COMMIT)


@dataclass(frozen=True, slots=True)
class TimeoutConfig:
    propose: float
    propose_delta: float
    prevote: float
    prevote_delta: float
    precommit: float
    precommit_delta: float
    commit: float
    skip_timeout_commit: bool

    def __post_init__(self) -> None:
        for name in (
            "propose",
            "propose_delta",
            "prevote",
            "prevote_delta",
            "precommit",
            "precommit_delta",
            "commit",
        ):
            v = getattr(self, name)
            if not (0 <= v <= 3600):
                raise ConfigError(f"timeout {name} must be in [0, 3600] s, got {v}")

    def compute_timeout(self, kind: int, round_: int) -> float:
        """Seconds to wait for ``kind`` in ``round_``: init + round * delta."""
        if kind == PROPOSE:
            return self.propose + round_ * self.propose_delta
        if kind == PREVOTE_WAIT:
            return self.prevote + round_ * self.prevote_delta
        if kind == PRECOMMIT_WAIT:
            return self.precommit + round_ * self.precommit_delta
        return self.commit


#: CometBFT's DefaultConsensusConfig (about one block per 1-1.3 s on an idle 4-node net).
PRODUCTION = TimeoutConfig(3.0, 0.5, 1.0, 0.5, 1.0, 0.5, 1.0, False)
#: CometBFT's TestConsensusConfig scaled x2.5 for Python: blocks well under a second locally.
LOCAL = TimeoutConfig(0.1, 0.0025, 0.025, 0.0025, 0.025, 0.0025, 0.025, True)
#: The simulator's timings (simulated seconds): like LOCAL with more per-round growth, so that
#: rounds eventually outlast any bounded message delay.
SIMULATION = TimeoutConfig(0.1, 0.02, 0.04, 0.02, 0.04, 0.02, 0.02, True)
