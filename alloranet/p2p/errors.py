"""Typed errors of the p2p layer.

Why a family of its own: callers (the node, the sync client) must tell "the message was too
big" (a bug on our side, never retried) from "the peer did not answer in time" (retry another
peer) from "the host is gone" (shut down), without parsing messages.
"""

from __future__ import annotations

from alloranet.errors import AlloraError


class P2PError(AlloraError):
    """Root of every p2p failure."""


class MessageTooLargeError(P2PError):
    """A payload exceeds the configured cap; it was not sent (never a silent drop)."""


class HostClosedError(P2PError):
    """The host is not running (not started yet, closed, or its network thread died)."""


class HostCrashedError(HostClosedError):
    """The libp2p thread stopped with an error; the original error is the ``__cause__``."""


class PeerUnreachableError(P2PError):
    """A dial or a stream to a peer failed (refused, blocked, unknown address)."""


class RequestTimeoutError(P2PError):
    """A request got no complete response within its timeout."""


class RemoteError(P2PError):
    """The remote handler answered with an error status (its message is attached)."""


class ProtocolViolationError(P2PError):
    """A peer sent bytes that break our framing or size rules."""
