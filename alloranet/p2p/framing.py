"""Framing of the request/response stream protocol (docs/protocol.md, "Request/response").

One request per stream. The requester writes ``u32 length (big-endian) | request bytes``; the
responder answers ``u8 status | u32 length | body`` and closes. Status 0 = OK (body = response),
any other status = error (body = UTF-8 reason). Pure helpers, so the limits are testable
without a network.
"""

from __future__ import annotations

import enum
import struct
from typing import Final

from alloranet.p2p.errors import MessageTooLargeError, ProtocolViolationError

LENGTH_BYTES: Final = 4
STATUS_BYTES: Final = 1
_U32: Final = struct.Struct(">I")
MAX_ERROR_TEXT: Final = 512


class Status(enum.IntEnum):
    OK = 0
    ERROR = 1
    NO_HANDLER = 2
    TOO_LARGE = 3
    BUSY = 4


def encode_request(data: bytes, max_size: int) -> bytes:
    """The request frame; raises MessageTooLargeError rather than sending an oversize one."""
    if len(data) > max_size:
        raise MessageTooLargeError(f"request of {len(data)} bytes exceeds {max_size}")
    return _U32.pack(len(data)) + data


def encode_response(status: Status, body: bytes, max_size: int) -> bytes:
    """The response frame; an oversize OK body becomes a TOO_LARGE error frame."""
    if status is Status.OK and len(body) > max_size:
        status = Status.TOO_LARGE
        body = f"response of {len(body)} bytes exceeds {max_size}".encode()
    if status is not Status.OK:
        body = body[:MAX_ERROR_TEXT]
    return bytes((status,)) + _U32.pack(len(body)) + body


def decode_length(header: bytes, max_size: int) -> int:
    """Read a u32 length header and check it against ``max_size`` before reading the body."""
    if len(header) != LENGTH_BYTES:
        raise ProtocolViolationError("truncated length header")
    (length,) = _U32.unpack(header)
    if length > max_size:
        raise ProtocolViolationError(f"frame of {length} bytes exceeds the limit of {max_size}")
    return int(length)


def decode_status(byte: bytes) -> Status:
    """The status byte of a response; unknown values are a protocol violation."""
    if len(byte) != STATUS_BYTES:
        raise ProtocolViolationError("truncated status")
    try:
        return Status(byte[0])
    except ValueError:
        raise ProtocolViolationError(f"unknown response status {byte[0]}") from None


#: Bytes a direct frame adds to its payload besides the length header (channel name + len).
DIRECT_OVERHEAD: Final = 1 + 32


def encode_direct(channel: str, data: bytes, max_size: int) -> bytes:
    """A direct-stream frame: ``u32 length | u8 channel length | channel | data``."""
    if len(data) > max_size:
        raise MessageTooLargeError(f"direct message of {len(data)} bytes exceeds {max_size}")
    name = channel.encode()
    if not 0 < len(name) <= 32:
        raise ProtocolViolationError(f"bad channel name {channel!r}")
    body = bytes((len(name),)) + name + data
    return _U32.pack(len(body)) + body


#: A direct frame of length 0 carries nothing: a keep-alive the receiver only notes.
KEEPALIVE_FRAME: Final = _U32.pack(0)


def decode_direct(body: bytes) -> tuple[str, bytes]:
    """Split a direct frame body into (channel, data); raises ProtocolViolationError."""
    if not body or not 0 < body[0] <= 32 or len(body) < 1 + body[0]:
        raise ProtocolViolationError("malformed direct frame")
    try:
        channel = body[1 : 1 + body[0]].decode()
    except UnicodeDecodeError:
        raise ProtocolViolationError("direct frame channel is not UTF-8") from None
    return channel, body[1 + body[0] :]
