"""The application: check a transaction, validate and execute a block, build a block.

Why this is the whole interface the node needs: consensus treats a block as opaque bytes and
asks the chain two questions (is this proposal valid? what state and app hash does it lead
to?); the mempool asks one (may this transaction enter?). Everything here is a pure function
of (state, input): no clock, no randomness, no I/O.

Transaction processing (decides which failures still cost a fee, as a Cosmos ante handler):

1. *Ante*: decode with limits, chain id, signature, sequence == the account's next sequence,
   balance >= fee. A failure here changes nothing (the tx is not charged: nobody proved they
   may spend the account, or it is a replay).
2. Ante passed: the sequence is incremented and the fee moved to the fee collector; this is
   kept **even if a message then fails** (the tx was authorised and took block space).
3. Messages run in order on one write layer; if any fails, all message effects are discarded
   (protocol fees a message would pay — registration, data sending, create-topic — are part
   of the message and are refunded with it) and the result carries the error's code and text.

Block execution order: header checks, mint, evidence (any invalid evidence rejects the block),
liveness from the last commit (downtime jailing, liveness.py), transactions, then end-block:
matured unbondings, stake removals, topic epoch ends (nonces open), worker windows close,
reputer nonces close (synthesis hook), fee distribution to the validators' delegators
(distribution.py), validator-set updates (entering validators get a fresh liveness record).
"""

from __future__ import annotations

from collections.abc import Callable, Container, Iterable
from dataclasses import dataclass
from typing import Any, Final

from alloranet.chain import actors, bank, distribution, epochs, liveness, staking, topics
from alloranet.chain.block import (
    MAX_EVIDENCE,
    Block,
    Header,
    compute_evidence_hash,
    compute_txs_hash,
)
from alloranet.chain.context import BlockContext
from alloranet.chain.epoch_hook import EpochProcessor, NoSynthesis
from alloranet.chain.errors import (
    BadSignatureError,
    BlockError,
    ChainError,
    InsufficientFundsError,
    InvariantError,
    SequenceError,
    WrongChainError,
)
from alloranet.chain.evidence import DuplicateVoteEvidence
from alloranet.chain.kv import AppState, Overlay
from alloranet.chain.ledger import (
    BONDED_POOL,
    FEE_COLLECTOR,
    TOPIC_STAKE_POOL,
    UNBONDING_POOL,
    Ledger,
)
from alloranet.chain.msgs import (
    Msg,
    MsgAddStake,
    MsgCreateTopic,
    MsgCreateValidator,
    MsgDelegate,
    MsgDelegateStake,
    MsgFundTopic,
    MsgInsertReputerPayload,
    MsgInsertWorkerPayload,
    MsgRegister,
    MsgRemoveDelegateStake,
    MsgRemoveStake,
    MsgSend,
    MsgSubmitEvidence,
    MsgUndelegate,
    MsgUnjail,
)
from alloranet.chain.tx import Tx, decode_tx
from alloranet.codec import decode, sha256
from alloranet.crypto import verify
from alloranet.errors import AlloraError

OK: Final = 0
_NO_SYNTHESIS: Final = NoSynthesis()


@dataclass(frozen=True, slots=True)
class TxResult:
    code: int  # 0 = success, else the ChainError kind's code
    log: str  # the error message, or "" on success
    data: tuple[Any, ...] = ()  # e.g. (topic_id,) for create_topic


@dataclass(frozen=True, slots=True)
class BlockResult:
    height: int
    block_hash: bytes
    state: AppState  # the state after the block
    changes: dict[bytes, bytes | None]  # key-sorted change set to persist
    app_hash: bytes
    tx_results: tuple[TxResult, ...]
    events: tuple[tuple[str, str], ...]
    validator_updates: tuple[tuple[bytes, int], ...]  # (pubkey, power); take effect at H+2


# --- queries -------------------------------------------------------------------------------


def _ledger(state: AppState) -> Ledger:
    return Ledger(Overlay(state))


def get_balance(state: AppState, address: str) -> int:
    return _ledger(state).get_balance(address)


