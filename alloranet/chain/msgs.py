"""Transaction messages: what a signer can ask the chain to do.

Why tagged arrays: each message encodes as ``(tag, field, field, ...)`` in a fixed order, so
its bytes are canonical and the decoder can dispatch on the tag. ``from_wire`` checks every
field's type and the rules that need no state (ranges, address checksums, ordering); the
handlers in the module files check the rules that need state. Either way a violation is a typed
error naming the field.

Floats appear only where the message carries a model output or a rule coefficient
(DESIGN.md section 5); every token amount is an integer of base units.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, ClassVar, Final

from alloranet.chain.errors import InvalidMessageError
from alloranet.codec import (
    expect_bool,
    expect_bytes,
    expect_float,
    expect_int,
    expect_str,
    expect_tuple,
)
from alloranet.crypto import PUBLIC_KEY_SIZE, validate_address
from alloranet.errors import DecodeError, ValidationError
from alloranet.types import MAX_SUPPLY_UALLO

MAX_AMOUNT: Final = MAX_SUPPLY_UALLO
MAX_STRING: Final = 255
MAX_LIST: Final = 1024
MAX_TOPIC_ID: Final = 2**63 - 1
MAX_HEIGHT: Final = 2**63 - 1


@lru_cache(maxsize=1 << 16)
def _is_valid_address(text: str) -> str | None:
    """Memoised check (bech32 in pure Python is slow); returns the error text or None."""
    try:
        validate_address(text)
    except ValidationError as exc:
        return str(exc)
    return None


def _address(value: Any, name: str) -> str:
    text = expect_str(value, name, 90)
    problem = _is_valid_address(text)
    if problem is not None:
        raise DecodeError(f"{name}: {problem}")
    return text


def _amount(value: Any, name: str, allow_zero: bool = False) -> int:
    return expect_int(value, name, 0 if allow_zero else 1, MAX_AMOUNT)


def _pairs(value: Any, name: str) -> tuple[tuple[str, float], ...]:
    """A list of (address, value) pairs strictly sorted by address (so: no duplicates)."""
    items = expect_tuple(value, name, max_len=MAX_LIST)
    out: list[tuple[str, float]] = []
    for i, item in enumerate(items):
        pair = expect_tuple(item, f"{name}[{i}]", 2)
        address = _address(pair[0], f"{name}[{i}].address")
        if out and address <= out[-1][0]:
            raise DecodeError(f"{name}: addresses must be sorted and unique (at {address})")
        out.append((address, expect_float(pair[1], f"{name}[{i}].value")))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class MsgSend:
    """bank: move ``amount`` base units from the signer to ``to``."""

    TAG: ClassVar[int] = 1
    to: str
    amount: int

    def to_wire(self) -> tuple[Any, ...]:
        return (self.TAG, self.to, self.amount)

    @classmethod
    def from_fields(cls, f: tuple[Any, ...]) -> MsgSend:
        return cls(_address(f[0], "send.to"), _amount(f[1], "send.amount"))


@dataclass(frozen=True, slots=True)
class MsgCreateValidator:
    """staking: the signer becomes the operator of a validator with consensus key ``pubkey``."""

    TAG: ClassVar[int] = 2
    pubkey: bytes
    amount: int

    def to_wire(self) -> tuple[Any, ...]:
        return (self.TAG, self.pubkey, self.amount)

    @classmethod
    def from_fields(cls, f: tuple[Any, ...]) -> MsgCreateValidator:
        return cls(
            expect_bytes(f[0], "create_validator.pubkey", PUBLIC_KEY_SIZE),
            _amount(f[1], "create_validator.amount"),
        )


@dataclass(frozen=True, slots=True)
class MsgDelegate:
    """staking: bond ``amount`` from the signer to the validator with consensus key ``pubkey``."""

    TAG: ClassVar[int] = 3
    pubkey: bytes
    amount: int

    def to_wire(self) -> tuple[Any, ...]:
        return (self.TAG, self.pubkey, self.amount)

    @classmethod
    def from_fields(cls, f: tuple[Any, ...]) -> MsgDelegate:
        return cls(
            expect_bytes(f[0], "delegate.pubkey", PUBLIC_KEY_SIZE),
            _amount(f[1], "delegate.amount"),
        )


@dataclass(frozen=True, slots=True)
class MsgUndelegate:
    """staking: start unbonding ``amount`` tokens; they return after the unbonding period."""

    TAG: ClassVar[int] = 4
    pubkey: bytes
    amount: int

    def to_wire(self) -> tuple[Any, ...]:
        return (self.TAG, self.pubkey, self.amount)

    @classmethod
    def from_fields(cls, f: tuple[Any, ...]) -> MsgUndelegate:
        return cls(
            expect_bytes(f[0], "undelegate.pubkey", PUBLIC_KEY_SIZE),
            _amount(f[1], "undelegate.amount"),
        )


@dataclass(frozen=True, slots=True)
class MsgCreateTopic:
    """topics: a new prediction topic with every rule field of spec/synthesis.md 5.6."""

    TAG: ClassVar[int] = 5
    metadata: str
    loss_method: str
    epoch_length: int
    ground_truth_lag: int
    worker_submission_window: int
    p_norm: float
    alpha_regret: float
    allow_negative: bool
    epsilon: float
    merit_sortition_alpha: float
    active_inferer_quantile: float
    active_forecaster_quantile: float
    active_reputer_quantile: float

    def to_wire(self) -> tuple[Any, ...]:
        return (
            self.TAG,
            self.metadata,
            self.loss_method,
            self.epoch_length,
            self.ground_truth_lag,
            self.worker_submission_window,
            self.p_norm,
            self.alpha_regret,
            self.allow_negative,
            self.epsilon,
            self.merit_sortition_alpha,
            self.active_inferer_quantile,
            self.active_forecaster_quantile,
            self.active_reputer_quantile,
        )

    @classmethod
    def from_fields(cls, f: tuple[Any, ...]) -> MsgCreateTopic:
        msg = cls(
            expect_str(f[0], "create_topic.metadata", MAX_STRING),
            expect_str(f[1], "create_topic.loss_method", MAX_STRING),
            expect_int(f[2], "create_topic.epoch_length", 1, MAX_HEIGHT),
            expect_int(f[3], "create_topic.ground_truth_lag", 1, MAX_HEIGHT),
            expect_int(f[4], "create_topic.worker_submission_window", 1, MAX_HEIGHT),
            expect_float(f[5], "create_topic.p_norm"),
            expect_float(f[6], "create_topic.alpha_regret"),
            expect_bool(f[7], "create_topic.allow_negative"),
            expect_float(f[8], "create_topic.epsilon"),
            expect_float(f[9], "create_topic.merit_sortition_alpha"),
            expect_float(f[10], "create_topic.active_inferer_quantile"),
            expect_float(f[11], "create_topic.active_forecaster_quantile"),
            expect_float(f[12], "create_topic.active_reputer_quantile"),
        )
        msg.validate_basic()
        return msg

    def validate_basic(self) -> None:
        """The stateless rules of Topic.Validate (spec/synthesis.md 5.6)."""
        if not self.loss_method:
            raise InvalidMessageError("create_topic: loss_method must not be empty")
        if not 2.5 <= self.p_norm <= 4.5:
            raise InvalidMessageError(f"create_topic: p_norm {self.p_norm} not in [2.5, 4.5]")
        if not 0.0 < self.alpha_regret <= 1.0:
            raise InvalidMessageError(
                f"create_topic: alpha_regret {self.alpha_regret} not in (0, 1]"
            )
        if not self.epsilon > 0.0:
            raise InvalidMessageError(f"create_topic: epsilon {self.epsilon} must be > 0")
        for name in (
            "merit_sortition_alpha",
            "active_inferer_quantile",
            "active_forecaster_quantile",
            "active_reputer_quantile",
        ):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise InvalidMessageError(f"create_topic: {name} {value} not in [0, 1)")
        if not self.epoch_length <= self.ground_truth_lag <= 100 * self.epoch_length:
            raise InvalidMessageError(
                f"create_topic: ground_truth_lag {self.ground_truth_lag} must be between "
                f"epoch_length {self.epoch_length} and 100 x epoch_length"
            )
        if not 0 < self.worker_submission_window <= self.epoch_length:
            raise InvalidMessageError(
                f"create_topic: worker_submission_window {self.worker_submission_window} "
                f"must be in (0, epoch_length={self.epoch_length}]"
            )


@dataclass(frozen=True, slots=True)
class MsgFundTopic:
    """topics: pay what you want into a topic's fee revenue."""

    TAG: ClassVar[int] = 6
    topic_id: int
    amount: int

    def to_wire(self) -> tuple[Any, ...]:
        return (self.TAG, self.topic_id, self.amount)

    @classmethod
    def from_fields(cls, f: tuple[Any, ...]) -> MsgFundTopic:
        return cls(
            expect_int(f[0], "fund_topic.topic_id", 1, MAX_TOPIC_ID),
            _amount(f[1], "fund_topic.amount"),
        )


