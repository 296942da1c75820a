"""Canonical encoding: round trips, one encoding per value, strict rejection of anything else."""

from __future__ import annotations

import math
import struct

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from alloranet import codec
from alloranet.errors import DecodeError, EncodeError

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**200), max_value=2**200)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.binary(max_size=64)
    | st.text(max_size=32)
)
values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=5).map(tuple)
        | st.dictionaries(st.text(max_size=8) | st.integers(-1000, 1000), children, max_size=5)
    ),
    max_leaves=30,
)


@given(values)
def test_round_trip_and_single_encoding(value: object) -> None:
    data = codec.encode(value)
    decoded = codec.decode(data)
    assert codec.encode(decoded) == data
    assert codec.hash_value(decoded) == codec.hash_value(value)


@given(values, st.data())
def test_any_byte_change_is_rejected_or_changes_the_hash(
    value: object, data: st.DataObject
) -> None:
    encoded = bytearray(codec.encode(value))
    index = data.draw(st.integers(0, len(encoded) - 1))
    flip = data.draw(st.integers(1, 255))
    encoded[index] ^= flip
    try:
        other = codec.decode(bytes(encoded))
    except DecodeError:
        return
    assert codec.hash_value(other) != codec.hash_value(value)


def test_floats_keep_exact_bits_and_non_finite_is_refused() -> None:
    for x in (0.1, -0.0, 5e-324, 1.7976931348623157e308):
        back = codec.decode(codec.encode(x))
        assert struct.pack(">d", back) == struct.pack(">d", x)
    for bad in (math.nan, math.inf, -math.inf):
        with pytest.raises(EncodeError):
            codec.encode(bad)


@pytest.mark.parametrize(
    "raw",
    [
        msgpack.packb(1.5, use_single_float=True),  # float32 instead of float64
        b"\xd1\x00\x01",  # int16 holding a value that fits a fixint
        msgpack.packb({"b": 1, "a": 2}),  # unsorted map
        b"\x01\x02",  # trailing bytes
        b"\xcb\x7f\xf8\x00\x00\x00\x00\x00\x00",  # NaN
        b"\x91" * 100,  # deeper than the limit
        b"\xc7\x01\x05\x00",  # unknown extension type
        b"\xc7\x01\x01\x05",  # big-int extension for a value that fits natively
        b"",
        b"\xc1",  # never-used byte
        b"\xa2\xff\xfe",  # invalid UTF-8
    ],
)
def test_non_canonical_or_malformed_bytes_raise_decode_error(raw: bytes) -> None:
    with pytest.raises(DecodeError):
        codec.decode(raw)


def test_size_limit_is_checked_before_parsing() -> None:
    with pytest.raises(DecodeError, match="exceeds"):
        codec.decode(codec.encode(b"x" * 1000), max_size=100)


def test_unsupported_types_have_no_encoding() -> None:
    with pytest.raises(EncodeError):
        codec.encode({1.5: 1})
    with pytest.raises(EncodeError):
        codec.encode(object())
    with pytest.raises(EncodeError):
        codec.encode({1, 2})


def test_field_helpers_name_the_field() -> None:
    with pytest.raises(DecodeError, match="amount"):
        codec.expect_int("1", "amount")
    with pytest.raises(DecodeError, match="key"):
        codec.expect_bytes(b"x", "key", size=32)
    assert codec.expect_int(5, "n", lo=0, hi=10) == 5
