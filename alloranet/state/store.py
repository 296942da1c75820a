"""The SQLite store: blocks, commits, tx index, application state and metadata.

Why this shape (spec/limits.md): SQLite in WAL mode, and exactly ONE write transaction per
block, filled with ``executemany`` (a handful of awaited calls per block, never one per row:
an aiosqlite call costs a thread hop). The block, its tx index, the state change set and the
new height/app hash land in the same transaction, so after a crash the database holds either
the whole block or none of it; SQLite's journal guarantees the rest. ``synchronous=FULL`` by
default: a block the node acknowledged survives power loss, not only a process crash.

Tables: ``blocks(height, hash, data)``, ``commits(height, data)`` (the +2/3 precommits that
committed a height; they may arrive with the block or later), ``txs(hash, height, idx, code)``,
``state(key, value)`` (the chain's key-value map; deletions remove rows) and ``meta(key,
value)`` with ``height``, ``app_hash`` and ``schema_version``.

Why a schema version: a node must never read a database laid out for another version of this
code as if it were its own (a missing column is an obscure crash, a changed meaning silently
wrong answers). A new database is stamped with :data:`SCHEMA_VERSION`; opening one with any
other stamp, or an old one without a stamp, fails with a clear :class:`SchemaVersionError`.
Version 2 added ``txs.log`` so a tx lookup keeps its result message across restarts.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import aiosqlite

from alloranet.errors import AlloraError

_SCHEMA: Final = (
    "CREATE TABLE IF NOT EXISTS blocks (height INTEGER PRIMARY KEY, hash BLOB NOT NULL,"
    " data BLOB NOT NULL)",
    "CREATE TABLE IF NOT EXISTS commits (height INTEGER PRIMARY KEY, data BLOB NOT NULL)",
    "CREATE TABLE IF NOT EXISTS txs (hash BLOB PRIMARY KEY, height INTEGER NOT NULL,"
    " idx INTEGER NOT NULL, code INTEGER NOT NULL, log TEXT NOT NULL DEFAULT '')",
    "CREATE TABLE IF NOT EXISTS state (key BLOB PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL)",
)


#: The layout this code reads and writes (stored in ``meta`` as ``schema_version``).
SCHEMA_VERSION: Final = 2


class StoreError(AlloraError):
    """The database is unusable, or a write breaks the store's order (e.g. a height gap)."""


class SchemaVersionError(StoreError):
    """The database was written by a version of the node with another layout."""


@dataclass(frozen=True, slots=True)
class TxLocation:
    height: int
    index: int
    code: int
    log: str = ""


