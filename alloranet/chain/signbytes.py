"""The exact bytes validators sign for proposals and votes.

Why here, in chain/: the chain must verify double-sign evidence inside blocks, and the
consensus layer signs the same bytes; imports point from consensus down to chain, so the one
definition lives at the lower layer and both use it. The domain tag and the chain id stop a
signature from one chain or one message kind being replayed as another.
"""

from __future__ import annotations

from typing import Final

from alloranet.codec import encode

PROPOSAL: Final = 0x20
PREVOTE: Final = 0x01
PRECOMMIT: Final = 0x02
VOTE_TYPES: Final = (PREVOTE, PRECOMMIT)
#: A nil vote carries this empty block id.
NIL_BLOCK_ID: Final = b""


def vote_sign_bytes(
    chain_id: str, vote_type: int, height: int, round_: int, block_id: bytes
) -> bytes:
    """Canonical bytes of a prevote or precommit (block_id is 32 bytes, or b"" for nil)."""
    return encode(("alloranet/vote/v1", chain_id, vote_type, height, round_, block_id))


def proposal_sign_bytes(
    chain_id: str, height: int, round_: int, pol_round: int, block_id: bytes
) -> bytes:
    """Canonical bytes of a proposal (pol_round = the proposal's valid round, -1 if none)."""
    return encode(
        ("alloranet/proposal/v1", chain_id, PROPOSAL, height, round_, pol_round, block_id)
    )
