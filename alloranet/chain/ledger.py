"""Typed accessors over the key-value state: the only code that knows the key layout.

Why one place: every module reads and writes through these methods, so a key's encoding is
defined once, values are always canonical, and nothing iterates a Python dict in an order that
could differ between nodes (lists stored in state are kept sorted).

Key layout (prefix, then fixed-width or NUL-separated parts): ``meta/*`` chain metadata and
params; ``acct/<addr>`` (pubkey, next sequence); ``bal/<addr>`` balance; ``val/<pubkey>``
validator; ``del/<pubkey><addr>`` delegator shares; ``dlist/<pubkey>`` its sorted
delegators; ``sign/<pubkey>`` liveness record (missed-block ring); ``ubd/<height>``
unbonding entries maturing then; ``evid/<hash>`` punished evidence; ``topic/<id>`` topic
rules; ``tw/<id>`` weight;
``trev/<id>`` fee revenue; ``sched/<height>`` topics whose epoch ends then; ``worker/``,
``reputer/`` registrations; ``rstake/``, ``rdel/``, ``rdeltot/``, ``tstake/`` reputer stakes;
``rmq/<height>``/``rdq/<height>`` own/delegated stake removals due;
``wclose/``/``rclose/<height>`` nonces whose worker or reputer window closes at the end of that
height; ``wopen/``/``ropen/<id><nonce>`` open nonces;
``inf/<id><nonce><addr>`` worker payloads; ``rep/<id><nonce><addr>`` reputer bundles;
``syn/<id>\\0<family>`` packed per-topic synthesis state (one value per topic and family);
``hist/<id><nonce>`` the record of a closed nonce the API serves, ``histn/<id>`` their nonces.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import astuple, dataclass
from typing import Any, Final, TypeVar

import msgpack

from alloranet.chain.errors import InsufficientFundsError
from alloranet.chain.kv import AppState, Overlay
from alloranet.chain.msgs import TopicRules
from alloranet.chain.params import EmissionsParams, StakingParams
from alloranet.codec import encode

T = TypeVar("T")


def _ext_hook(code: int, data: bytes) -> int:
    if code != 1:
        raise ValueError(f"unexpected extension type {code} in state")
    return int.from_bytes(data, "big", signed=True)


_NATIVE_MIN: Final = -(2**63)
_NATIVE_MAX: Final = 2**64 - 1
#: Scalars whose plain msgpack encoding is already canonical (ints only in the native range).
_FLAT_TYPES: Final = (bytes, str, int, bool, type(None))


def store_value(value: Any) -> bytes:
    """Canonical bytes of a state value, with a fast path for integers (balances, stakes).

    Integers are most state writes; the generic codec walks every value through its checks,
    which cost more than the write itself. The fast path produces exactly
    :func:`alloranet.codec.encode`'s bytes (pinned by a property test).
    """
    kind = type(value)
    if kind is tuple and all(
        type(item) in _FLAT_TYPES and (type(item) is not int or _NATIVE_MIN <= item <= _NATIVE_MAX)
        for item in value
    ):
        flat: bytes = msgpack.packb(value, use_bin_type=True)
        return flat
    if kind is int:
        if _NATIVE_MIN <= value <= _NATIVE_MAX:
            packed: bytes = msgpack.packb(value)
            return packed
        length = (value.bit_length() + 8) // 8
        if length <= 64:
            ext = msgpack.ExtType(1, value.to_bytes(length, "big", signed=True))
            packed = msgpack.packb(ext)
            return packed
    return encode(value)


def load_value(raw: bytes) -> Any:
    """Decode a state value. Trusted input (only :meth:`Ledger._put` writes state, always
    canonically), so the codec's canonical re-encoding check is skipped: it doubled the cost
    of every state read."""
    return msgpack.unpackb(raw, raw=False, use_list=False, strict_map_key=False, ext_hook=_ext_hook)


# Module accounts (not bech32, so no key can ever sign for them).
FEE_COLLECTOR: Final = "module:fee_collector"
BONDED_POOL: Final = "module:bonded"
UNBONDING_POOL: Final = "module:unbonding"
TOPIC_STAKE_POOL: Final = "module:topic_stake"
ECOSYSTEM: Final = "module:ecosystem"
REWARDS: Final = "module:rewards"


def _u64(value: int) -> bytes:
    return value.to_bytes(8, "big")


@dataclass(frozen=True, slots=True)
class Validator:
    pubkey: bytes
    operator: str
    tokens: int
    shares: int
    jailed: bool
    tombstoned: bool
    #: block time (ms) from which a downtime-jailed validator may unjail (0: never jailed)
    jailed_until_ms: int = 0

    def to_wire(self) -> tuple[Any, ...]:
        return astuple(self)


@dataclass(frozen=True, slots=True)
class Topic(TopicRules):
    """A stored topic: its rule fields (shared with MsgCreateTopic) then its chain record."""

    id: int
    creator: str
    active: bool
    created_height: int

    def to_wire(self) -> tuple[Any, ...]:
        return astuple(self)


@dataclass(frozen=True, slots=True)
class UnbondingEntry:
    delegator: str
    pubkey: bytes
    amount: int
    created_height: int

    def to_wire(self) -> tuple[Any, ...]:
        return astuple(self)


class Ledger:
    """Typed reads and writes on an :class:`Overlay`."""

    __slots__ = ("kv",)

    def __init__(self, kv: Overlay) -> None:
        self.kv = kv

    # --- raw helpers ----------------------------------------------------------------------
    def _get(self, key: bytes) -> Any:
        raw = self.kv.get(key)
        return None if raw is None else load_value(raw)

    def _put(self, key: bytes, value: Any) -> None:
        self.kv.set(key, store_value(value))

    def _get_or(self, key: bytes, default: T) -> Any:
        raw = self.kv.get(key)
        return default if raw is None else load_value(raw)

    def _list_add(self, key: bytes, item: Any) -> None:
        items = set(self._get_or(key, ()))
        items.add(item)
        self._put(key, tuple(sorted(items)))

    def _list_remove(self, key: bytes, item: Any) -> None:
        items = [x for x in self._get_or(key, ()) if x != item]
        if items:
            self._put(key, tuple(items))
        else:
            self.kv.delete(key)

    def pop_list(self, key: bytes) -> tuple[Any, ...]:
        items: tuple[Any, ...] = self._get_or(key, ())
        if items:
            self.kv.delete(key)
        return items

    # --- meta ------------------------------------------------------------------------------
    def get_meta(self, name: str, default: Any = None) -> Any:
        return self._get_or(b"meta/" + name.encode(), default)

    def set_meta(self, name: str, value: Any) -> None:
        self._put(b"meta/" + name.encode(), value)

    @property
    def chain_id(self) -> str:
        value: str = self.get_meta("chain_id")
        return value

    @property
    def height(self) -> int:
        value: int = self.get_meta("height", 0)
        return value

    def emissions_params(self) -> EmissionsParams:
        return EmissionsParams.from_wire(self.get_meta("params/emissions"))

    def staking_params(self) -> StakingParams:
        return StakingParams.from_wire(self.get_meta("params/staking"))

    # --- accounts and balances -------------------------------------------------------------
    def get_account(self, address: str) -> tuple[bytes | None, int]:
        """(public key or None if never seen, next expected sequence)."""
        value = self._get(b"acct/" + address.encode())
        if value is None:
            return None, 0
        return value[0], value[1]

    def set_account(self, address: str, pubkey: bytes, sequence: int) -> None:
        self._put(b"acct/" + address.encode(), (pubkey, sequence))

    def get_balance(self, address: str) -> int:
        value: int = self._get_or(b"bal/" + address.encode(), 0)
        return value

    def set_balance(self, address: str, amount: int) -> None:
        key = b"bal/" + address.encode()
        if amount:
            self._put(key, amount)
        else:
            self.kv.delete(key)

    def transfer(self, sender: str, recipient: str, amount: int, what: str = "transfer") -> None:
        """Move ``amount``; raises InsufficientFundsError before changing anything."""
        if amount == 0:
            return
        balance = self.get_balance(sender)
        if balance < amount:
            raise InsufficientFundsError(
                f"{what}: {sender} has {balance} uallo, needs {amount} uallo"
            )
        self.set_balance(sender, balance - amount)
        self.set_balance(recipient, self.get_balance(recipient) + amount)

    def mint(self, recipient: str, amount: int) -> None:
        self.set_balance(recipient, self.get_balance(recipient) + amount)
        self.set_meta("supply", self.get_meta("supply", 0) + amount)

    def burn(self, holder: str, amount: int) -> None:
        balance = self.get_balance(holder)
        if balance < amount:
            raise InsufficientFundsError(f"burn: {holder} holds {balance}, cannot burn {amount}")
        self.set_balance(holder, balance - amount)
        self.set_meta("supply", self.get_meta("supply", 0) - amount)

    # --- staking ---------------------------------------------------------------------------
    def get_validator(self, pubkey: bytes) -> Validator | None:
        value = self._get(b"val/" + pubkey)
        return None if value is None else Validator(*value)

    def set_validator(self, validator: Validator) -> None:
        self._put(b"val/" + validator.pubkey, validator.to_wire())
        self._list_add(b"meta/validators", validator.pubkey)

    def validator_pubkeys(self) -> tuple[bytes, ...]:
        value: tuple[bytes, ...] = self.get_meta("validators", ())
        return value

    def get_delegation(self, pubkey: bytes, delegator: str) -> int:
        value: int = self._get_or(b"del/" + pubkey + delegator.encode(), 0)
        return value

    def set_delegation(self, pubkey: bytes, delegator: str, shares: int) -> None:
        """Also keeps ``dlist/<pubkey>``, the validator's sorted delegators, in step: fee
        distribution walks it every block, and a prefix scan of the state is O(state)."""
        key = b"del/" + pubkey + delegator.encode()
        had = self.kv.get(key) is not None
        if shares:
            self._put(key, shares)
            if not had:
                self._list_add(b"dlist/" + pubkey, delegator)
        else:
            self.kv.delete(key)
            if had:
                self._list_remove(b"dlist/" + pubkey, delegator)

    def delegators(self, pubkey: bytes) -> tuple[str, ...]:
        """The validator's delegators (operator included), sorted by address."""
        value: tuple[str, ...] = self._get_or(b"dlist/" + pubkey, ())
        return value

    def get_signing_info(self, pubkey: bytes) -> tuple[int, int, bytes] | None:
        """(start height, missed count, ring of missed bits) or None (never missed since it
        joined at genesis: start height 1, nothing missed)."""
        value = self._get(b"sign/" + pubkey)
        return None if value is None else (value[0], value[1], value[2])

    def set_signing_info(self, pubkey: bytes, info: tuple[int, int, bytes] | None) -> None:
        if info is None:
            self.kv.delete(b"sign/" + pubkey)
        else:
            self._put(b"sign/" + pubkey, info)

    def unbonding_due(self, height: int) -> tuple[UnbondingEntry, ...]:
        return tuple(UnbondingEntry(*w) for w in self._get_or(b"ubd/" + _u64(height), ()))

    def set_unbonding_due(self, height: int, entries: tuple[UnbondingEntry, ...]) -> None:
        key = b"ubd/" + _u64(height)
        if entries:
            self._put(key, tuple(sorted(e.to_wire() for e in entries)))
        else:
            self.kv.delete(key)

    def unbonding_count(self, pubkey: bytes, delegator: str) -> int:
        value: int = self._get_or(b"ubdn/" + pubkey + delegator.encode(), 0)
        return value

    def set_unbonding_count(self, pubkey: bytes, delegator: str, count: int) -> None:
        key = b"ubdn/" + pubkey + delegator.encode()
        if count:
            self._put(key, count)
        else:
            self.kv.delete(key)

    def is_evidence_seen(self, evidence_hash: bytes) -> bool:
        return self.kv.get(b"evid/" + evidence_hash) is not None

    def mark_evidence(self, evidence_hash: bytes, height: int) -> None:
        self._put(b"evid/" + evidence_hash, height)

    # --- topics ----------------------------------------------------------------------------
    def get_topic(self, topic_id: int) -> Topic | None:
        value = self._get(b"topic/" + _u64(topic_id))
        return None if value is None else Topic(*value)

    def set_topic(self, topic: Topic) -> None:
        self._put(b"topic/" + _u64(topic.id), topic.to_wire())

    def get_fee_revenue(self, topic_id: int) -> int:
        value: int = self._get_or(b"trev/" + _u64(topic_id), 0)
        return value

    def set_fee_revenue(self, topic_id: int, amount: int) -> None:
        self._put(b"trev/" + _u64(topic_id), amount)

    def get_weight(self, topic_id: int) -> int:
        value: int = self._get_or(b"tw/" + _u64(topic_id), 0)
        return value

    def set_weight(self, topic_id: int, weight: int) -> None:
        self._put(b"tw/" + _u64(topic_id), weight)

    def active_topics(self) -> tuple[int, ...]:
        value: tuple[int, ...] = self.get_meta("active_topics", ())
        return value

    def set_topic_active(self, topic_id: int, active: bool) -> None:
        if active:
            self._list_add(b"meta/active_topics", topic_id)
        else:
            self._list_remove(b"meta/active_topics", topic_id)

    def schedule(self, prefix: bytes, height: int, item: Any) -> None:
        self._list_add(prefix + _u64(height), item)

    def take_scheduled(self, prefix: bytes, height: int) -> tuple[Any, ...]:
        return self.pop_list(prefix + _u64(height))

    def unschedule(self, prefix: bytes, height: int, item: Any) -> None:
        self._list_remove(prefix + _u64(height), item)

    # --- actors ----------------------------------------------------------------------------
    def is_registered(self, topic_id: int, address: str, reputer: bool) -> bool:
        prefix = b"reputer/" if reputer else b"worker/"
        return self.kv.get(prefix + _u64(topic_id) + address.encode()) is not None

    def set_registered(self, topic_id: int, address: str, reputer: bool) -> None:
        prefix = b"reputer/" if reputer else b"worker/"
        self._put(prefix + _u64(topic_id) + address.encode(), True)

    def _amount(self, key: bytes) -> int:
        value: int = self._get_or(key, 0)
        return value

    def _set_amount(self, key: bytes, amount: int) -> None:
        if amount:
            self._put(key, amount)
        else:
            self.kv.delete(key)

    def get_reputer_stake(self, topic_id: int, reputer: str) -> int:
        return self._amount(b"rstake/" + _u64(topic_id) + reputer.encode())

    def set_reputer_stake(self, topic_id: int, reputer: str, amount: int) -> None:
        self._set_amount(b"rstake/" + _u64(topic_id) + reputer.encode(), amount)

    def get_pending_removal(self, topic_id: int, reputer: str) -> int:
        return self._amount(b"rmpend/" + _u64(topic_id) + reputer.encode())

    def set_pending_removal(self, topic_id: int, reputer: str, amount: int) -> None:
        self._set_amount(b"rmpend/" + _u64(topic_id) + reputer.encode(), amount)

    def get_delegated_to(self, topic_id: int, reputer: str) -> int:
        return self._amount(b"rdeltot/" + _u64(topic_id) + reputer.encode())

    def add_reputer_delegation(
        self, topic_id: int, reputer: str, delegator: str, amount: int
    ) -> None:
        """Also keeps ``rdlist/<topic><reputer>``, the reputer's sorted delegators, in step:
        the reward split pays them without scanning the state."""
        key = b"rdel/" + _u64(topic_id) + reputer.encode() + b"\x00" + delegator.encode()
        before = self._amount(key)
        self._set_amount(key, before + amount)
        total_key = b"rdeltot/" + _u64(topic_id) + reputer.encode()
        self._set_amount(total_key, self._amount(total_key) + amount)
        list_key = b"rdlist/" + _u64(topic_id) + reputer.encode()
        if before == 0 and amount > 0:
            self._list_add(list_key, delegator)
        elif before > 0 and before + amount == 0:
            self._list_remove(list_key, delegator)

    def reputer_delegators(self, topic_id: int, reputer: str) -> tuple[str, ...]:
        """Who has stake delegated to ``reputer`` in the topic, sorted by address."""
        value: tuple[str, ...] = self._get_or(b"rdlist/" + _u64(topic_id) + reputer.encode(), ())
        return value

    def get_reputer_delegation(self, topic_id: int, reputer: str, delegator: str) -> int:
        key = b"rdel/" + _u64(topic_id) + reputer.encode() + b"\x00" + delegator.encode()
        return self._amount(key)

    def get_pending_delegation_removal(self, topic_id: int, reputer: str, delegator: str) -> int:
        key = b"rdpend/" + _u64(topic_id) + reputer.encode() + b"\x00" + delegator.encode()
        return self._amount(key)

    def set_pending_delegation_removal(
        self, topic_id: int, reputer: str, delegator: str, amount: int
    ) -> None:
        key = b"rdpend/" + _u64(topic_id) + reputer.encode() + b"\x00" + delegator.encode()
        self._set_amount(key, amount)

    def get_topic_stake(self, topic_id: int) -> int:
        return self._amount(b"tstake/" + _u64(topic_id))

    def set_topic_stake(self, topic_id: int, amount: int) -> None:
        self._set_amount(b"tstake/" + _u64(topic_id), amount)

    def stake_authority(self, topic_id: int, reputer: str) -> int:
        """S_m: own stake + delegated stake (spec/synthesis.md 1.3)."""
        return self.get_reputer_stake(topic_id, reputer) + self.get_delegated_to(topic_id, reputer)

    # --- nonces and payloads ---------------------------------------------------------------
    def is_nonce_open(self, reputer: bool, topic_id: int, nonce: int) -> bool:
        prefix = b"ropen/" if reputer else b"wopen/"
        return self.kv.get(prefix + _u64(topic_id) + _u64(nonce)) is not None

    def set_nonce_open(self, reputer: bool, topic_id: int, nonce: int, is_open: bool) -> None:
        key = (b"ropen/" if reputer else b"wopen/") + _u64(topic_id) + _u64(nonce)
        if is_open:
            self._put(key, True)
        else:
            self.kv.delete(key)

    @staticmethod
    def payload_key(reputer: bool, topic_id: int, nonce: int, address: str = "") -> bytes:
        prefix = b"rep/" if reputer else b"inf/"
        return prefix + _u64(topic_id) + _u64(nonce) + address.encode()

    def get_payload(self, reputer: bool, topic_id: int, nonce: int, address: str) -> Any:
        return self._get(self.payload_key(reputer, topic_id, nonce, address))

    def set_payload(
        self, reputer: bool, topic_id: int, nonce: int, address: str, wire: Any
    ) -> None:
        self._put(self.payload_key(reputer, topic_id, nonce, address), wire)

    def take_payloads(self, reputer: bool, topic_id: int, nonce: int) -> list[tuple[str, Any]]:
        """Every payload of a nonce, sorted by address, deleting them from state."""
        prefix = self.payload_key(reputer, topic_id, nonce)
        out: list[tuple[str, Any]] = []
        for key, raw in self.kv.items_with_prefix(prefix):
            out.append((key[len(prefix) :].decode(), load_value(raw)))
            self.kv.delete(key)
        return out

    def get_synthesis_state(self, topic_id: int, family: str) -> bytes | None:
        value: bytes | None = self._get(b"syn/" + _u64(topic_id) + b"\x00" + family.encode())
        return value

    def set_synthesis_state(self, topic_id: int, family: str, packed: bytes | None) -> None:
        key = b"syn/" + _u64(topic_id) + b"\x00" + family.encode()
        if packed is None:
            self.kv.delete(key)
        else:
            self._put(key, packed)

    def get_epoch_record(self, topic_id: int, nonce: int) -> bytes | None:
        value: bytes | None = self._get(b"hist/" + _u64(topic_id) + _u64(nonce))
        return value

    def recorded_nonces(self, topic_id: int) -> tuple[int, ...]:
        """Nonces of the topic with a stored epoch record, ascending."""
        value: tuple[int, ...] = self._get_or(b"histn/" + _u64(topic_id), ())
        return value

    def add_epoch_record(self, topic_id: int, nonce: int, record: bytes, keep: int) -> None:
        """Store a closed nonce's record; only the newest ``keep`` of the topic are kept."""
        self._put(b"hist/" + _u64(topic_id) + _u64(nonce), record)
        nonces = sorted({*self.recorded_nonces(topic_id), nonce})
        for old in nonces[: max(0, len(nonces) - keep)]:
            self.kv.delete(b"hist/" + _u64(topic_id) + _u64(old))
        self._put(b"histn/" + _u64(topic_id), tuple(nonces[-keep:]))

    def synthesis_families(self, topic_id: int) -> dict[str, bytes]:
        prefix = b"syn/" + _u64(topic_id) + b"\x00"
        return {
            k[len(prefix) :].decode(): load_value(v) for k, v in self.kv.items_with_prefix(prefix)
        }


def ledger_of(state: AppState) -> Ledger:
    """A read-only-by-convention ledger over a snapshot (writes go to a throwaway overlay)."""
    return Ledger(Overlay(state))


def read_with(state: AppState, reader: Callable[[Ledger], T]) -> T:
    """Run a query against a snapshot."""
    return reader(ledger_of(state))
