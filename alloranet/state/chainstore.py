"""Glue between the pure chain and the store: save a BlockResult, load an AppState.

Why a separate module: :mod:`alloranet.state.store` knows only bytes; this one knows the
chain's types, and checks on load that the stored state still hashes to the stored app hash, so
a corrupted or half-migrated database is caught at start-up instead of forking the node.
"""

from __future__ import annotations

from alloranet.chain.app import BlockResult
from alloranet.chain.kv import AppState
from alloranet.state.store import Store, StoreError


async def save_genesis_state(store: Store, state: AppState) -> None:
    await store.save_genesis(state.to_dict(), state.app_hash)


async def save_block_result(
    store: Store,
    block_bytes: bytes,
    result: BlockResult,
    tx_hashes: tuple[bytes, ...],
    commit: bytes | None = None,
) -> None:
    """Persist an executed block in one transaction (``tx_hashes`` in block order)."""
    await store.save_block(
        result.height,
        result.block_hash,
        block_bytes,
        result.changes,
        result.app_hash,
        tuple((h, r.code, r.log) for h, r in zip(tx_hashes, result.tx_results, strict=True)),
        commit,
    )


async def load_app_state(store: Store) -> AppState:
    """The latest committed state, verified against the stored app hash."""
    expected = await store.latest_app_hash()
    if expected is None:
        raise StoreError(f"{store.path} holds no chain (no genesis saved)")
    state = AppState.from_items(await store.load_state())
    if state.app_hash != expected:
        raise StoreError(
            f"stored state hashes to {state.app_hash.hex()[:16]}, the store recorded "
            f"{expected.hex()[:16]}: the database is corrupt"
        )
    return state
