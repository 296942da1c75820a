"""A small in-memory chain driver for tests, benchmarks and simulations.

Why in the package: the chain's tests, the state-store tests, the benchmark and other layers'
simulations all need "a genesis with funded keys, then blocks of signed txs"; one driver keeps
them consistent. Deterministic: keys come from labels, block time advances 1 s per block.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from alloranet.chain.app import BlockResult, build_block, execute_block, get_next_sequence
from alloranet.chain.epoch_hook import EpochProcessor, NoSynthesis
from alloranet.chain.evidence import DuplicateVoteEvidence
from alloranet.chain.genesis import Genesis, GenesisValidator, build_genesis_state
from alloranet.chain.kv import AppState
from alloranet.chain.msgs import Msg, MsgCreateTopic
from alloranet.chain.params import EmissionsParams, StakingParams
from alloranet.chain.tx import sign_tx
from alloranet.codec import encode
from alloranet.crypto import PrivateKey, Signer
from alloranet.types import UALLO_PER_ALLO

TEST_CHAIN_ID = "alloranet-test"
GENESIS_TIME_MS = 1_700_000_000_000


def make_genesis(
    accounts: Iterable[str] = ("alice", "bob", "carol", "dave"),
    validators: Iterable[str] = ("val0",),
    balance: int = 1_000_000 * UALLO_PER_ALLO,
    stake: int = 1_000 * UALLO_PER_ALLO,
    emissions: EmissionsParams | None = None,
    staking: StakingParams | None = None,
) -> tuple[Genesis, dict[str, Signer]]:
    """A genesis funding labelled test keys; returns it and the signers by label."""
    signers = {label: PrivateKey.from_label(label).signer() for label in (*accounts, *validators)}
    genesis = Genesis(
        chain_id=TEST_CHAIN_ID,
        time_ms=GENESIS_TIME_MS,
        accounts=tuple(sorted((signers[a].address, balance) for a in accounts)),
        validators=tuple(
            GenesisValidator(signers[v].public_key, signers[v].address, stake) for v in validators
        ),
        emissions=emissions or EmissionsParams(),
        staking=staking or StakingParams(),
    )
    return genesis, signers


def topic_msg(
    epoch_length: int = 12, ground_truth_lag: int = 12, window: int = 6, **kw: object
) -> MsgCreateTopic:
    base = MsgCreateTopic(
        metadata="ETH 10min",
        loss_method="mse",
        epoch_length=epoch_length,
        ground_truth_lag=ground_truth_lag,
        worker_submission_window=window,
        p_norm=3.0,
        alpha_regret=0.1,
        allow_negative=False,
        epsilon=0.01,
        merit_sortition_alpha=0.1,
        active_inferer_quantile=0.2,
        active_forecaster_quantile=0.2,
        active_reputer_quantile=0.2,
    )
    return replace(base, **kw)  # type: ignore[arg-type]


@dataclass
class TestChain:
    """Genesis plus a head state; ``block(...)`` executes the next block."""

    __test__ = False  # not a pytest class

    genesis: Genesis
    signers: dict[str, Signer]
    processor: EpochProcessor = field(default_factory=NoSynthesis)
    state: AppState = field(init=False)
    time_ms: int = field(init=False)
    results: list[BlockResult] = field(default_factory=list)
    pending_seq: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.state = build_genesis_state(self.genesis)
        self.time_ms = self.genesis.time_ms

    @classmethod
    def create(cls, **kw: object) -> TestChain:
        genesis, signers = make_genesis(**kw)  # type: ignore[arg-type]
        return cls(genesis, signers)

    @property
    def proposer(self) -> bytes:
        return self.signers[sorted(self.validator_labels())[0]].public_key

    def validator_labels(self) -> list[str]:
        keys = {v.pubkey for v in self.genesis.validators}
        return [label for label, s in self.signers.items() if s.public_key in keys]

    def address(self, label: str) -> str:
        return self.signers[label].address

    def tx(self, label: str, *msgs: Msg, fee: int = 0, sequence: int | None = None) -> bytes:
        """Sign a tx; sequences count up per signer across unexecuted txs."""
        signer = self.signers[label]
        if sequence is None:
            sequence = self.pending_seq.get(label, get_next_sequence(self.state, signer.address))
            self.pending_seq[label] = sequence + 1
        return sign_tx(signer, self.genesis.chain_id, sequence, fee, msgs)

    def last_commit(self, signers: Iterable[str]) -> bytes:
        """A last commit for the previous height naming ``signers`` (labels) as precommitters.

        The chain reads only who signed (liveness); the consensus layer verifies signatures
        before a block is accepted, so placeholder signatures are enough here."""
        keys = sorted(self.signers[label].public_key for label in signers)
        height = len(self.results)
        return encode((height, 0, bytes(32), tuple((key, bytes(64)) for key in keys)))

    def build(
        self,
        txs: Iterable[bytes] = (),
        evidence: Iterable[DuplicateVoteEvidence] = (),
        signers: Iterable[str] | None = None,
    ) -> bytes:
        """The next block; ``signers`` (labels) fills its last commit (None: empty commit)."""
        last_commit = b"" if signers is None or not self.results else self.last_commit(signers)
        return build_block(
            self.state,
            time_ms=self.time_ms + 1000,
            proposer=self.proposer,
            txs=txs,
            evidence=evidence,
            last_commit=last_commit,
        ).to_bytes()

    def block(
        self,
        txs: Iterable[bytes] = (),
        evidence: Iterable[DuplicateVoteEvidence] = (),
        signers: Iterable[str] | None = None,
    ) -> BlockResult:
        raw = self.build(txs, evidence, signers)
        result = execute_block(self.state, raw, self.processor)
        self.state = result.state
        self.time_ms += 1000
        self.results.append(result)
        self.pending_seq.clear()
        return result

    def advance_to(self, height: int) -> None:
        """Execute empty blocks until the state's height is ``height``."""
        while len(self.results) < height:
            self.block()
