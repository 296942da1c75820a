"""Canonical msgpack: one encoding per value, strict decoding with limits, SHA-256 hashes.

Why canonical: every node hashes and signs the bytes of transactions, votes and blocks, so a
value must have exactly one encoding, or two honest nodes could disagree on a hash. The rules:

* allowed values: None, bool, int, float (always float64, finite), bytes, str, tuple/list
  (an array), dict (a map; keys str, int or bytes, written in ascending order of their own
  encoding; decoding refuses any other order);
* ints in [-2**63, 2**64) use msgpack's smallest native form; larger ones (token amounts can
  reach 10**27 base units) use extension type 1 holding the minimal big-endian two's-complement
  bytes, and only when they do not fit natively;
* NaN and infinities have no encoding; -0.0 keeps its sign bit (exact IEEE bits).

Consensus objects are encoded as arrays in a fixed field order (``to_wire`` on each type);
maps exist for the odd free-form payload and are still canonical.

Decoding checks the size first, then lets msgpack parse with length caps, then re-encodes and
compares bytes: any non-canonical input (float32, an over-long int, unsorted map, trailing
bytes) is rejected with :class:`DecodeError`. Decoded arrays come back as tuples, so decoded
values are immutable and hashable.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any, Final

import msgpack

from alloranet.errors import DecodeError, EncodeError

#: Default ceiling for one decoded object (a block's transaction list may be near this).
DEFAULT_MAX_SIZE: Final = 4 * 1024 * 1024
#: Default nesting limit: consensus objects are shallow; deep nesting is an attack.
DEFAULT_MAX_DEPTH: Final = 32

_BIGINT_EXT: Final = 1
_NATIVE_MIN: Final = -(2**63)
_NATIVE_MAX: Final = 2**64 - 1
_BIGINT_MAX_BYTES: Final = 64

Value = Any  # None | bool | int | float | bytes | str | tuple[Value, ...] | dict[Key, Value]


def _bigint_to_ext(value: int) -> msgpack.ExtType:
    length = (value.bit_length() + 8) // 8  # room for the sign bit
    data = value.to_bytes(length, "big", signed=True)
    if len(data) > _BIGINT_MAX_BYTES:
        raise EncodeError(f"integer too large to encode ({value.bit_length()} bits)")
    return msgpack.ExtType(_BIGINT_EXT, data)


def _prepare(value: Value, depth: int, max_depth: int) -> Any:
    """Turn a value into the exact structure msgpack should write, checking every rule."""
    if depth > max_depth:
        raise EncodeError(f"nesting deeper than {max_depth}")
    kind = type(value)
    if value is None or kind is bool or kind is str or kind is bytes:
        return value
    if kind is int:
        if _NATIVE_MIN <= value <= _NATIVE_MAX:
            return value
        return _bigint_to_ext(value)
    if kind is float:
        if not math.isfinite(value):
            raise EncodeError(f"non-finite float {value!r} has no canonical encoding")
        return value
    if kind is tuple or kind is list:
        return [_prepare(item, depth + 1, max_depth) for item in value]
    if kind is dict:
        entries = []
        for key, item in value.items():
            if type(key) not in (str, int, bytes):
                raise EncodeError(f"map key of type {type(key).__name__} is not allowed")
            entries.append((_pack(_prepare(key, depth + 1, max_depth)), key, item))
        entries.sort(key=lambda entry: entry[0])
        return {key: _prepare(item, depth + 1, max_depth) for _, key, item in entries}
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    raise EncodeError(f"type {kind.__name__} has no canonical encoding")


def _pack(prepared: Any) -> bytes:
    result: bytes = msgpack.packb(prepared, use_bin_type=True, use_single_float=False)
    return result


def encode(value: Value, *, max_depth: int = DEFAULT_MAX_DEPTH) -> bytes:
    """The canonical bytes of ``value``; raises :class:`EncodeError` if it has none."""
    return _pack(_prepare(value, 0, max_depth))


def _ext_hook(code: int, data: bytes) -> int:
    if code != _BIGINT_EXT or not data or len(data) > _BIGINT_MAX_BYTES:
        raise DecodeError(f"unknown or malformed extension type {code}")
    return int.from_bytes(data, "big", signed=True)


def decode(
    data: bytes,
    *,
    max_size: int = DEFAULT_MAX_SIZE,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> Value:
    """Strictly decode canonical bytes; every problem is a :class:`DecodeError`."""
    if type(data) is not bytes:
        if isinstance(data, bytearray | memoryview):
            data = bytes(data)
        else:
            raise DecodeError(f"expected bytes, got {type(data).__name__}")
    if len(data) > max_size:
        raise DecodeError(f"message of {len(data)} bytes exceeds the {max_size}-byte limit")
    if not data:
        raise DecodeError("empty message")
    try:
        value = msgpack.unpackb(
            data,
            raw=False,
            use_list=False,
            strict_map_key=False,
            ext_hook=_ext_hook,
            max_str_len=max_size,
            max_bin_len=max_size,
            max_array_len=max_size,
            max_map_len=max_size // 2,
            max_ext_len=_BIGINT_MAX_BYTES,
        )
    except DecodeError:
        raise
    except Exception as exc:  # msgpack raises many kinds: all mean "malformed"
        raise DecodeError(f"malformed msgpack: {type(exc).__name__}: {exc}") from None
    try:
        canonical = encode(value, max_depth=max_depth)
    except EncodeError as exc:
        raise DecodeError(f"not canonical: {exc}") from None
    except TypeError as exc:  # e.g. an unhashable decoded map key
        raise DecodeError(f"not canonical: {exc}") from None
    if canonical != data:
        raise DecodeError("not canonical: re-encoding gives different bytes")
    return value


def sha256(data: bytes) -> bytes:
    """SHA-256 digest (32 bytes)."""
    return hashlib.sha256(data).digest()


def hash_value(value: Value) -> bytes:
    """The hash of a value = SHA-256 of its canonical encoding."""
    return sha256(encode(value))


# --- typed field access for ``from_wire`` constructors --------------------------------------
# Each raises DecodeError naming the field, so a bad message says exactly what is wrong.


def expect_tuple(
    value: Value, name: str, length: int | None = None, max_len: int | None = None
) -> tuple[Any, ...]:
    if type(value) is not tuple:
        raise DecodeError(f"{name}: expected an array, got {type(value).__name__}")
    if length is not None and len(value) != length:
        raise DecodeError(f"{name}: expected {length} fields, got {len(value)}")
    if max_len is not None and len(value) > max_len:
        raise DecodeError(f"{name}: {len(value)} items exceed the limit of {max_len}")
    return value


def expect_int(value: Value, name: str, lo: int | None = None, hi: int | None = None) -> int:
    if type(value) is not int:
        raise DecodeError(f"{name}: expected an integer, got {type(value).__name__}")
    if lo is not None and value < lo:
        raise DecodeError(f"{name}: {value} is below the minimum {lo}")
    if hi is not None and value > hi:
        raise DecodeError(f"{name}: {value} is above the maximum {hi}")
    return value


def expect_float(value: Value, name: str) -> float:
    if type(value) is not float:
        raise DecodeError(f"{name}: expected a float, got {type(value).__name__}")
    return value  # finiteness is already guaranteed by decode()


def expect_bool(value: Value, name: str) -> bool:
    if type(value) is not bool:
        raise DecodeError(f"{name}: expected a boolean, got {type(value).__name__}")
    return value


def expect_bytes(
    value: Value, name: str, size: int | None = None, max_size: int | None = None
) -> bytes:
    if type(value) is not bytes:
        raise DecodeError(f"{name}: expected bytes, got {type(value).__name__}")
    if size is not None and len(value) != size:
        raise DecodeError(f"{name}: expected {size} bytes, got {len(value)}")
    if max_size is not None and len(value) > max_size:
        raise DecodeError(f"{name}: {len(value)} bytes exceed the limit of {max_size}")
    return value


def expect_str(value: Value, name: str, max_len: int | None = None) -> str:
    if type(value) is not str:
        raise DecodeError(f"{name}: expected a string, got {type(value).__name__}")
    if max_len is not None and len(value) > max_len:
        raise DecodeError(f"{name}: {len(value)} characters exceed the limit of {max_len}")
    return value


__all__ = [
    "DEFAULT_MAX_DEPTH",
    "DEFAULT_MAX_SIZE",
    "decode",
    "encode",
    "expect_bool",
    "expect_bytes",
    "expect_float",
    "expect_int",
    "expect_str",
    "expect_tuple",
    "hash_value",
    "sha256",
]
