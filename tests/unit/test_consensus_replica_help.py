"""A lagging peer's requests draw stored decisions from us, but only a few per peer per tick.

Why it matters: a decision carries a whole block while the request can be a 100-byte message,
so answering every stale message would let one peer amplify its bandwidth without bound.
"""

from __future__ import annotations

from alloranet.consensus import timeouts as T
from alloranet.consensus.errors import ConsensusError
from alloranet.consensus.evidence import DuplicateVoteEvidence
from alloranet.consensus.replica import HELP_PER_PEER_PER_TICK, Replica
from alloranet.consensus.storage import MemoryDisk
from alloranet.consensus.types import (
    Commit,
    CommitSig,
    Decision,
    DecisionRequest,
    compute_value_id,
    decode_message,
    encode_message,
)
from alloranet.consensus.validators import ValidatorSet, compute_genesis_sets
from alloranet.consensus.wal import WAL
from alloranet.crypto import PrivateKey

KEY = PrivateKey.from_label("help-test").signer()
LAST = 6


class StoredApp:
    """An application with heights 1..LAST committed (commits are not re-verified here)."""

    def __init__(self) -> None:
        self.validators, _ = compute_genesis_sets([(KEY.public_key, 1)])

    def get_last_height(self) -> int:
        return LAST

    def get_validators(self, height: int) -> ValidatorSet:
        return self.validators

    def propose_value(self, height: int, round_: int) -> bytes:
        return b"v"

    def is_valid_value(self, height: int, value: bytes) -> bool:
        return True

    def commit_value(self, height: int, value: bytes, commit: Commit) -> None:
        raise AssertionError("nothing is committed in this test")

    def get_decision(self, height: int) -> Decision | None:
        value = b"block-%d" % height
        sig = CommitSig(KEY.public_key, b"\x00" * 64)
        return Decision(value, Commit(height, 0, compute_value_id(value), (sig,)))


class Sent:
    def __init__(self) -> None:
        self.to: list[tuple[str, int]] = []

    def broadcast(self, data: bytes) -> None:
        pass

    def send(self, peer: str, data: bytes) -> None:
        msg = decode_message(data)
        assert isinstance(msg, Decision)
        self.to.append((peer, msg.commit.height))

    def schedule(self, delay: float, event: object) -> None:
        pass

    def penalise(self, peer: str, error: ConsensusError | Exception) -> None:
        raise AssertionError(f"{peer} penalised: {error}")

    def report_evidence(self, evidence: DuplicateVoteEvidence) -> None:
        pass


def test_decisions_per_peer_per_tick_are_bounded() -> None:
    sent = Sent()
    replica = Replica("help", StoredApp(), WAL(MemoryDisk()), sent, T.LOCAL)  # type: ignore[arg-type]
    replica.start()
    assert replica.height == LAST + 1
    for _ in range(3):  # every stale height asked three times by each of two peers
        for height in range(1, LAST + 1):
            for peer in ("p", "q"):
                replica.on_message(encode_message(DecisionRequest(height)), peer)
    assert sent.to.count(("p", 1)) == 1, "the same decision is sent once per tick"
    for peer in ("p", "q"):
        assert sum(1 for p, _ in sent.to if p == peer) == HELP_PER_PEER_PER_TICK
    sent.to.clear()
    replica.rebroadcast()  # the next tick: each peer may draw again
    replica.on_message(encode_message(DecisionRequest(LAST)), "p")
    assert sent.to == [("p", LAST)]
