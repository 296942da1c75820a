"""The app hash: incremental equals from-scratch, order independent, sensitive to every entry."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from alloranet.chain.kv import AppState, Overlay, compute_bucket_index

keys = st.binary(min_size=1, max_size=12)
values = st.binary(max_size=16)
maps = st.dictionaries(keys, values, max_size=40)
changes = st.dictionaries(keys, st.none() | values, max_size=20)


@settings(max_examples=150, deadline=None)
@given(maps, changes)
def test_incremental_hash_equals_full_rehash(base: dict[bytes, bytes], delta: dict) -> None:
    state = AppState.from_items(base)
    after = state.apply(delta)
    expected = dict(base)
    for k, v in delta.items():
        if v is None:
            expected.pop(k, None)
        else:
            expected[k] = v
    assert after.to_dict() == expected
    assert after.app_hash == AppState.from_items(expected).app_hash
    # the old snapshot is untouched
    assert state.to_dict() == base


@settings(max_examples=100, deadline=None)
@given(maps, st.randoms(use_true_random=False))
def test_hash_independent_of_insertion_order(base: dict[bytes, bytes], rnd) -> None:
    items = list(base.items())
    rnd.shuffle(items)
    assert AppState.from_items(items).app_hash == AppState.from_items(base).app_hash


@settings(max_examples=100, deadline=None)
@given(maps.filter(bool), st.data())
def test_any_single_change_changes_hash(base: dict[bytes, bytes], data) -> None:
    state = AppState.from_items(base)
    key = data.draw(st.sampled_from(sorted(base)))
    new_value = data.draw(values.filter(lambda v: v != base[key]))
    assert state.apply({key: new_value}).app_hash != state.app_hash
    assert state.apply({key: None}).app_hash != state.app_hash
    extra = data.draw(keys.filter(lambda k: k not in base))
    assert state.apply({extra: b""}).app_hash != state.app_hash


def test_overlay_layers_commit_and_discard() -> None:
    state = AppState.from_items({b"a": b"1", b"b": b"2"})
    block = Overlay(state)
    tx = block.child()
    tx.set(b"a", b"9")
    tx.delete(b"b")
    assert tx.get(b"a") == b"9" and tx.get(b"b") is None
    assert block.get(b"a") == b"1"  # not yet committed
    tx.commit()
    failed = block.child()
    failed.set(b"c", b"3")  # dropped: never committed
    assert block.changes() == {b"a": b"9", b"b": None}
    assert block.items_with_prefix(b"") == [(b"a", b"9")]


def test_noop_writes_are_not_changes() -> None:
    state = AppState.from_items({b"a": b"1"})
    overlay = Overlay(state)
    overlay.set(b"a", b"1")
    overlay.delete(b"zz")
    assert overlay.changes() == {}


def test_bucket_index_spreads_keys() -> None:
    used = {compute_bucket_index(i.to_bytes(4, "big")) for i in range(4000)}
    assert len(used) == 256


@settings(max_examples=100, deadline=None)
@given(maps.filter(bool))
def test_bucket_hash_is_sha256_of_canonical_encoding(entries: dict[bytes, bytes]) -> None:
    import hashlib

    from alloranet.chain.kv import compute_bucket_hash
    from alloranet.codec import encode

    expected = hashlib.sha256(encode(tuple(sorted(entries.items())))).digest()
    assert compute_bucket_hash(entries) == expected


@settings(max_examples=300, deadline=None)
@given(st.integers(-(2**500), 2**500) | st.integers(-(2**70), 2**70))
def test_fast_int_encoding_matches_codec(value: int) -> None:
    from alloranet.chain.ledger import load_value, store_value
    from alloranet.codec import decode, encode

    assert store_value(value) == encode(value)
    assert load_value(store_value(value)) == value == decode(store_value(value))


flat = st.one_of(
    st.binary(max_size=40),
    st.text(max_size=40),
    st.integers(-(2**63), 2**64 - 1),
    st.integers(-(2**90), 2**90),
    st.booleans(),
    st.none(),
    st.floats(allow_nan=False, allow_infinity=False),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(flat, max_size=8).map(tuple))
def test_fast_tuple_encoding_matches_codec(value: tuple) -> None:
    from alloranet.chain.ledger import load_value, store_value
    from alloranet.codec import encode

    assert store_value(value) == encode(value)
    assert load_value(store_value(value)) == value