def get_next_sequence(state: AppState, address: str) -> int:
    return _ledger(state).get_account(address)[1]


def get_height(state: AppState) -> int:
    return _ledger(state).height


def get_chain_id(state: AppState) -> str:
    return _ledger(state).chain_id


def get_validator_set(state: AppState, height: int | None = None) -> tuple[tuple[bytes, int], ...]:
    """The validator set, as sorted (pubkey, power), that signs block ``height``.

    Default: the next block (state height + 1). Updates returned by end-block H take effect at
    H+2, so the set is known for state height + 2 at most; :func:`get_latest_validator_set`
    gives the set as of the last end-block.
    """
    ledger = _ledger(state)
    target = ledger.height + 1 if height is None else height
    if target > ledger.height + 2:
        raise ChainError(f"validator set of height {target} is not known yet")
    return staking.get_validator_set_at(ledger, target)


def get_latest_validator_set(state: AppState) -> tuple[tuple[bytes, int], ...]:
    """The set computed by the last end-block (it takes effect two heights later)."""
    value: tuple[tuple[bytes, int], ...] = _ledger(state).get_meta("valset", ())
    return value


def compute_total_supply(state: AppState) -> int:
    """Sum of every balance (module accounts included): all tokens that exist."""
    return sum(decode(v) for _, v in state.items_with_prefix(b"bal/"))


def validate_invariants(state: AppState) -> None:
    """Raise InvariantError if supply or any pool disagrees with the records behind it."""
    ledger = _ledger(state)
    total = compute_total_supply(state)
    recorded = ledger.get_meta("supply", 0)
    if total != recorded:
        raise InvariantError(f"total supply {total} != recorded supply {recorded}")
    minted = ledger.get_meta("minted", 0)
    if minted > ledger.get_meta("emission_cap", 0):
        raise InvariantError("minted more than the network-emissions cap")
    bonded = sum(
        v.tokens
        for v in (ledger.get_validator(k) for k in ledger.validator_pubkeys())
        if v is not None
    )
    if bonded != ledger.get_balance(BONDED_POOL):
        raise InvariantError(f"bonded pool {ledger.get_balance(BONDED_POOL)} != tokens {bonded}")
    unbonding = sum(
        entry[2] for _, raw in state.items_with_prefix(b"ubd/") for entry in decode(raw)
    )
    if unbonding != ledger.get_balance(UNBONDING_POOL):
        raise InvariantError("unbonding pool disagrees with the unbonding entries")
    topic_stake = sum(decode(v) for _, v in state.items_with_prefix(b"tstake/"))
    if topic_stake != ledger.get_balance(TOPIC_STAKE_POOL):
        raise InvariantError("topic stake pool disagrees with the topic stakes")


# --- transactions --------------------------------------------------------------------------


def _validate_ante(
    ledger: Ledger,
    chain_id: str,
    tx: Tx,
    verified: Container[bytes],
    expected_sequence: int | None = None,
) -> int:
    body = tx.body
    if body.chain_id != chain_id:
        raise WrongChainError(f"tx is for chain {body.chain_id!r}, this is {chain_id!r}")
    if tx.hash not in verified and not verify(body.signer, tx.sign_bytes, tx.signature):
        raise BadSignatureError("tx signature does not verify with its signer key")
    address = body.signer_address
    _, sequence = ledger.get_account(address)
    expected = sequence if expected_sequence is None else expected_sequence
    if body.sequence != expected:
        raise SequenceError(
            f"tx sequence {body.sequence} is not the account's next sequence {expected}"
        )
    balance = ledger.get_balance(address)
    if balance < body.fee:
        raise InsufficientFundsError(f"fee {body.fee} exceeds the balance {balance} of {address}")
    return sequence


