"""Test mode: the glue between the admin routes, the p2p fault hook and negative-control switches.

Why a process-wide switch set by ``alloranet start --test-mode``: the chaos harness drives real
node processes from outside, so the faults must be reachable over HTTP, yet a production node
must not even have those routes. The daemon calls :func:`install` and :func:`wrap_signer`
unconditionally; both do nothing unless :func:`enable_test_mode` ran first in this process.

The one deliberately broken behaviour (``--test-unsafe-equivocate``) exists so the chaos
checks can be shown to bite: the validator signs without its signer guard and, for every
prevote for a block, also signs and broadcasts a conflicting nil prevote. Honest nodes must
turn that into committed evidence, and the checker must flag the validator as a double signer.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from alloranet.chain import app as chain
from alloranet.chain.block import Block
from alloranet.chain.evidence import DuplicateVoteEvidence
from alloranet.chain.ledger import ledger_of
from alloranet.chain.signbytes import PREVOTE, proposal_sign_bytes, vote_sign_bytes
from alloranet.consensus.signer import SignerGuard
from alloranet.consensus.types import NIL_BLOCK_ID, Vote, encode_message
from alloranet.crypto import address_from_public_key

if TYPE_CHECKING:
    from alloranet.node.daemon import Node
    from alloranet.node.shell import ConsensusShell

log = logging.getLogger("alloranet.node.faults")


@dataclass(frozen=True)
class TestMode:
    enabled: bool = False
    equivocate: bool = False


_mode = TestMode()


def enable_test_mode(equivocate: bool = False) -> None:
    """Turn test mode on for this process (before the node starts)."""
    global _mode
    _mode = TestMode(enabled=True, equivocate=equivocate)


def is_test_mode() -> bool:
    return _mode.enabled


class EquivocatingSigner(SignerGuard):
    """A signer with the guard removed that double-signs every prevote for a block (test only)."""

    def __init__(self, guard: SignerGuard, shell: ConsensusShell) -> None:
        super().__init__(guard.key, guard.disk, guard.chain_id, guard.name)
        self._shell = shell
        self.equivocations = 0

    def sign_vote(self, vote_type: int, height: int, round_: int, block_id: bytes) -> bytes:
        key = self.key
        signature = key.sign(vote_sign_bytes(self.chain_id, vote_type, height, round_, block_id))
        if vote_type == PREVOTE and block_id != NIL_BLOCK_ID:
            other = key.sign(vote_sign_bytes(self.chain_id, vote_type, height, round_, b""))
            vote = Vote(vote_type, height, round_, NIL_BLOCK_ID, key.public_key, other)
            self._shell.broadcast(encode_message(vote))
            self.equivocations += 1
            log.warning("test mode: equivocating at height %d round %d", height, round_)
        return signature

    def sign_proposal(self, height: int, round_: int, pol_round: int, block_id: bytes) -> bytes:
        sign_bytes = proposal_sign_bytes(self.chain_id, height, round_, pol_round, block_id)
        return self.key.sign(sign_bytes)


def wrap_signer(signer: SignerGuard | None, shell: ConsensusShell) -> SignerGuard | None:
    """The node's signer, or the equivocating one when the negative-control switch is on."""
    if signer is None or not (_mode.enabled and _mode.equivocate):
        return signer
    log.warning("test mode: signer guard DISABLED, this validator will double-sign")
    return EquivocatingSigner(signer, shell)


class FaultController:
    """Implements :class:`alloranet.rpc.admin.AdminApi` on a running node."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.blocked: set[str] = set()

    def faults(self) -> dict[str, Any]:
        host = self.node.host
        return {
            "peer_id": host.peer_id if host is not None else None,
            "blocked": sorted(self.blocked),
            "equivocate": _mode.equivocate,
        }

    def block_peers(self, peer_ids: set[str]) -> dict[str, Any]:
        assert self.node.host is not None
        self.blocked |= peer_ids
        self.node.host.block_peers(set(self.blocked))
        log.warning("test mode: blocking peers %s", sorted(peer_ids))
        return self.faults()

    def unblock_peers(self, peer_ids: set[str] | None) -> dict[str, Any]:
        assert self.node.host is not None
        self.blocked = set() if peer_ids is None else self.blocked - peer_ids
        self.node.host.unblock_peers(peer_ids)
        log.warning("test mode: unblocking %s", "all" if peer_ids is None else sorted(peer_ids))
        return self.faults()

    def validators(self) -> list[dict[str, Any]]:
        assert self.node.app is not None
        ledger = ledger_of(self.node.app.state)
        out = []
        for pubkey in ledger.validator_pubkeys():
            record = ledger.get_validator(pubkey)
            if record is None:
                continue
            out.append(
                {
                    "public_key": pubkey.hex(),
                    "address": address_from_public_key(pubkey),
                    "tokens": str(record.tokens),
                    "jailed": record.jailed,
                    "tombstoned": record.tombstoned,
                }
            )
        return out

    def supply(self) -> dict[str, Any]:
        assert self.node.app is not None
        state = self.node.app.state
        return {
            "height": chain.get_height(state),
            "computed": str(chain.compute_total_supply(state)),
            "recorded": str(ledger_of(state).get_meta("supply", 0)),
        }

    async def evidence(self, height: int) -> list[dict[str, Any]]:
        assert self.node.store is not None
        data = await self.node.store.load_block(height)
        if data is None:
            return []
        out = []
        for wire in Block.from_bytes(data).evidence:
            ev = DuplicateVoteEvidence.from_wire(wire)
            out.append(
                {
                    "address": address_from_public_key(ev.pubkey),
                    "vote_type": ev.vote_type,
                    "height": ev.height,
                    "round": ev.round,
                }
            )
        return out


def install(node: Node) -> None:
    """Mount the admin routes on the node's API server (before it starts) in test mode."""
    if not _mode.enabled or node.api is None:
        return
    from alloranet.rpc.admin import mount_admin

    mount_admin(node.api, FaultController(node))
    log.warning("test mode: admin routes enabled under /v1/admin (never use in production)")
