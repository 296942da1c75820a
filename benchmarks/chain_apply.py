"""How fast the chain applies blocks of signed transactions, against raw Ed25519 verification.

Reference: the raw PyNaCl verify rate over the same transactions' sign bytes, measured in the
same run (signature verification is the node's CPU wall, spec/limits.md). The chain figure
includes everything execute_block does: block decode, tx decode with limits, signature
verification, sequence/fee/balance checks, the state writes and the incremental app hash.
Target: ratio >= 0.5. Also reported (not part of the ratio): the rate at which the executed
blocks are then saved to a fresh SQLite store, one write transaction per block.

    python benchmarks/chain_apply.py [--quick] [--txs N] [--block-size B] [--accounts A]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

from alloranet.chain.app import BlockResult, build_block, execute_block, validate_invariants
from alloranet.chain.kv import AppState
from alloranet.chain.msgs import MsgSend
from alloranet.chain.testkit import TestChain
from alloranet.chain.tx import decode_tx
from alloranet.crypto import verify
from alloranet.state.chainstore import load_app_state, save_block_result, save_genesis_state
from alloranet.state.store import Store


async def _persist(
    genesis: AppState, executed: list[tuple[bytes, BlockResult, tuple[bytes, ...]]]
) -> float:
    """Seconds to save every executed block (one transaction each) into a fresh store."""
    with tempfile.TemporaryDirectory() as tmp:
        store = await Store.open(Path(tmp) / "bench.db")
        try:
            await save_genesis_state(store, genesis)
            start = time.perf_counter()
            for raw, result, hashes in executed:
                await save_block_result(store, raw, result, hashes)
            elapsed = time.perf_counter() - start
            loaded = await load_app_state(store)
            assert loaded.app_hash == executed[-1][1].app_hash
        finally:
            await store.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small run (< 30 s)")
    parser.add_argument("--txs", type=int, default=None)
    parser.add_argument("--block-size", type=int, default=500)
    parser.add_argument("--accounts", type=int, default=None)
    args = parser.parse_args()
    n_txs = args.txs or (4_000 if args.quick else 20_000)
    n_accounts = args.accounts or (500 if args.quick else 2_000)

    labels = tuple(f"acct{i}" for i in range(n_accounts))
    chain = TestChain.create(accounts=labels, balance=10**21)
    txs = [
        chain.tx(
            labels[i % n_accounts],
            MsgSend(chain.address(labels[(i * 7 + 1) % n_accounts]), 1 + i % 5),
        )
        for i in range(n_txs)
    ]
    blocks: list[list[bytes]] = [
        txs[i : i + args.block_size] for i in range(0, n_txs, args.block_size)
    ]

    # Reference and subject are measured block by block, interleaved, so that load from other
    # processes on this shared machine hits both alike (the ratio is what matters).
    decoded = [decode_tx(raw) for raw in txs]
    items = [(t.body.signer, t.sign_bytes, t.signature) for t in decoded]
    verify_s = 0.0
    apply_s = 0.0
    state = chain.state
    t_ms = chain.time_ms
    failures = 0
    executed: list[tuple[bytes, BlockResult, tuple[bytes, ...]]] = []
    for index, block_txs in enumerate(blocks):
        batch = items[index * args.block_size : (index + 1) * args.block_size]
        start = time.perf_counter()
        ok = all(verify(pk, msg, sig) for pk, msg, sig in batch)
        verify_s += time.perf_counter() - start
        assert ok
        t_ms += 1000
        raw = build_block(state, time_ms=t_ms, proposer=chain.proposer, txs=block_txs).to_bytes()
        start = time.perf_counter()
        result = execute_block(state, raw)
        apply_s += time.perf_counter() - start
        failures += sum(1 for r in result.tx_results if r.code != 0)
        executed.append(
            (
                raw,
                result,
                tuple(
                    t.hash for t in decoded[index * args.block_size : (index + 1) * args.block_size]
                ),
            )
        )
        state = result.state
    validate_invariants(state)
    if failures:
        raise SystemExit(f"error: {failures} transactions failed; the benchmark is invalid")

    store_s = asyncio.run(_persist(chain.state, executed))

    tx_per_s = n_txs / apply_s
    store_tx_per_s = n_txs / store_s
    verify_per_s = n_txs / verify_s
    ratio = tx_per_s / verify_per_s
    print(f"{'what':<38}{'count':>10}{'seconds':>10}{'per second':>14}")
    print(f"{'raw Ed25519 verify (PyNaCl)':<38}{n_txs:>10}{verify_s:>10.3f}{verify_per_s:>14,.0f}")
    print(f"{'execute_block (bank sends)':<38}{n_txs:>10}{apply_s:>10.3f}{tx_per_s:>14,.0f}")
    print(
        f"{'save_block to SQLite (WAL, FULL)':<38}{n_txs:>10}{store_s:>10.3f}"
        f"{store_tx_per_s:>14,.0f}"
    )
    print(f"blocks of {args.block_size} txs, {n_accounts} accounts, state {len(state)} keys")
    print(f"ratio chain / raw verify: {ratio:.2f} (target >= 0.5)")
    print(
        json.dumps(
            {
                "tx_per_s": round(tx_per_s, 1),
                "verify_per_s": round(verify_per_s, 1),
                "ratio": round(ratio, 3),
                "store_tx_per_s": round(store_tx_per_s, 1),
                "txs": n_txs,
                "block_size": args.block_size,
                "accounts": n_accounts,
            }
        )
    )


if __name__ == "__main__":
    main()