@dataclass(frozen=True, slots=True)
class MsgRegister:
    """actors: register the signer as a worker (``is_reputer`` false) or reputer of a topic."""

    TAG: ClassVar[int] = 7
    topic_id: int
    is_reputer: bool

    def to_wire(self) -> tuple[Any, ...]:
        return (self.TAG, self.topic_id, self.is_reputer)

    @classmethod
    def from_fields(cls, f: tuple[Any, ...]) -> MsgRegister:
        return cls(
            expect_int(f[0], "register.topic_id", 1, MAX_TOPIC_ID),
            expect_bool(f[1], "register.is_reputer"),
        )


@dataclass(frozen=True, slots=True)
class MsgAddStake:
    """actors: a registered reputer adds its own stake in a topic."""

    TAG: ClassVar[int] = 8
    topic_id: int
    amount: int

    def to_wire(self) -> tuple[Any, ...]:
        return (self.TAG, self.topic_id, self.amount)

    @classmethod
    def from_fields(cls, f: tuple[Any, ...]) -> MsgAddStake:
        return cls(
            expect_int(f[0], "add_stake.topic_id", 1, MAX_TOPIC_ID),
            _amount(f[1], "add_stake.amount"),
        )


@dataclass(frozen=True, slots=True)
class MsgRemoveStake:
    """actors: ask to withdraw own reputer stake; paid out after RemoveStakeDelayWindow."""

    TAG: ClassVar[int] = 9
    topic_id: int
    amount: int

    def to_wire(self) -> tuple[Any, ...]:
        return (self.TAG, self.topic_id, self.amount)

    @classmethod
    def from_fields(cls, f: tuple[Any, ...]) -> MsgRemoveStake:
        return cls(
            expect_int(f[0], "remove_stake.topic_id", 1, MAX_TOPIC_ID),
            _amount(f[1], "remove_stake.amount"),
        )


