"""Typed errors of the state machine.

Why a family of kinds: the mempool, the RPC and the tests react to *what* went wrong (a stale
sequence is retried with a fresh one; a closed window is not), so each rule violation raises a
subclass of :class:`alloranet.errors.ValidationError` with a message a user can act on. Each kind
carries a stable numeric ``code`` that goes into the transaction result (0 means success).
"""

from __future__ import annotations

from typing import ClassVar

from alloranet.errors import ValidationError


class ChainError(ValidationError):
    """A transaction or block that breaks a rule of the chain."""

    code: ClassVar[int] = 1


class MalformedTxError(ChainError):
    """Bytes that do not decode into a well-formed transaction."""

    code = 2


class WrongChainError(ChainError):
    """A transaction signed for another chain id."""

    code = 3


class BadSignatureError(ChainError):
    """The envelope's signature does not verify with its signer key."""

    code = 4


class SequenceError(ChainError):
    """Replay protection: the sequence is not the account's next one."""

    code = 5


class InsufficientFundsError(ChainError):
    """The account cannot pay the amount or fee."""

    code = 6


class InvalidMessageError(ChainError):
    """A message field breaks a rule (bad range, unknown target, ...)."""

    code = 7


class NotFoundError(ChainError):
    """The message refers to a topic, validator or actor that does not exist."""

    code = 8


class UnauthorizedError(ChainError):
    """The signer may not do this (not registered, not the owner, jailed...)."""

    code = 9


class WindowError(ChainError):
    """A payload outside its open submission window, or a second one for the same nonce."""

    code = 10


class StakeError(ChainError):
    """Not enough stake, or a stake change that is not allowed."""

    code = 11


class EvidenceError(ChainError):
    """Double-sign evidence that is invalid, too old or already punished."""

    code = 12


class BlockError(ChainError):
    """A block that must be rejected as a whole (bad header, time, hash or evidence)."""

    code = 13


class InvariantError(ChainError):
    """A broken state invariant (e.g. total supply): a bug, never user error."""

    code = 14
