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

from collections.abc import Callable
from dataclasses import dataclass, fields
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


Decoder = Callable[[Any, str], Any]


def _pubkey(value: Any, name: str) -> bytes:
    return expect_bytes(value, name, PUBLIC_KEY_SIZE)


def _topic_id(value: Any, name: str) -> int:
    return expect_int(value, name, 1, MAX_TOPIC_ID)


def _nonce(value: Any, name: str) -> int:
    return expect_int(value, name, 1, MAX_HEIGHT)


def _height_span(value: Any, name: str) -> int:
    return expect_int(value, name, 1, MAX_HEIGHT)


def _text(value: Any, name: str) -> str:
    return expect_str(value, name, MAX_STRING)


def _optional_float(value: Any, name: str) -> float | None:
    return None if value is None else expect_float(value, name)


class WireMsg:
    """The declarative base of every message: a frozen dataclass whose fields, in declaration
    order, are the wire array after the tag. A subclass declares ``TAG``, ``NAME`` (the prefix of
    its error messages) and one ``DECODERS`` entry per field (``decoder(value, "name.field")``
    checks type and range); ``validate_basic`` adds the stateless rules that span fields."""

    __slots__ = ()
    TAG: ClassVar[int]
    NAME: ClassVar[str]
    DECODERS: ClassVar[tuple[Decoder, ...]]

    def to_wire(self) -> tuple[Any, ...]:
        return (self.TAG, *(getattr(self, f.name) for f in fields(self)))  # type: ignore[arg-type]

    @classmethod
    def field_count(cls) -> int:
        return len(cls.DECODERS)

    @classmethod
    def from_fields(cls, values: tuple[Any, ...]) -> Any:
        names = [f.name for f in fields(cls)]  # type: ignore[arg-type]
        decoded = [
            decoder(value, f"{cls.NAME}.{name}")
            for decoder, value, name in zip(cls.DECODERS, values, names, strict=True)
        ]
        msg = cls(*decoded)
        msg.validate_basic()
        return msg

    def validate_basic(self) -> None:
        """Stateless rules across fields; none by default."""


@dataclass(frozen=True, slots=True)
class MsgSend(WireMsg):
    """bank: move ``amount`` base units from the signer to ``to``."""

    TAG: ClassVar[int] = 1
    NAME: ClassVar[str] = "send"
    DECODERS: ClassVar[tuple[Decoder, ...]] = (_address, _amount)
    to: str
    amount: int


@dataclass(frozen=True, slots=True)
class MsgCreateValidator(WireMsg):
    """staking: the signer becomes the operator of a validator with consensus key ``pubkey``."""

    TAG: ClassVar[int] = 2
    NAME: ClassVar[str] = "create_validator"
    DECODERS: ClassVar[tuple[Decoder, ...]] = (_pubkey, _amount)
    pubkey: bytes
    amount: int


@dataclass(frozen=True, slots=True)
class MsgDelegate(WireMsg):
    """staking: bond ``amount`` from the signer to the validator with consensus key ``pubkey``."""

    TAG: ClassVar[int] = 3
    NAME: ClassVar[str] = "delegate"
    DECODERS: ClassVar[tuple[Decoder, ...]] = (_pubkey, _amount)
    pubkey: bytes
    amount: int


@dataclass(frozen=True, slots=True)
class MsgUndelegate(WireMsg):
    """staking: start unbonding ``amount`` tokens; they return after the unbonding period."""

    TAG: ClassVar[int] = 4
    NAME: ClassVar[str] = "undelegate"
    DECODERS: ClassVar[tuple[Decoder, ...]] = (_pubkey, _amount)
    pubkey: bytes
    amount: int


@dataclass(frozen=True, slots=True)
class MsgUnjail(WireMsg):
    """slashing: the operator returns its downtime-jailed validator after the jail period."""

    TAG: ClassVar[int] = 15
    NAME: ClassVar[str] = "unjail"
    DECODERS: ClassVar[tuple[Decoder, ...]] = (_pubkey,)
    pubkey: bytes


@dataclass(frozen=True, slots=True)
class TopicRules:
    """Every rule field of a topic (spec/synthesis.md 5.6), shared by the create-topic message
    and the stored topic (alloranet.chain.ledger.Topic), with the stateless rules of
    Topic.Validate."""

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

    def validate_basic(self) -> None:
        """The stateless rules of Topic.Validate (spec/synthesis.md 5.6)."""
        if not self.loss_method:
            raise InvalidMessageError("create_topic: loss_method must not be empty")
        from alloranet.chain.params import compute_topic_params

        try:  # the numeric rules are the synthesis TopicParams' own (one definition)
            compute_topic_params(self)
        except ValidationError as exc:
            raise InvalidMessageError(f"create_topic: {exc}") from None
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

    def rules(self) -> dict[str, Any]:
        """The rule fields by name (to build a stored topic from a message)."""
        return {f.name: getattr(self, f.name) for f in fields(TopicRules)}


@dataclass(frozen=True, slots=True)
class MsgCreateTopic(TopicRules, WireMsg):
    """topics: a new prediction topic with every rule field of spec/synthesis.md 5.6."""

    TAG: ClassVar[int] = 5
    NAME: ClassVar[str] = "create_topic"
    DECODERS: ClassVar[tuple[Decoder, ...]] = (
        _text,
        _text,
        _height_span,
        _height_span,
        _height_span,
        *(expect_float,) * 2,
        expect_bool,
        *(expect_float,) * 5,
    )


@dataclass(frozen=True, slots=True)
class MsgFundTopic(WireMsg):
    """topics: pay what you want into a topic's fee revenue."""

    TAG: ClassVar[int] = 6
    NAME: ClassVar[str] = "fund_topic"
    DECODERS: ClassVar[tuple[Decoder, ...]] = (_topic_id, _amount)
    topic_id: int
    amount: int