@dataclass(frozen=True, slots=True)
class MsgDelegateStake:
    """actors: delegate stake to a reputer in a topic (counts toward its stake authority)."""

    TAG: ClassVar[int] = 10
    topic_id: int
    reputer: str
    amount: int

    def to_wire(self) -> tuple[Any, ...]:
        return (self.TAG, self.topic_id, self.reputer, self.amount)

    @classmethod
    def from_fields(cls, f: tuple[Any, ...]) -> MsgDelegateStake:
        return cls(
            expect_int(f[0], "delegate_stake.topic_id", 1, MAX_TOPIC_ID),
            _address(f[1], "delegate_stake.reputer"),
            _amount(f[2], "delegate_stake.amount"),
        )


@dataclass(frozen=True, slots=True)
class MsgRemoveDelegateStake:
    """actors: ask to withdraw stake delegated to a reputer; paid after the removal delay."""

    TAG: ClassVar[int] = 14
    topic_id: int
    reputer: str
    amount: int

    def to_wire(self) -> tuple[Any, ...]:
        return (self.TAG, self.topic_id, self.reputer, self.amount)

    @classmethod
    def from_fields(cls, f: tuple[Any, ...]) -> MsgRemoveDelegateStake:
        return cls(
            expect_int(f[0], "remove_delegate_stake.topic_id", 1, MAX_TOPIC_ID),
            _address(f[1], "remove_delegate_stake.reputer"),
            _amount(f[2], "remove_delegate_stake.amount"),
        )


@dataclass(frozen=True, slots=True)
class MsgInsertWorkerPayload:
    """actors: a worker's inference and/or forecast (log10 losses of other inferers)."""

    TAG: ClassVar[int] = 11
    topic_id: int
    nonce: int
    inference: float | None
    forecast: tuple[tuple[str, float], ...]

    def to_wire(self) -> tuple[Any, ...]:
        return (self.TAG, self.topic_id, self.nonce, self.inference, self.forecast)

    @classmethod
    def from_fields(cls, f: tuple[Any, ...]) -> MsgInsertWorkerPayload:
        inference = None if f[2] is None else expect_float(f[2], "worker_payload.inference")
        forecast = _pairs(f[3], "worker_payload.forecast")
        if inference is None and not forecast:
            raise InvalidMessageError("worker_payload: needs an inference, a forecast or both")
        return cls(
            expect_int(f[0], "worker_payload.topic_id", 1, MAX_TOPIC_ID),
            expect_int(f[1], "worker_payload.nonce", 1, MAX_HEIGHT),
            inference,
            forecast,
        )


