"""The typed errors every layer raises.

Why one module: a node must turn any bad input into a clear, typed error and never crash, so
callers catch these by kind (decode, validation, funds, window, signature) rather than by
message text. Each layer may subclass them; every error carries a short, user-readable message.
"""

from __future__ import annotations


class AlloraError(Exception):
    """Root of every error alloranet raises on purpose."""


class DecodeError(AlloraError):
    """Bytes that are not a canonical, well-formed encoding within the size/depth/type limits."""


class EncodeError(AlloraError):
    """A value that has no canonical encoding (NaN, infinity, unsupported type, too large)."""


class SignatureError(AlloraError):
    """A signature that does not verify, or a key of the wrong shape."""


class KeyFileError(AlloraError):
    """A key file that is missing, unreadable, corrupt, or locked with another passphrase."""


class ValidationError(AlloraError):
    """Input that is well-formed but breaks a rule (bad field value, wrong window, ...)."""


class ConfigError(AlloraError):
    """A configuration file or command-line value that cannot be used."""
