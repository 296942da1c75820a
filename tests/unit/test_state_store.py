"""The SQLite store: round trips, one transaction per block, ordering, corrupt-state detection."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from alloranet.chain.app import get_balance
from alloranet.chain.msgs import MsgSend
from alloranet.chain.testkit import TestChain
from alloranet.chain.tx import decode_tx
from alloranet.state.chainstore import load_app_state, save_block_result, save_genesis_state
from alloranet.state.store import SCHEMA_VERSION, SchemaVersionError, Store, StoreError


async def test_genesis_blocks_commits_txs_roundtrip(tmp_path: Path) -> None:
    chain = TestChain.create()
    store = await Store.open(tmp_path / "node.db")
    try:
        assert await store.latest_height() == 0 and not await store.has_genesis()
        await save_genesis_state(store, chain.state)
        txs = [chain.tx("alice", MsgSend(chain.address("bob"), 5))]
        block_bytes = chain.build(txs)
        result = chain.block(txs)
        await save_block_result(
            store, block_bytes, result, tuple(decode_tx(t).hash for t in txs), b"commit-1"
        )
        assert await store.latest_height() == 1
        assert await store.latest_app_hash() == result.app_hash
        assert await store.load_block(1) == block_bytes
        assert await store.load_block_hash(1) == result.block_hash
        assert await store.load_commit(1) == b"commit-1"
        assert await store.load_block(2) is None and await store.load_commit(2) is None
        location = await store.find_tx(decode_tx(txs[0]).hash)
        assert location is not None and (location.height, location.index, location.code) == (
            1,
            0,
            0,
        )
        assert await store.find_tx(b"\x00" * 32) is None
        loaded = await load_app_state(store)
        assert loaded.app_hash == chain.state.app_hash
        assert loaded.to_dict() == chain.state.to_dict()
        await store.save_commit(2, b"late")
        assert await store.load_commit(2) == b"late"
    finally:
        await store.close()


async def test_order_is_enforced(tmp_path: Path) -> None:
    chain = TestChain.create()
    async with await Store.open(tmp_path / "db") as store:
        with pytest.raises(StoreError, match="genesis"):
            await store.save_block(1, b"h", b"b", {}, b"a")
        await save_genesis_state(store, chain.state)
        with pytest.raises(StoreError, match="already holds"):
            await save_genesis_state(store, chain.state)
        with pytest.raises(StoreError, match="height 0"):
            await store.save_block(2, b"h", b"b", {}, b"a")


async def test_failed_write_rolls_back(tmp_path: Path) -> None:
    chain = TestChain.create()
    async with await Store.open(tmp_path / "db") as store:
        await save_genesis_state(store, chain.state)
        # a duplicate block height inside the transaction fails after the state rows were
        # queued: nothing of it may remain
        await store.save_block(1, b"h1", b"b1", {b"k": b"v"}, b"a" * 32)
        with pytest.raises(sqlite3.IntegrityError):
            await store._write(1, (b"h", b"b"), None, (), {b"x": b"y"}, b"z" * 32)
        state = await store.load_state()
        assert b"x" not in state and state[b"k"] == b"v"
        assert await store.latest_height() == 1


async def test_corrupt_state_detected(tmp_path: Path) -> None:
    chain = TestChain.create()
    path = tmp_path / "db"
    async with await Store.open(path) as store:
        await save_genesis_state(store, chain.state)
    with sqlite3.connect(path) as db:
        db.execute("UPDATE state SET value = x'00' WHERE key = (SELECT MIN(key) FROM state)")
    async with await Store.open(path) as store:
        with pytest.raises(StoreError, match="corrupt"):
            await load_app_state(store)


async def test_wal_mode_and_bad_path(tmp_path: Path) -> None:
    async with await Store.open(tmp_path / "db") as store:
        assert await store._one("PRAGMA journal_mode") == "wal"
    with pytest.raises(StoreError):
        await Store.open(tmp_path / "db", synchronous="OFF")
    (tmp_path / "dir").mkdir()
    with pytest.raises(StoreError):
        await Store.open(tmp_path / "dir")
    async with await Store.open(tmp_path / "empty") as store:
        with pytest.raises(StoreError, match="no genesis"):
            await load_app_state(store)


async def test_tx_result_log_survives_reopening(tmp_path: Path) -> None:
    chain = TestChain.create()
    path = tmp_path / "node.db"
    store = await Store.open(path)
    await save_genesis_state(store, chain.state)
    # fails in delivery (alice cannot send more than she has): code != 0 and a log message
    too_much = get_balance(chain.state, chain.address("alice")) + 1
    txs = [chain.tx("alice", MsgSend(chain.address("bob"), too_much))]
    block_bytes = chain.build(txs)
    result = chain.block(txs)
    assert result.tx_results[0].code != 0 and result.tx_results[0].log
    await save_block_result(store, block_bytes, result, (decode_tx(txs[0]).hash,))
    await store.close()
    reopened = await Store.open(path)
    try:
        location = await reopened.find_tx(decode_tx(txs[0]).hash)
        assert location is not None
        assert (location.code, location.log) == (
            result.tx_results[0].code,
            result.tx_results[0].log,
        )
    finally:
        await reopened.close()


async def test_schema_version_is_stamped_and_checked(tmp_path: Path) -> None:
    path = tmp_path / "node.db"
    store = await Store.open(path)
    await store.close()
    with sqlite3.connect(path) as db:
        (raw,) = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        assert int.from_bytes(raw, "big") == SCHEMA_VERSION
        db.execute(
            "UPDATE meta SET value = ? WHERE key = 'schema_version'", ((99).to_bytes(4, "big"),)
        )
    with pytest.raises(SchemaVersionError, match="schema version 99; this node needs"):
        await Store.open(path)
    with sqlite3.connect(path) as db:
        db.execute("DELETE FROM meta WHERE key = 'schema_version'")  # an unstamped old database
    with pytest.raises(SchemaVersionError, match="before versions were stamped"):
        await Store.open(path)
