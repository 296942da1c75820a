"""The signer guard (privval): never sign two different messages for one (height, round, step).

The last signed (height, round, step, sign bytes, signature) is written to its own file with an
atomic replace (temp file, fsync, rename, directory fsync) *before* the signature is returned,
so no signature can leave the process unless the guard will remember it after a crash. Asked
again for the same step with the same bytes (WAL replay after a restart), it returns the stored
signature; asked for different bytes, or for an earlier step, it refuses (spec 1.8).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from alloranet.chain.signbytes import (
    PRECOMMIT,
    PREVOTE,
    proposal_sign_bytes,
    vote_sign_bytes,
)
from alloranet.codec import decode, encode, expect_bytes, expect_int, expect_tuple
from alloranet.consensus.errors import SignerRefusedError
from alloranet.consensus.storage import Disk
from alloranet.consensus.types import KeySigner
from alloranet.errors import DecodeError, KeyFileError

#: Step order inside a round: proposal < prevote < precommit.
STEP_PROPOSAL: Final = 1
STEP_PREVOTE: Final = 2
STEP_PRECOMMIT: Final = 3
_VOTE_STEP: Final = {PREVOTE: STEP_PREVOTE, PRECOMMIT: STEP_PRECOMMIT}


@dataclass(frozen=True, slots=True)
class LastSignState:
    height: int
    round: int
    step: int
    sign_bytes: bytes
    signature: bytes


class SignerGuard:
    """Signs votes and proposals for one key, persisting LastSignState before each signature."""

    def __init__(
        self, key: KeySigner, disk: Disk, chain_id: str, name: str = "priv_validator_state"
    ) -> None:
        self.key = key
        self.disk = disk
        self.chain_id = chain_id
        self.name = name
        self.last = self._load()

    @property
    def public_key(self) -> bytes:
        return self.key.public_key

    def _load(self) -> LastSignState | None:
        data = self.disk.read(self.name)
        if not data:
            return None
        try:
            t = expect_tuple(decode(data), "signer state", 5)
            return LastSignState(
                expect_int(t[0], "height", 0),
                expect_int(t[1], "round", 0),
                expect_int(t[2], "step", 1, 3),
                expect_bytes(t[3], "sign_bytes"),
                expect_bytes(t[4], "signature"),
            )
        except DecodeError as e:
            raise KeyFileError(f"signer state file is corrupt: {e}") from e

    def sign_vote(self, vote_type: int, height: int, round_: int, block_id: bytes) -> bytes:
        sb = vote_sign_bytes(self.chain_id, vote_type, height, round_, block_id)
        return self._sign(height, round_, _VOTE_STEP[vote_type], sb)

    def sign_proposal(self, height: int, round_: int, pol_round: int, block_id: bytes) -> bytes:
        sb = proposal_sign_bytes(self.chain_id, height, round_, pol_round, block_id)
        return self._sign(height, round_, STEP_PROPOSAL, sb)

    def _sign(self, height: int, round_: int, step: int, sign_bytes: bytes) -> bytes:
        last = self.last
        if last is not None:
            hrs, last_hrs = (height, round_, step), (last.height, last.round, last.step)
            if hrs < last_hrs:
                raise SignerRefusedError(f"refusing to sign {hrs}: already signed {last_hrs}")
            if hrs == last_hrs:
                if sign_bytes == last.sign_bytes:
                    return last.signature
                raise SignerRefusedError(f"refusing to sign conflicting data at {hrs}")
        signature = self.key.sign(sign_bytes)
        state = LastSignState(height, round_, step, sign_bytes, signature)
        self.disk.replace_atomic(self.name, encode((height, round_, step, sign_bytes, signature)))
        self.last = state
        return signature
