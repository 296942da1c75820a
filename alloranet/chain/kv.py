"""The application state: an immutable key-value map with an incremental app hash.

Why this shape: the state is ``bytes -> bytes`` (values canonical-encoded) so the store can
persist it as a change set, and so the app hash has one obvious definition.

App hash (documented, consensus-critical):

* every key belongs to bucket ``crc32(key) & 0xFF`` (256 buckets, spread evenly; CRC-32 only
  spreads keys, the hashing below is SHA-256, and it is several times cheaper per lookup);
* a bucket's hash is ``sha256(encode(((k1, v1), (k2, v2), ...)))`` over its entries sorted by
  key (an empty bucket hashes the encoding of the empty array);
* the app hash is ``sha256(b"alloranet/apphash/v1" + h0 + h1 + ... + h255)``.

Two states have the same app hash iff they hold the same entries (up to SHA-256 collisions).
The state is a tuple of 256 dicts; applying a change set copies and rehashes only the buckets it
touches, so a block that changes a few keys costs a few buckets, not the whole state, and the
previous state object stays valid (nodes keep it until the block is stored).

:class:`Overlay` is the per-block (and per-transaction) write layer: reads fall through to the
parent, writes stay local until :meth:`Overlay.commit` merges them into the parent, so a failed
message is discarded by simply dropping its overlay.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping
from typing import Final
from zlib import crc32

import msgpack

from alloranet.codec import encode

NUM_BUCKETS: Final = 256
_ROOT_TAG: Final = b"alloranet/apphash/v1"
_EMPTY_BUCKET_HASH: Final = hashlib.sha256(encode(())).digest()

#: A change set: key -> new value, or None for a deletion.
ChangeSet = Mapping[bytes, bytes | None]


def compute_bucket_index(key: bytes) -> int:
    """The bucket a key lives in (low byte of its CRC-32)."""
    return crc32(key) & 0xFF


def compute_bucket_hash(entries: Mapping[bytes, bytes]) -> bytes:
    """Hash of one bucket: SHA-256 of the canonical array of its (key, value) pairs, sorted.

    Keys and values are bytes, for which plain msgpack (bin types) already is the canonical
    encoding, so this packs directly instead of walking the value through the codec's checks
    (the bucket hashes were the largest cost of a block after signature checks); a test pins
    the bytes to :func:`alloranet.codec.encode`.
    """
    if not entries:
        return _EMPTY_BUCKET_HASH
    packed: bytes = msgpack.packb(sorted(entries.items()), use_bin_type=True)
    return hashlib.sha256(packed).digest()


def compute_root(bucket_hashes: Iterable[bytes]) -> bytes:
    """The app hash over the 256 bucket hashes, in bucket order."""
    return hashlib.sha256(_ROOT_TAG + b"".join(bucket_hashes)).digest()


class AppState:
    """An immutable snapshot of the application state with its app hash.

    Never mutate the bucket dicts: :meth:`apply` returns a new snapshot sharing untouched
    buckets with this one.
    """

    __slots__ = ("_app_hash", "_bucket_hashes", "_buckets")

    def __init__(
        self,
        buckets: tuple[dict[bytes, bytes], ...],
        bucket_hashes: tuple[bytes, ...],
    ) -> None:
        self._buckets = buckets
        self._bucket_hashes = bucket_hashes
        self._app_hash = compute_root(bucket_hashes)

    @classmethod
    def empty(cls) -> AppState:
        return cls(tuple({} for _ in range(NUM_BUCKETS)), (_EMPTY_BUCKET_HASH,) * NUM_BUCKETS)

    @classmethod
    def from_items(cls, items: Mapping[bytes, bytes] | Iterable[tuple[bytes, bytes]]) -> AppState:
        """Build a snapshot (e.g. from the store) and hash every bucket once."""
        buckets: tuple[dict[bytes, bytes], ...] = tuple({} for _ in range(NUM_BUCKETS))
        pairs = items.items() if isinstance(items, Mapping) else items
        for key, value in pairs:
            buckets[compute_bucket_index(key)][bytes(key)] = bytes(value)
        return cls(buckets, tuple(compute_bucket_hash(b) for b in buckets))

    @property
    def app_hash(self) -> bytes:
        return self._app_hash

    def get(self, key: bytes) -> bytes | None:
        return self._buckets[compute_bucket_index(key)].get(key)

    def __len__(self) -> int:
        return sum(len(b) for b in self._buckets)

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        """Every entry, sorted by key (deterministic)."""
        merged: dict[bytes, bytes] = {}
        for bucket in self._buckets:
            merged.update(bucket)
        for key in sorted(merged):
            yield key, merged[key]

    def items_with_prefix(self, prefix: bytes) -> list[tuple[bytes, bytes]]:
        """Entries whose key starts with ``prefix``, sorted by key. O(state): use sparingly."""
        found = [
            (k, v) for bucket in self._buckets for k, v in bucket.items() if k.startswith(prefix)
        ]
        found.sort()
        return found

    def to_dict(self) -> dict[bytes, bytes]:
        return dict(self.items())

    def apply(self, changes: ChangeSet) -> AppState:
        """A new snapshot with ``changes`` applied; only touched buckets are copied and rehashed."""
        touched: dict[int, dict[bytes, bytes]] = {}
        for key, value in changes.items():
            index = compute_bucket_index(key)
            bucket = touched.get(index)
            if bucket is None:
                bucket = dict(self._buckets[index])
                touched[index] = bucket
            if value is None:
                bucket.pop(key, None)
            else:
                bucket[key] = value
        buckets = list(self._buckets)
        hashes = list(self._bucket_hashes)
        for index in sorted(touched):
            buckets[index] = touched[index]
            hashes[index] = compute_bucket_hash(touched[index])
        return AppState(tuple(buckets), tuple(hashes))


class Overlay:
    """A write layer over a snapshot or another overlay; the unit of atomicity."""

    __slots__ = ("_parent", "_writes")

    def __init__(self, parent: AppState | Overlay) -> None:
        self._parent = parent
        self._writes: dict[bytes, bytes | None] = {}

    def get(self, key: bytes) -> bytes | None:
        if key in self._writes:
            return self._writes[key]
        return self._parent.get(key)

    def set(self, key: bytes, value: bytes) -> None:
        self._writes[key] = value

    def delete(self, key: bytes) -> None:
        self._writes[key] = None

    def child(self) -> Overlay:
        return Overlay(self)

    def commit(self) -> None:
        """Merge this layer's writes into its parent overlay."""
        if not isinstance(self._parent, Overlay):
            raise TypeError("only a nested overlay can be committed into its parent")
        self._parent._writes.update(self._writes)
        self._writes = {}

    def root(self) -> AppState:
        parent = self._parent
        while isinstance(parent, Overlay):
            parent = parent._parent
        return parent

    def items_with_prefix(self, prefix: bytes) -> list[tuple[bytes, bytes]]:
        """Entries under ``prefix`` as this overlay sees them, sorted by key."""
        layers: list[Overlay] = []
        node: AppState | Overlay = self
        while isinstance(node, Overlay):
            layers.append(node)
            node = node._parent
        merged: dict[bytes, bytes | None] = dict(node.items_with_prefix(prefix))
        for layer in reversed(layers):
            for key, value in layer._writes.items():
                if key.startswith(prefix):
                    merged[key] = value
        return sorted((k, v) for k, v in merged.items() if v is not None)

    def changes(self) -> dict[bytes, bytes | None]:
        """This layer's writes as a key-sorted change set (no-op writes removed)."""
        base = self._parent
        out: dict[bytes, bytes | None] = {}
        for key in sorted(self._writes):
            value = self._writes[key]
            if base.get(key) != value:
                out[key] = value
        return out