@dataclass(frozen=True, slots=True)
class MsgRegister(WireMsg):
    """actors: register the signer as a worker (``is_reputer`` false) or reputer of a topic."""

    TAG: ClassVar[int] = 7
    NAME: ClassVar[str] = "register"
    DECODERS: ClassVar[tuple[Decoder, ...]] = (_topic_id, expect_bool)
    topic_id: int
    is_reputer: bool


@dataclass(frozen=True, slots=True)
class MsgAddStake(WireMsg):
    """actors: a registered reputer adds its own stake in a topic."""

    TAG: ClassVar[int] = 8
    NAME: ClassVar[str] = "add_stake"
    DECODERS: ClassVar[tuple[Decoder, ...]] = (_topic_id, _amount)
    topic_id: int
    amount: int


@dataclass(frozen=True, slots=True)
class MsgRemoveStake(WireMsg):
    """actors: ask to withdraw own reputer stake; paid out after RemoveStakeDelayWindow."""

    TAG: ClassVar[int] = 9
    NAME: ClassVar[str] = "remove_stake"
    DECODERS: ClassVar[tuple[Decoder, ...]] = (_topic_id, _amount)
    topic_id: int
    amount: int


@dataclass(frozen=True, slots=True)
class MsgDelegateStake(WireMsg):
    """actors: delegate stake to a reputer in a topic (counts toward its stake authority)."""

    TAG: ClassVar[int] = 10
    NAME: ClassVar[str] = "delegate_stake"
    DECODERS: ClassVar[tuple[Decoder, ...]] = (_topic_id, _address, _amount)
    topic_id: int
    reputer: str
    amount: int


@dataclass(frozen=True, slots=True)
class MsgRemoveDelegateStake(WireMsg):
    """actors: ask to withdraw stake delegated to a reputer; paid after the removal delay."""

    TAG: ClassVar[int] = 14
    NAME: ClassVar[str] = "remove_delegate_stake"
    DECODERS: ClassVar[tuple[Decoder, ...]] = (_topic_id, _address, _amount)
    topic_id: int
    reputer: str
    amount: int


@dataclass(frozen=True, slots=True)
class MsgInsertWorkerPayload(WireMsg):
    """actors: a worker's inference and/or forecast (log10 losses of other inferers).

    A forecast longer than MaxElementsPerForecast is accepted and cut to the elements of the
    best-scored inferers when it is stored (spec/synthesis.md 1.1; alloranet.chain.actors)."""

    TAG: ClassVar[int] = 11
    NAME: ClassVar[str] = "worker_payload"
    DECODERS: ClassVar[tuple[Decoder, ...]] = (_topic_id, _nonce, _optional_float, _pairs)
    topic_id: int
    nonce: int
    inference: float | None
    forecast: tuple[tuple[str, float], ...]

    def validate_basic(self) -> None:
        if self.inference is None and not self.forecast:
            raise InvalidMessageError("worker_payload: needs an inference, a forecast or both")


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


def _bundle(value: Any, name: str) -> ValueBundle:
    del name
    return ValueBundle.from_wire(value)


@dataclass(frozen=True, slots=True)
class MsgInsertReputerPayload(WireMsg):
    """actors: a reputer's loss bundle for worker nonce ``nonce``, inside its reputer window."""

    TAG: ClassVar[int] = 12
    NAME: ClassVar[str] = "reputer_payload"
    DECODERS: ClassVar[tuple[Decoder, ...]] = (_topic_id, _nonce, _bundle)
    topic_id: int
    nonce: int
    bundle: ValueBundle

    def to_wire(self) -> tuple[Any, ...]:
        return (self.TAG, self.topic_id, self.nonce, self.bundle.to_wire())


def _evidence(value: Any, name: str) -> tuple[Any, ...]:
    del name
    from alloranet.chain.evidence import DuplicateVoteEvidence

    return DuplicateVoteEvidence.from_wire(value).to_wire()


@dataclass(frozen=True, slots=True)
class MsgSubmitEvidence(WireMsg):
    """evidence: anyone may submit double-sign evidence (wire of DuplicateVoteEvidence)."""

    TAG: ClassVar[int] = 13
    NAME: ClassVar[str] = "evidence"
    DECODERS: ClassVar[tuple[Decoder, ...]] = (_evidence,)
    evidence: tuple[Any, ...]


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
    | MsgUnjail
)

_BY_TAG: Final[dict[int, type[WireMsg]]] = {
    cls.TAG: cls
    for cls in (
        MsgSend,
        MsgCreateValidator,
        MsgDelegate,
        MsgUndelegate,
        MsgCreateTopic,
        MsgFundTopic,
        MsgRegister,
        MsgAddStake,
        MsgRemoveStake,
        MsgDelegateStake,
        MsgRemoveDelegateStake,
        MsgInsertWorkerPayload,
        MsgInsertReputerPayload,
        MsgSubmitEvidence,
        MsgUnjail,
    )
}


def msg_from_wire(wire: Any) -> Msg:
    """Decode one message (``(tag, fields...)``); raises DecodeError / InvalidMessageError."""
    items = expect_tuple(wire, "message")
    if not items:
        raise DecodeError("message: empty array")
    tag = expect_int(items[0], "message.tag")
    cls = _BY_TAG.get(tag)
    if cls is None:
        raise DecodeError(f"message: unknown message type {tag}")
    count = cls.field_count()
    if len(items) != count + 1:
        raise DecodeError(f"message type {tag}: expected {count} fields, got {len(items) - 1}")
    msg: Msg = cls.from_fields(items[1:])
    return msg