def check_tx(
    state: AppState,
    tx_bytes: bytes,
    expected_sequence: int | None = None,
    min_fee: int | None = None,
) -> Tx:
    """Mempool admission: decode with limits, chain, signature, sequence, fee. Raises ChainError.

    ``expected_sequence`` lets the mempool admit a sender's next queued transaction (it knows
    how many it already holds); by default the account's next sequence is required.
    """
    ledger = _ledger(state)
    params = ledger.staking_params()
    tx = decode_tx(tx_bytes, params.max_tx_bytes)
    floor = params.min_tx_fee if min_fee is None else max(min_fee, params.min_tx_fee)
    if tx.body.fee < floor:
        raise InsufficientFundsError(f"fee {tx.body.fee} is below the minimum {floor}")
    if len(tx.body.msgs) > params.max_msgs_per_tx:
        raise ChainError(
            f"tx has {len(tx.body.msgs)} messages, the maximum is {params.max_msgs_per_tx}"
        )
    _validate_ante(ledger, ledger.chain_id, tx, (), expected_sequence)
    return tx


def _process_evidence_msg(
    ledger: Ledger, ctx: BlockContext, signer: str, msg: MsgSubmitEvidence
) -> None:
    del signer
    staking.process_evidence(ledger, ctx, DuplicateVoteEvidence.from_wire(msg.evidence))


def _process_create_topic(
    ledger: Ledger, ctx: BlockContext, signer: str, msg: MsgCreateTopic
) -> tuple[int]:
    return (topics.process_create_topic(ledger, ctx, signer, msg),)


#: message type -> handler(ledger, ctx, signer, msg); a handler returning a tuple adds it to
#: the tx result's data (create_topic: the new topic id)
_HANDLERS: Final[dict[type, Callable[[Ledger, BlockContext, str, Any], Any]]] = {
    MsgSend: bank.process_send,
    MsgCreateValidator: staking.process_create_validator,
    MsgDelegate: staking.process_delegate,
    MsgUndelegate: staking.process_undelegate,
    MsgUnjail: liveness.process_unjail,
    MsgCreateTopic: _process_create_topic,
    MsgFundTopic: topics.process_fund_topic,
    MsgRegister: actors.process_register,
    MsgAddStake: actors.process_add_stake,
    MsgRemoveStake: actors.process_remove_stake,
    MsgDelegateStake: actors.process_delegate_stake,
    MsgRemoveDelegateStake: actors.process_remove_delegate_stake,
    MsgInsertWorkerPayload: actors.process_worker_payload,
    MsgInsertReputerPayload: actors.process_reputer_payload,
    MsgSubmitEvidence: _process_evidence_msg,
}


def _process_msg(ledger: Ledger, ctx: BlockContext, signer: str, msg: Msg) -> tuple[Any, ...]:
    result = _HANDLERS[type(msg)](ledger, ctx, signer, msg)
    return result if isinstance(result, tuple) else ()


def process_tx(
    block_kv: Overlay, ctx: BlockContext, tx_bytes: bytes, verified: Container[bytes] = ()
) -> TxResult:
    """Deliver one transaction into the block's write layer; never raises for a bad tx."""
    ante_kv = block_kv.child()
    ante = Ledger(ante_kv)
    try:
        tx = decode_tx(tx_bytes, ctx.staking.max_tx_bytes)
        if len(tx.body.msgs) > ctx.staking.max_msgs_per_tx:
            raise ChainError(
                f"tx has {len(tx.body.msgs)} messages, max {ctx.staking.max_msgs_per_tx}"
            )
        if tx.body.fee < ctx.staking.min_tx_fee:
            raise InsufficientFundsError(
                f"fee {tx.body.fee} is below the minimum {ctx.staking.min_tx_fee}"
            )
        sequence = _validate_ante(ante, ctx.chain_id, tx, verified)
    except ChainError as exc:
        return TxResult(exc.code, str(exc))
    signer = tx.signer_address
    ante.set_account(signer, tx.body.signer, sequence + 1)
    ante.transfer(signer, FEE_COLLECTOR, tx.body.fee, "fee")
    ante_kv.commit()
    msg_kv = block_kv.child()
    ledger = Ledger(msg_kv)
    data: list[Any] = []
    try:
        for msg in tx.body.msgs:
            data.extend(_process_msg(ledger, ctx, signer, msg))
    except ChainError as exc:
        return TxResult(exc.code, str(exc))
    except AlloraError as exc:  # e.g. a DecodeError inside a message: still the user's fault
        return TxResult(ChainError.code, str(exc))
    msg_kv.commit()
    return TxResult(OK, "", tuple(data))


