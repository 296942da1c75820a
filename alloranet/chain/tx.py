"""The signed transaction envelope.

Layout: ``(body, signature)`` where ``body = (chain_id, signer_pubkey, sequence, fee,
(msg, ...))``. The sign bytes are the canonical encoding of the body, prefixed by a domain tag
so a transaction signature can never be replayed as a vote or a proposal. Replay protection:
``sequence`` must equal the signer account's next sequence. The tx hash is SHA-256 of the full
tx bytes (what the tx index and the mempool key on).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final

from alloranet.chain.errors import MalformedTxError
from alloranet.chain.msgs import MAX_AMOUNT, Msg, msg_from_wire
from alloranet.codec import (
    decode,
    encode,
    expect_bytes,
    expect_int,
    expect_str,
    expect_tuple,
    sha256,
)
from alloranet.crypto import PUBLIC_KEY_SIZE, SIGNATURE_SIZE, address_from_public_key
from alloranet.errors import AlloraError

TX_SIGN_TAG: Final = b"alloranet/tx/v1\x00"
DEFAULT_MAX_TX_BYTES: Final = 64 * 1024
MAX_MSGS: Final = 32
_SIGNATURE_WIRE: Final = 2 + SIGNATURE_SIZE


@dataclass(frozen=True, slots=True)
class TxBody:
    chain_id: str
    signer: bytes
    sequence: int
    fee: int
    msgs: tuple[Msg, ...]

    def to_wire(self) -> tuple[Any, ...]:
        return (
            self.chain_id,
            self.signer,
            self.sequence,
            self.fee,
            tuple(m.to_wire() for m in self.msgs),
        )

    def sign_bytes(self) -> bytes:
        return TX_SIGN_TAG + encode(self.to_wire())

    @property
    def signer_address(self) -> str:
        return compute_address(self.signer)


@lru_cache(maxsize=1 << 16)
def compute_address(public_key: bytes) -> str:
    """Memoised address derivation: bech32 in pure Python costs more than the signature check."""
    return address_from_public_key(public_key)


@dataclass(frozen=True, slots=True)
class Tx:
    body: TxBody
    signature: bytes
    raw: bytes
    hash: bytes
    sign_bytes: bytes  # what the signature covers (sliced from ``raw``, see decode_tx)

    @property
    def signer_address(self) -> str:
        return self.body.signer_address


def sign_tx(
    key: Any, chain_id: str, sequence: int, fee: int, msgs: tuple[Msg, ...] | list[Msg]
) -> bytes:
    """Encode and sign a transaction; ``key`` is a PrivateKey or Signer."""
    body = TxBody(chain_id, key.public_key, sequence, fee, tuple(msgs))
    signature = key.sign(body.sign_bytes())
    return encode((body.to_wire(), signature))


#: Recently decoded transactions by their bytes (see :func:`decode_tx`); ~1 KiB each.
DECODE_CACHE_SIZE: Final = 4_096
_decoded: dict[bytes, Tx] = {}


def decode_tx(data: bytes, max_size: int = DEFAULT_MAX_TX_BYTES) -> Tx:
    """Decode with limits; any problem is a :class:`MalformedTxError` naming it.

    Memoised on the exact bytes: a node decodes each transaction at admission and again when
    a block executes it (and both used to cost as much as the signature check). Decoding is a
    pure function of the bytes, and only successful decodes are kept; a cached transaction
    longer than ``max_size`` is decoded again so that the limit still refuses it."""
    if type(data) is not bytes:  # e.g. a bytearray: not hashable, never cached
        return _decode_tx(bytes(data), max_size)
    cached = _decoded.get(data)
    if cached is not None and len(data) <= max_size:
        return cached
    tx = _decode_tx(data, max_size)
    if len(_decoded) >= DECODE_CACHE_SIZE:
        del _decoded[next(iter(_decoded))]  # the oldest entry
    _decoded[data] = tx
    return tx


def _decode_tx(data: bytes, max_size: int) -> Tx:
    try:
        wire = decode(data, max_size=max_size, max_depth=12)
        outer = expect_tuple(wire, "tx", 2)
        body_w = expect_tuple(outer[0], "tx.body", 5)
        signature = expect_bytes(outer[1], "tx.signature", SIGNATURE_SIZE)
        msgs_w = expect_tuple(body_w[4], "tx.msgs", max_len=MAX_MSGS)
        if not msgs_w:
            raise MalformedTxError("tx: needs at least one message")
        body = TxBody(
            expect_str(body_w[0], "tx.chain_id", 64),
            expect_bytes(body_w[1], "tx.signer", PUBLIC_KEY_SIZE),
            expect_int(body_w[2], "tx.sequence", 0, 2**63 - 1),
            expect_int(body_w[3], "tx.fee", 0, MAX_AMOUNT),
            tuple(msg_from_wire(m) for m in msgs_w),
        )
    except MalformedTxError:
        raise
    except AlloraError as exc:
        raise MalformedTxError(f"malformed transaction: {exc}") from None
    # The input is canonical (decode re-encodes and compares), so the body's canonical bytes
    # are exactly the slice between the 1-byte array header and the 66-byte signature
    # (bin8 header + 64 bytes): no need to encode the body again.
    body_bytes = data[1:-_SIGNATURE_WIRE]
    return Tx(body, signature, data, sha256(data), TX_SIGN_TAG + body_bytes)


def peek_signer(data: bytes) -> bytes | None:
    """The signer public key of an encoded transaction, read without decoding it, or None.

    Why: the mempool must know a transaction's sender (to expect its next queued sequence)
    before the full check, which decodes; peeking saves a second full decode per admission.
    Canonical msgpack fixes the layout: ``0x92`` (outer pair), ``0x95`` (body of five), the
    chain id as fixstr or str8, then the key as ``bin8`` of 32 bytes. Any other shape gives None
    (the caller then decodes). The full decode still checks everything: for any transaction
    that decodes, the bytes read here are exactly its ``body.signer``.
    """
    if len(data) < 40 or data[0] != 0x92 or data[1] != 0x95:
        return None
    head = data[2]
    if 0xA0 <= head <= 0xBF:
        start = 3 + (head & 0x1F)
    elif head == 0xD9:
        start = 4 + data[3]
    else:
        return None
    if data[start : start + 2] != b"\xc4\x20":
        return None
    key = data[start + 2 : start + 2 + PUBLIC_KEY_SIZE]
    return key if len(key) == PUBLIC_KEY_SIZE else None
