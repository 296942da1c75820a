"""What a message handler may know about the block it runs in."""

from __future__ import annotations

from dataclasses import dataclass

from alloranet.chain.params import EmissionsParams, StakingParams


@dataclass(frozen=True, slots=True)
class BlockContext:
    chain_id: str
    height: int
    time_ms: int
    proposer: bytes
    emissions: EmissionsParams
    staking: StakingParams
