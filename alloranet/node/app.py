"""The chain as consensus sees it (the Application protocol) and as the mempool sees it.

Why one object: proposing, validating, committing and admitting transactions all read the same
committed state, and must move together when a block commits: the new state, the next validator
sets, the mempool re-check and the decision cache for lagging peers all change in
:meth:`ChainApp.commit_value`, synchronously, before consensus enters the next height. Only the
durable write is deferred to an ordered writer task (the consensus WAL and the block sync cover
a crash before it lands).
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from alloranet.chain import app as chain
from alloranet.chain.block import Block
from alloranet.chain.epoch_hook import EpochProcessor
from alloranet.chain.errors import InsufficientFundsError, SequenceError
from alloranet.chain.evidence import DuplicateVoteEvidence as ChainEvidence
from alloranet.chain.kv import AppState
from alloranet.chain.tx import compute_address, decode_tx, peek_signer
from alloranet.codec import sha256
from alloranet.consensus.evidence import DuplicateVoteEvidence
from alloranet.consensus.types import Commit, Decision
from alloranet.consensus.validators import ValidatorSet, compute_next_sets
from alloranet.consensus.votes import verify_commit
from alloranet.errors import AlloraError
from alloranet.mempool import Mempool
from alloranet.node.chainlink import ValsetFile

log = logging.getLogger("alloranet.node.app")

#: Proposals travel as one gossip message (< 1 MiB with its envelope): cap the tx bytes.
MAX_PROPOSAL_TX_BYTES = 900_000
#: Recent decisions kept in memory to help lagging peers (by their block bytes).
DECISION_CACHE_BYTES = 24 << 20


@dataclass(frozen=True)
class Committed:
    """One committed block, handed to the persistence writer and the other listeners."""

    block: Block
    block_bytes: bytes
    result: chain.BlockResult
    commit: Commit
    tx_hashes: tuple[bytes, ...]
    committed_at: float


class ChainApp:
    def __init__(
        self,
        chain_id: str,
        state: AppState,
        valsets: tuple[ValidatorSet, ValidatorSet],
        valset_file: ValsetFile,
        my_key: bytes | None,
        processor: EpochProcessor,
        last_commit: bytes,
        max_block_txs: int,
        max_block_bytes: int,
    ) -> None:
        self.chain_id = chain_id
        self.state = state
        # (validators for height H+1, next validators for H+2), H = last committed height.
        self._vals, self._next = valsets
        self._prev_vals: ValidatorSet | None = None
        self._valset_file = valset_file
        self.my_key = my_key
        self.processor = processor
        self.last_commit = last_commit
        self.max_block_txs = max_block_txs
        self.max_block_bytes = min(max_block_bytes, MAX_PROPOSAL_TX_BYTES)
        self.mempool: Mempool | None = None
        self._pending_seq: dict[str, int] = {}
        self._verified: OrderedDict[bytes, None] = OrderedDict()
        #: raw pooled tx -> (sender address, sequence, fee): the re-check after each block reads
        #: these instead of decoding every pooled transaction again (it used to cost a full
        #: decode per pooled tx per block, O(mempool) decodes at every height)
        self._tx_meta: dict[bytes, tuple[str, int, int]] = {}
        #: sender -> committed balance, memoised during one re-check pass (reset per block)
        self._balances: dict[str, int] = {}
        self._decisions: OrderedDict[int, Decision] = OrderedDict()
        self._decision_bytes = 0
        self._evidence: dict[tuple[bytes, int, int, int], ChainEvidence] = {}
        self.listeners: list[Callable[[Committed], None]] = []
        #: consensus id (sha256 of the encoded block) of the last committed block
        self.last_block_id = b""

    @property
    def height(self) -> int:
        return chain.get_height(self.state)

    # --- consensus Application ------------------------------------------------------------

    def get_last_height(self) -> int:
        return self.height

    def get_validators(self, height: int) -> ValidatorSet:
        last = self.height
        if height == last + 1:
            return self._vals
        if height == last + 2:
            return self._next
        if height == last and self._prev_vals is not None:
            return self._prev_vals
        raise AlloraError(f"no validator set known for height {height} (at {last})")

    def propose_value(self, height: int, round_: int) -> bytes:
        txs = self.mempool.reap(self.max_block_txs, self.max_block_bytes) if self.mempool else []
        from alloranet.chain.ledger import ledger_of

        previous_time: int = ledger_of(self.state).get_meta("time", 0)
        time_ms = max(int(time.time() * 1000), previous_time + 1)
        assert self.my_key is not None
        # Only evidence the chain accepts goes in (one bad piece would sink the block);
        # evidence it refuses for good (already punished, too old) leaves the pool.
        pending = [self._evidence[key] for key in sorted(self._evidence)]
        included, dead = chain.select_evidence(
            self.state, time_ms=time_ms, proposer=self.my_key, candidates=pending
        )
        for ev in dead:
            self._evidence.pop(self._evidence_key(ev), None)
        block = chain.build_block(
            self.state,
            time_ms=time_ms,
            proposer=self.my_key,
            txs=txs,
            evidence=included,
            last_commit=self.last_commit,
        )
        return block.to_bytes()

    def is_valid_value(self, height: int, value: bytes) -> bool:
        if height != self.height + 1:
            return False
        try:
            block = chain.validate_block(self.state, value)
            prev = self._prev_vals
            if height > 1 and prev is not None:
                # The previous height's commit in the block must itself be valid.
                last = Commit.decode(block.last_commit)
                verify_commit(self.chain_id, prev, height - 1, self.last_block_id, last)
        except AlloraError as exc:
            log.warning("invalid proposal at height %d: %s", height, exc)
            return False
        return True

    def commit_value(self, height: int, value: bytes, commit: Commit) -> None:
        if height != self.height + 1:
            raise AlloraError(f"commit of height {height} while at {self.height}")
        block = Block.from_bytes(value)
        result = chain.execute_block(self.state, block, self.processor, self._verified)
        self.state = result.state
        self._prev_vals = self._vals
        self._vals, self._next = compute_next_sets(self._next, result.validator_updates)
        self._valset_file.put(height, self._vals, self._next)
        self.last_commit = commit.encode()
        self.last_block_id = commit.block_id
        self._decisions[height] = Decision(value, commit)
        self._decision_bytes += len(value)
        # Bounded by count and by bytes: full blocks are ~1 MB each (RSS budget 200 MB/node);
        # peers lagging further behind catch up through block sync instead.
        while len(self._decisions) > 512 or (
            self._decision_bytes > DECISION_CACHE_BYTES and len(self._decisions) > 1
        ):
            _, old = self._decisions.popitem(last=False)
            self._decision_bytes -= len(old.value)
        for wire in block.evidence:
            self._evidence.pop(self._evidence_key(ChainEvidence.from_wire(wire)), None)
        tx_hashes = tuple(sha256(tx) for tx in block.txs)
        for tx, tx_hash in zip(block.txs, tx_hashes, strict=True):
            self._verified.pop(tx_hash, None)
            self._tx_meta.pop(tx, None)
        if self.mempool is not None:
            self.mempool.update(block.txs, tx_hashes)
            if len(self._tx_meta) > 2 * len(self.mempool) + 10_000:
                self._tx_meta = {}  # stray entries (never expected): the re-check decodes instead
        committed = Committed(block, value, result, commit, tx_hashes, time.time())
        for listener in self.listeners:
            try:
                listener(committed)
            except Exception:
                log.exception("commit listener failed at height %d", height)

    def record_final_commit(self, commit: Commit) -> None:
        """Carry the fullest commit of the height just finished (consensus.RecordsFinalCommit).

        Why: the deciding commit holds only the first precommits past 2/3; the chain's downtime
        tracking counts the signers of the next block's last commit, so the precommits that
        arrived during timeout_commit must be kept or healthy validators look offline."""
        if commit.height != self.height or commit.block_id != self.last_block_id:
            return  # a late offer for an older height: the next block carries another commit
        if self.last_commit and len(commit.signatures) <= len(
            Commit.decode(self.last_commit).signatures
        ):
            return
        self.last_commit = commit.encode()
        decided = self._decisions.get(commit.height)
        if decided is not None:
            self._decisions[commit.height] = Decision(decided.value, commit)

    def get_decision(self, height: int) -> Decision | None:
        return self._decisions.get(height)

    # --- evidence -------------------------------------------------------------------------

    @staticmethod
    def _evidence_key(ev: ChainEvidence) -> tuple[bytes, int, int, int]:
        return (ev.pubkey, ev.height, ev.round, ev.vote_type)

    def add_evidence(self, evidence: DuplicateVoteEvidence) -> None:
        a, b = evidence.vote_a, evidence.vote_b
        ev = ChainEvidence(
            a.validator, a.vote_type, a.height, a.round, a.block_id, a.signature,
            b.block_id, b.signature,
        )  # fmt: skip
        self._evidence[self._evidence_key(ev)] = ev

    # --- mempool TxChecker ----------------------------------------------------------------

    def check(self, tx: bytes, recheck: bool) -> None:
        if recheck:
            self._recheck(tx)
            return
        # The sender's next sequence counts the transactions already pooled for it; the signer
        # is peeked from the envelope so the transaction is decoded once (in check_tx).
        signer = peek_signer(tx)
        expected = self._pending_seq.get(compute_address(signer)) if signer else None
        decoded = chain.check_tx(self.state, tx, expected_sequence=expected)
        sender = decoded.signer_address
        self._verified[decoded.hash] = None
        while len(self._verified) > 200_000:
            self._verified.popitem(last=False)
        self._tx_meta[tx] = (sender, decoded.body.sequence, decoded.body.fee)
        self._pending_seq[sender] = decoded.body.sequence + 1

    def _recheck(self, tx: bytes) -> None:
        """Sequence and fee against the new committed state; the signature was verified at
        admission and the decoded fields were kept then (decoded again only if missing)."""
        meta = self._tx_meta.get(tx)
        if meta is None:
            decoded = decode_tx(tx)
            meta = (decoded.signer_address, decoded.body.sequence, decoded.body.fee)
            self._tx_meta[tx] = meta
        sender, sequence, fee = meta
        expected = self._pending_seq.get(sender)
        if expected is None:
            expected = chain.get_next_sequence(self.state, sender)
        if sequence != expected:
            del self._tx_meta[tx]
            raise SequenceError(f"tx sequence {sequence} is not the next sequence {expected}")
        balance = self._balances.get(sender)
        if balance is None:
            balance = self._balances[sender] = chain.get_balance(self.state, sender)
        if balance < fee:
            del self._tx_meta[tx]
            raise InsufficientFundsError("fee exceeds the balance")
        self._pending_seq[sender] = sequence + 1

    def reset(self) -> None:
        self._pending_seq = {}
        self._balances = {}