class Store:
    """One node's database. Open with ``await Store.open(path)``; ``await close()`` when done."""

    def __init__(self, db: aiosqlite.Connection, path: Path) -> None:
        self._db = db
        self.path = path

    @classmethod
    async def open(cls, path: str | os.PathLike[str], synchronous: str = "FULL") -> Store:
        if synchronous not in ("FULL", "NORMAL"):
            raise StoreError(f"synchronous must be FULL or NORMAL, not {synchronous!r}")
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            db = await aiosqlite.connect(str(target), isolation_level=None)
        except Exception as exc:  # sqlite3 raises several kinds for a bad path or file
            raise StoreError(f"cannot open database {target}: {exc}") from None
        store = cls(db, target)
        try:
            await db.execute("PRAGMA journal_mode=WAL")
            await db.execute(f"PRAGMA synchronous={synchronous}")
            await db.execute("PRAGMA foreign_keys=OFF")
            tables = await store._one("SELECT count(*) FROM sqlite_master WHERE type = 'table'")
            for statement in _SCHEMA:
                await db.execute(statement)
            await store._check_schema(fresh=not tables)
        except SchemaVersionError:
            await db.close()
            raise
        except Exception as exc:
            await db.close()
            raise StoreError(f"database {target} is not usable: {exc}") from None
        return store

    async def _check_schema(self, fresh: bool) -> None:
        raw = await self._one("SELECT value FROM meta WHERE key = 'schema_version'")
        if raw is None and fresh:
            await self._db.execute(
                "INSERT INTO meta (key, value) VALUES ('schema_version', ?)",
                (SCHEMA_VERSION.to_bytes(4, "big"),),
            )
            return
        found = (
            "none (written before versions were stamped)"
            if raw is None
            else str(int.from_bytes(raw, "big"))
        )
        if raw is None or int.from_bytes(raw, "big") != SCHEMA_VERSION:
            raise SchemaVersionError(
                f"database {self.path} has schema version {found}; this node needs "
                f"{SCHEMA_VERSION}. Move the data directory aside and resync from genesis "
                "(or run the node version that wrote it)."
            )

    async def close(self) -> None:
        await self._db.close()

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- reads ---------------------------------------------------------------------------
    async def _one(self, sql: str, args: tuple[Any, ...] = ()) -> Any:
        async with self._db.execute(sql, args) as cursor:
            row = await cursor.fetchone()
        return None if row is None else row[0]

    async def latest_height(self) -> int:
        """The height of the last block saved (0 = only genesis, or nothing yet)."""
        value = await self._one("SELECT value FROM meta WHERE key = 'height'")
        return 0 if value is None else int.from_bytes(value, "big")

    async def latest_app_hash(self) -> bytes | None:
        value: bytes | None = await self._one("SELECT value FROM meta WHERE key = 'app_hash'")
        return value

    async def has_genesis(self) -> bool:
        return await self.latest_app_hash() is not None

    async def load_state(self) -> dict[bytes, bytes]:
        async with self._db.execute("SELECT key, value FROM state ORDER BY key") as cursor:
            rows = await cursor.fetchall()
        return {bytes(k): bytes(v) for k, v in rows}

    async def load_block(self, height: int) -> bytes | None:
        value: bytes | None = await self._one("SELECT data FROM blocks WHERE height = ?", (height,))
        return value

    async def load_block_hash(self, height: int) -> bytes | None:
        value: bytes | None = await self._one("SELECT hash FROM blocks WHERE height = ?", (height,))
        return value

    async def load_commit(self, height: int) -> bytes | None:
        value: bytes | None = await self._one(
            "SELECT data FROM commits WHERE height = ?", (height,)
        )
        return value

    async def find_tx(self, tx_hash: bytes) -> TxLocation | None:
        async with self._db.execute(
            "SELECT height, idx, code, log FROM txs WHERE hash = ?", (tx_hash,)
        ) as cursor:
            row = await cursor.fetchone()
        return None if row is None else TxLocation(row[0], row[1], row[2], row[3])

    # --- writes --------------------------------------------------------------------------
    async def save_genesis(self, state: Mapping[bytes, bytes], app_hash: bytes) -> None:
        """Write the genesis state (height 0) in one transaction; refuses a non-empty store."""
        if await self.has_genesis():
            raise StoreError(f"{self.path} already holds a chain")
        await self._write(0, None, None, (), state, app_hash)

    async def save_block(
        self,
        height: int,
        block_hash: bytes,
        block_bytes: bytes,
        changes: Mapping[bytes, bytes | None],
        app_hash: bytes,
        tx_results: Iterable[tuple[bytes, int] | tuple[bytes, int, str]] = (),
        commit: bytes | None = None,
    ) -> None:
        """Persist block ``height`` with its state changes, tx index and new app hash, atomically.

        ``tx_results`` is (tx hash, result code[, log]) in block order; ``commit`` the commit that
        finalised this block if already known (else use :meth:`save_commit` later).
        """
        current = await self.latest_height()
        if not await self.has_genesis():
            raise StoreError("save_genesis must come before the first block")
        if height != current + 1:
            raise StoreError(f"cannot save block {height}: the store is at height {current}")
        await self._write(height, (block_hash, block_bytes), commit, tx_results, changes, app_hash)

    async def save_commit(self, height: int, commit: bytes) -> None:
        await self._db.execute(
            "INSERT OR REPLACE INTO commits (height, data) VALUES (?, ?)", (height, commit)
        )

    async def _write(
        self,
        height: int,
        block: tuple[bytes, bytes] | None,
        commit: bytes | None,
        tx_results: Iterable[tuple[bytes, int] | tuple[bytes, int, str]],
        changes: Mapping[bytes, bytes | None],
        app_hash: bytes,
    ) -> None:
        upserts = [(k, v) for k, v in changes.items() if v is not None]
        deletes = [(k,) for k, v in changes.items() if v is None]
        txs = [
            (r[0], height, i, r[1], r[2] if len(r) > 2 else "") for i, r in enumerate(tx_results)
        ]
        db = self._db
        await db.execute("BEGIN IMMEDIATE")
        try:
            if block is not None:
                await db.execute(
                    "INSERT INTO blocks (height, hash, data) VALUES (?, ?, ?)",
                    (height, block[0], block[1]),
                )
            if commit is not None:
                await db.execute(
                    "INSERT OR REPLACE INTO commits (height, data) VALUES (?, ?)", (height, commit)
                )
            if txs:
                # A tx hash seen again (an identical replay) keeps its first location.
                await db.executemany(
                    "INSERT OR IGNORE INTO txs (hash, height, idx, code, log)"
                    " VALUES (?, ?, ?, ?, ?)",
                    txs,
                )
            if upserts:
                await db.executemany(
                    "INSERT OR REPLACE INTO state (key, value) VALUES (?, ?)", upserts
                )
            if deletes:
                await db.executemany("DELETE FROM state WHERE key = ?", deletes)
            await db.executemany(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                (("height", height.to_bytes(8, "big")), ("app_hash", app_hash)),
            )
            await db.execute("COMMIT")
        except BaseException:
            await db.execute("ROLLBACK")
            raise
