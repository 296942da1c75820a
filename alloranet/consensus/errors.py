"""Typed consensus errors, so the driver can penalise a peer by kind and tests can assert kind.

Why subclasses of the shared roots: callers elsewhere catch ``ValidationError`` or
``SignatureError`` without knowing consensus; the finer kinds say exactly what was wrong.
"""

from __future__ import annotations

from alloranet.errors import AlloraError, SignatureError, ValidationError


class ConsensusError(ValidationError):
    """A consensus message or event that breaks a rule; the state is left unchanged."""


class UnknownValidatorError(ConsensusError):
    """The signer is not in the validator set of that height."""


class WrongHeightError(ConsensusError):
    """The message is for another height than the one being decided."""


class WrongVoteTypeError(ConsensusError):
    """The vote's type is not the vote set's type."""


class WrongRoundError(ConsensusError):
    """The vote's round is not the vote set's round."""


class DuplicateVoteError(ConsensusError):
    """The exact same vote was already counted (harmless; not a fault of the peer)."""


class ConflictingVoteError(ConsensusError):
    """A validator signed two different votes for one (height, round, type): equivocation."""


class NotProposerError(ConsensusError):
    """A proposal signed by a validator that is not the proposer of that round."""


class BadSignatureError(ConsensusError, SignatureError):
    """A vote, proposal or commit signature that does not verify."""


class InsufficientPowerError(ConsensusError):
    """A commit without more than 2/3 of the voting power."""


class SignerRefusedError(AlloraError):
    """The signer guard refused to sign: it would be a double sign or a regression."""


class WALCorruptError(AlloraError):
    """A WAL record in the middle of the log fails its checksum (operator action needed)."""


class CrashError(Exception):
    """Raised by a fail point to simulate a process crash (tests and the simulator only).

    Why not an AlloraError: nothing may catch it as a normal error; it must unwind the node.
    """