# --- blocks --------------------------------------------------------------------------------


def validate_header(state: AppState, header: Header) -> None:
    """Rules a header must meet against the state after the previous block."""
    ledger = _ledger(state)
    if header.chain_id != ledger.chain_id:
        raise BlockError(f"block is for chain {header.chain_id!r}, not {ledger.chain_id!r}")
    if header.height != ledger.height + 1:
        raise BlockError(f"block height {header.height}, expected {ledger.height + 1}")
    previous_time: int = ledger.get_meta("time", 0)
    if header.time_ms <= previous_time:
        raise BlockError(
            f"block time {header.time_ms} ms does not exceed the previous {previous_time}"
        )
    if header.prev_block_hash != ledger.get_meta("block_hash", b""):
        raise BlockError("block does not link to the previous block hash")
    if header.app_hash != state.app_hash:
        raise BlockError(
            f"block app hash {header.app_hash.hex()[:16]} differs from this node's "
            f"{state.app_hash.hex()[:16]}"
        )
    signers = staking.get_validator_set_at(ledger, header.height)
    if header.proposer not in {key for key, _ in signers}:
        raise BlockError(f"block proposer is not in the validator set of height {header.height}")


def _context(state: AppState, header: Header) -> BlockContext:
    ledger = _ledger(state)
    return BlockContext(
        chain_id=header.chain_id,
        height=header.height,
        time_ms=header.time_ms,
        proposer=header.proposer,
        emissions=ledger.emissions_params(),
        staking=ledger.staking_params(),
    )


def _process_evidence_list(
    ledger: Ledger, ctx: BlockContext, block: Block
) -> list[tuple[str, str]]:
    events = []
    for wire in block.evidence:
        try:
            evidence = DuplicateVoteEvidence.from_wire(wire)
            staking.process_evidence(ledger, ctx, evidence)
        except AlloraError as exc:
            raise BlockError(f"block carries invalid evidence: {exc}") from None
        events.append(("slash_double_sign", evidence.pubkey.hex()))
    return events


def validate_block(state: AppState, block_bytes: bytes) -> Block:
    """Is this proposal acceptable on top of ``state``? Returns the decoded block or raises."""
    block = Block.from_bytes(block_bytes)
    validate_header(state, block.header)
    if len(block.txs) > _ledger(state).staking_params().max_block_txs:
        raise BlockError(f"block has {len(block.txs)} txs, more than allowed")
    liveness.compute_commit_signers(block.last_commit, block.header.height)
    _process_evidence_list(Ledger(Overlay(state)), _context(state, block.header), block)
    return block


