"""Genesis: the ALLO allocation, accounts, validators and parameters of a new chain.

Allocation (DESIGN.md section 5, spec/synthesis.md 6): max supply 1,000,000,000 ALLO. Every
bucket but network emissions exists at genesis (785,500,000 ALLO) in a module account named
``bucket:<name>``; network emissions (21.45 %) is not minted at genesis but recorded as the
emission cap that the per-block emission mints against. Genesis accounts and validator
self-stakes are carved out of the community bucket, so the genesis supply is exactly
785,500,000 ALLO whatever the accounts are.

Vesting: :func:`compute_locked_vesting` gives the locked part of the early-supporter and
core-contributor buckets (100 % for 12 months, then (36 - month) / 36 until month 36). The
bucket accounts have no keys, so nothing can spend them yet; a vesting claim message is not
part of this chain.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from alloranet.chain.errors import InvalidMessageError
from alloranet.chain.kv import AppState, Overlay
from alloranet.chain.ledger import BONDED_POOL, Ledger, Validator
from alloranet.chain.params import EmissionsParams, StakingParams
from alloranet.codec import (
    decode,
    encode,
    expect_bytes,
    expect_int,
    expect_str,
    expect_tuple,
    sha256,
)
from alloranet.crypto import PUBLIC_KEY_SIZE, validate_address
from alloranet.errors import AlloraError
from alloranet.types import MAX_SUPPLY_UALLO

#: (bucket, basis points of max supply); network emissions is minted over time.
ALLOCATION_BPS: Final = (
    ("early_supporters", 3105),
    ("network_emissions", 2145),
    ("core_contributors", 1750),
    ("foundation", 935),
    ("community", 930),
    ("ecosystem_partners", 885),
    ("prime_staking_rewards", 250),
)
VESTING_BUCKETS: Final = ("early_supporters", "core_contributors")
COMMUNITY: Final = "bucket:community"


def compute_allocation() -> dict[str, int]:
    return {name: MAX_SUPPLY_UALLO * bps // 10_000 for name, bps in ALLOCATION_BPS}


def compute_locked_vesting(height: int, blocks_per_month: int) -> int:
    """Base units of the vesting buckets still locked at ``height`` (spec/synthesis.md 6)."""
    month = height // blocks_per_month
    total = sum(compute_allocation()[b] for b in VESTING_BUCKETS)
    if month < 12:
        return total
    if month >= 36:
        return 0
    return total * (36 - month) // 36


@dataclass(frozen=True, slots=True)
class GenesisValidator:
    pubkey: bytes
    operator: str
    stake: int


@dataclass(frozen=True, slots=True)
class Genesis:
    chain_id: str
    time_ms: int
    accounts: tuple[tuple[str, int], ...] = ()
    validators: tuple[GenesisValidator, ...] = ()
    emissions: EmissionsParams = field(default_factory=EmissionsParams)
    staking: StakingParams = field(default_factory=StakingParams)

    def to_wire(self) -> tuple[Any, ...]:
        return (
            self.chain_id,
            self.time_ms,
            self.accounts,
            tuple((v.pubkey, v.operator, v.stake) for v in self.validators),
            self.emissions.to_wire(),
            self.staking.to_wire(),
        )

    def to_bytes(self) -> bytes:
        """Canonical bytes (what a genesis file holds and every node must agree on)."""
        return encode(self.to_wire())

    @property
    def hash(self) -> bytes:
        return sha256(self.to_bytes())

    @classmethod
    def from_bytes(cls, data: bytes) -> Genesis:
        try:
            return cls.from_wire(decode(data, max_size=64 * 1024 * 1024))
        except InvalidMessageError:
            raise
        except AlloraError as exc:
            raise InvalidMessageError(f"genesis: {exc}") from None

    @classmethod
    def from_wire(cls, wire: Any) -> Genesis:
        f = expect_tuple(wire, "genesis", 6)
        accounts = tuple(
            (
                expect_str(expect_tuple(a, "genesis.account", 2)[0], "genesis.account.address"),
                expect_int(a[1], "genesis.account.amount", 0),
            )
            for a in expect_tuple(f[2], "genesis.accounts")
        )
        validators = tuple(
            GenesisValidator(
                expect_bytes(expect_tuple(v, "genesis.validator", 3)[0], "pubkey", PUBLIC_KEY_SIZE),
                expect_str(v[1], "genesis.validator.operator"),
                expect_int(v[2], "genesis.validator.stake", 1),
            )
            for v in expect_tuple(f[3], "genesis.validators")
        )
        return cls(
            expect_str(f[0], "genesis.chain_id", 64),
            expect_int(f[1], "genesis.time_ms", 0),
            accounts,
            validators,
            EmissionsParams.from_wire(f[4]),
            StakingParams.from_wire(f[5]),
        )


def validate_genesis(genesis: Genesis) -> None:
    if not genesis.chain_id:
        raise InvalidMessageError("genesis: chain_id must not be empty")
    e = genesis.emissions
    if e.topic_reward_stake_importance != 0.5 or e.topic_reward_fee_revenue_importance != 0.5:
        raise InvalidMessageError(
            "genesis: only topic weight exponents mu = nu = 0.5 are supported"
        )
    seen: set[str] = set()
    for address, _ in genesis.accounts:
        validate_address(address)
        if address in seen:
            raise InvalidMessageError(f"genesis: account {address} listed twice")
        seen.add(address)
    keys = [v.pubkey for v in genesis.validators]
    if len(set(keys)) != len(keys):
        raise InvalidMessageError("genesis: a validator key is listed twice")
    for v in genesis.validators:
        validate_address(v.operator)
        if v.stake // genesis.staking.power_reduction <= 0:
            raise InvalidMessageError("genesis: a validator stake gives zero voting power")
    handed_out = sum(a for _, a in genesis.accounts) + sum(v.stake for v in genesis.validators)
    if handed_out > compute_allocation()["community"]:
        raise InvalidMessageError("genesis: accounts and stakes exceed the community bucket")


def build_genesis_state(genesis: Genesis) -> AppState:
    """The state at height 0: allocation, accounts, bonded validators, params, metadata."""
    validate_genesis(genesis)
    overlay = Overlay(AppState.empty())
    ledger = Ledger(overlay)
    allocation = compute_allocation()
    for name, amount in allocation.items():
        if name != "network_emissions":
            ledger.mint("bucket:" + name, amount)
    ledger.set_meta("emission_cap", allocation["network_emissions"])
    ledger.set_meta("minted", 0)
    ledger.set_meta("chain_id", genesis.chain_id)
    ledger.set_meta("height", 0)
    ledger.set_meta("time", genesis.time_ms)
    ledger.set_meta("block_hash", b"")
    ledger.set_meta("params/emissions", genesis.emissions.to_wire())
    ledger.set_meta("params/staking", genesis.staking.to_wire())
    for address, amount in sorted(genesis.accounts):
        ledger.transfer(COMMUNITY, address, amount, "genesis account")
    for v in sorted(genesis.validators, key=lambda v: v.pubkey):
        ledger.transfer(COMMUNITY, v.operator, v.stake, "genesis stake")
        ledger.transfer(v.operator, BONDED_POOL, v.stake, "genesis stake")
        ledger.set_validator(Validator(v.pubkey, v.operator, v.stake, v.stake, False, False))
        ledger.set_delegation(v.pubkey, v.operator, v.stake)
    valset = tuple(
        sorted((v.pubkey, v.stake // genesis.staking.power_reduction) for v in genesis.validators)
    )
    ledger.set_meta("valset", valset)
    ledger.set_meta("valset_schedule", ((1, valset),))
    return AppState.empty().apply(overlay.changes())