@dataclass(frozen=True, slots=True)
class ValueBundle:
    """A reputer's log10 losses for one nonce (spec/synthesis.md 1.2); lists sorted by address."""

    combined: float
    naive: float
    inferer_values: tuple[tuple[str, float], ...]
    forecaster_values: tuple[tuple[str, float], ...]
    one_out_inferer_values: tuple[tuple[str, float], ...]
    one_out_forecaster_values: tuple[tuple[str, float], ...]
    one_in_forecaster_values: tuple[tuple[str, float], ...]
    one_out_inferer_forecaster_values: tuple[tuple[str, tuple[tuple[str, float], ...]], ...]

    def to_wire(self) -> tuple[Any, ...]:
        return (
            self.combined,
            self.naive,
            self.inferer_values,
            self.forecaster_values,
            self.one_out_inferer_values,
            self.one_out_forecaster_values,
            self.one_in_forecaster_values,
            self.one_out_inferer_forecaster_values,
        )

    @classmethod
    def from_wire(cls, wire: Any) -> ValueBundle:
        f = expect_tuple(wire, "bundle", 8)
        nested_items = expect_tuple(f[7], "bundle.one_out_inferer_forecaster", max_len=MAX_LIST)
        nested: list[tuple[str, tuple[tuple[str, float], ...]]] = []
        for i, item in enumerate(nested_items):
            pair = expect_tuple(item, f"bundle.one_out_inferer_forecaster[{i}]", 2)
            forecaster = _address(pair[0], f"bundle.one_out_inferer_forecaster[{i}].forecaster")
            if nested and forecaster <= nested[-1][0]:
                raise DecodeError("bundle.one_out_inferer_forecaster: forecasters must be sorted")
            nested.append(
                (forecaster, _pairs(pair[1], f"bundle.one_out_inferer_forecaster[{i}].values"))
            )
        return cls(
            expect_float(f[0], "bundle.combined"),
            expect_float(f[1], "bundle.naive"),
            _pairs(f[2], "bundle.inferer_values"),
            _pairs(f[3], "bundle.forecaster_values"),
            _pairs(f[4], "bundle.one_out_inferer_values"),
            _pairs(f[5], "bundle.one_out_forecaster_values"),
            _pairs(f[6], "bundle.one_in_forecaster_values"),
            tuple(nested),
        )


@dataclass(frozen=True, slots=True)
class MsgInsertReputerPayload:
    """actors: a reputer's loss bundle for worker nonce ``nonce``, inside its reputer window."""

    TAG: ClassVar[int] = 12
    topic_id: int
    nonce: int
    bundle: ValueBundle

    def to_wire(self) -> tuple[Any, ...]:
        return (self.TAG, self.topic_id, self.nonce, self.bundle.to_wire())

    @classmethod
    def from_fields(cls, f: tuple[Any, ...]) -> MsgInsertReputerPayload:
        return cls(
            expect_int(f[0], "reputer_payload.topic_id", 1, MAX_TOPIC_ID),
            expect_int(f[1], "reputer_payload.nonce", 1, MAX_HEIGHT),
            ValueBundle.from_wire(f[2]),
        )


@dataclass(frozen=True, slots=True)
class MsgSubmitEvidence:
    """evidence: anyone may submit double-sign evidence (wire of DuplicateVoteEvidence)."""

    TAG: ClassVar[int] = 13
    evidence: tuple[Any, ...]

    def to_wire(self) -> tuple[Any, ...]:
        return (self.TAG, self.evidence)

    @classmethod
    def from_fields(cls, f: tuple[Any, ...]) -> MsgSubmitEvidence:
        from alloranet.chain.evidence import DuplicateVoteEvidence

        return cls(DuplicateVoteEvidence.from_wire(f[0]).to_wire())


Msg = (
    MsgSend
    | MsgCreateValidator
    | MsgDelegate
    | MsgUndelegate
    | MsgCreateTopic
    | MsgFundTopic
    | MsgRegister
    | MsgAddStake
    | MsgRemoveStake
    | MsgDelegateStake
    | MsgRemoveDelegateStake
    | MsgInsertWorkerPayload
    | MsgInsertReputerPayload
    | MsgSubmitEvidence
)

_FIELD_COUNTS: Final[dict[int, tuple[Any, int]]] = {
    cls.TAG: (cls, n)
    for cls, n in (
        (MsgSend, 2),
        (MsgCreateValidator, 2),
        (MsgDelegate, 2),
        (MsgUndelegate, 2),
        (MsgCreateTopic, 13),
        (MsgFundTopic, 2),
        (MsgRegister, 2),
        (MsgAddStake, 2),
        (MsgRemoveStake, 2),
        (MsgDelegateStake, 3),
        (MsgRemoveDelegateStake, 3),
        (MsgInsertWorkerPayload, 4),
        (MsgInsertReputerPayload, 3),
        (MsgSubmitEvidence, 1),
    )
}


def msg_from_wire(wire: Any) -> Msg:
    """Decode one message (``(tag, fields...)``); raises DecodeError / InvalidMessageError."""
    items = expect_tuple(wire, "message")
    if not items:
        raise DecodeError("message: empty array")
    tag = expect_int(items[0], "message.tag")
    entry = _FIELD_COUNTS.get(tag)
    if entry is None:
        raise DecodeError(f"message: unknown message type {tag}")
    cls, count = entry
    if len(items) != count + 1:
        raise DecodeError(f"message type {tag}: expected {count} fields, got {len(items) - 1}")
    msg: Msg = cls.from_fields(items[1:])
    return msg