def execute_block(
    state: AppState,
    block: Block | bytes,
    processor: EpochProcessor = _NO_SYNTHESIS,
    verified: Container[bytes] = (),
) -> BlockResult:
    """Apply a block to ``state`` (unchanged) and return the new state, changes and app hash.

    ``verified`` holds tx hashes whose signatures were already checked (e.g. in check_tx):
    a pure optimisation, it never changes the outcome for honest inputs.
    """
    if isinstance(block, bytes):
        block = Block.from_bytes(block)  # checks the body hashes
    else:
        block.validate_body_hashes()
    validate_header(state, block.header)
    ctx = _context(state, block.header)
    if len(block.txs) > ctx.staking.max_block_txs:
        raise BlockError(f"block has {len(block.txs)} txs, more than allowed")
    kv = Overlay(state)
    ledger = Ledger(kv)
    ledger.set_meta("height", ctx.height)
    ledger.set_meta("time", ctx.time_ms)
    ledger.set_meta("block_hash", block.hash)
    signers = liveness.compute_commit_signers(block.last_commit, ctx.height)
    epochs.process_mint(ledger, ctx)
    events = _process_evidence_list(ledger, ctx, block)
    for pubkey in liveness.process_liveness(ledger, ctx, signers):
        events.append(("jail_downtime", pubkey))
    results = tuple(process_tx(kv, ctx, tx, verified) for tx in block.txs)
    staking.process_matured_unbondings(ledger, ctx.height)
    actors.process_stake_removals(ledger, ctx)
    actors.process_delegation_removals(ledger, ctx)
    for topic_id in topics.process_epoch_ends(ledger, ctx):
        events.append(("worker_nonce_opened", f"{topic_id}:{ctx.height}"))
    epochs.process_worker_window_closes(ledger, ctx)
    for topic_id, nonce in epochs.process_reputer_nonce_closes(ledger, ctx, processor):
        events.append(("reputer_nonce_closed", f"{topic_id}:{nonce}"))
    distribution.process_fee_distribution(ledger, ctx)
    previous_set = dict(ledger.get_meta("valset", ()))
    updates = staking.process_validator_updates(ledger, ctx)
    liveness.process_new_signers(
        ledger, ctx, [key for key, power in updates if power > 0 and key not in previous_set]
    )
    changes = kv.changes()
    new_state = state.apply(changes)
    return BlockResult(
        height=ctx.height,
        block_hash=block.hash,
        state=new_state,
        changes=changes,
        app_hash=new_state.app_hash,
        tx_results=results,
        events=tuple(events),
        validator_updates=updates,
    )


def select_evidence(
    state: AppState,
    *,
    time_ms: int,
    proposer: bytes,
    candidates: Iterable[DuplicateVoteEvidence],
) -> tuple[tuple[DuplicateVoteEvidence, ...], tuple[DuplicateVoteEvidence, ...]]:
    """Split pending evidence into what the next block may carry and what is dead for good.

    Why: one invalid piece makes the whole block invalid, so the proposer (before
    :func:`build_block`, which includes exactly what it is given) trial-applies each
    candidate in order on a scratch ledger (the same rules ``validate_block`` runs) and keeps
    only those that pass — a second piece against an already-slashed validator, evidence too old
    or from an unknown validator is dropped. Evidence from the next height or later is neither:
    it becomes includable once that height is in the past, so it is in neither tuple.
    """
    ledger = _ledger(state)
    height = ledger.height + 1
    ctx = BlockContext(
        chain_id=ledger.chain_id,
        height=height,
        time_ms=time_ms,
        proposer=proposer,
        emissions=ledger.emissions_params(),
        staking=ledger.staking_params(),
    )
    scratch = Ledger(Overlay(state))
    included: list[DuplicateVoteEvidence] = []
    rejected: list[DuplicateVoteEvidence] = []
    for evidence in candidates:
        if evidence.height >= height:
            continue
        if len(included) >= MAX_EVIDENCE:
            break
        try:
            staking.process_evidence(scratch, ctx, evidence)
        except AlloraError:
            rejected.append(evidence)
            continue
        included.append(evidence)
    return tuple(included), tuple(rejected)


def build_block(
    state: AppState,
    *,
    time_ms: int,
    proposer: bytes,
    txs: Iterable[bytes] = (),
    evidence: Iterable[DuplicateVoteEvidence] = (),
    last_commit: bytes = b"",
) -> Block:
    """The next block on top of ``state`` (the proposer's job; call ``.to_bytes()`` to send)."""
    ledger = _ledger(state)
    tx_tuple = tuple(txs)
    ev_tuple = tuple(ev.to_wire() for ev in evidence)
    header = Header(
        chain_id=ledger.chain_id,
        height=ledger.height + 1,
        time_ms=time_ms,
        prev_block_hash=ledger.get_meta("block_hash", b""),
        app_hash=state.app_hash,
        proposer=proposer,
        last_commit_hash=sha256(last_commit),
        txs_hash=compute_txs_hash(tx_tuple),
        evidence_hash=compute_evidence_hash(ev_tuple),
    )
    return Block(header, tx_tuple, ev_tuple, last_commit)
