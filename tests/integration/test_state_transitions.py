"""1,000 random valid and invalid transactions, executed by two independent nodes into two
separate stores: identical app hashes everywhere, and the supply invariant holds."""

from __future__ import annotations

import random
from pathlib import Path

from alloranet.chain.app import execute_block, validate_invariants
from alloranet.chain.kv import AppState
from alloranet.chain.msgs import (
    MsgAddStake,
    MsgCreateValidator,
    MsgDelegate,
    MsgFundTopic,
    MsgInsertWorkerPayload,
    MsgRegister,
    MsgRemoveStake,
    MsgSend,
    MsgUndelegate,
)
from alloranet.chain.params import EmissionsParams, StakingParams
from alloranet.chain.testkit import TestChain, topic_msg
from alloranet.chain.tx import sign_tx
from alloranet.codec import sha256
from alloranet.crypto import PrivateKey
from alloranet.state.chainstore import load_app_state, save_block_result, save_genesis_state
from alloranet.state.store import Store

SEED = 20261122
USERS = tuple(f"user{i}" for i in range(8))


def random_tx(chain: TestChain, rnd: random.Random) -> bytes:
    label = rnd.choice(USERS)
    other = chain.address(rnd.choice(USERS))
    val = chain.signers["val0"].public_key
    kind = rnd.randrange(16)
    amount = rnd.choice([1, 10, 10**6, 10**18, 10**24, 10**27])
    if kind == 0:
        return rnd.randbytes(rnd.randrange(1, 80))  # garbage
    if kind == 1:  # stale or future sequence
        return chain.tx(label, MsgSend(other, 1), sequence=rnd.randrange(50, 99))
    if kind == 2:  # wrong chain
        return sign_tx(chain.signers[label], "other", 0, 0, [MsgSend(other, 1)])
    if kind == 3:  # forged signature: signed by someone else's key
        forger = PrivateKey.from_label("forger").signer()
        raw = sign_tx(forger, chain.genesis.chain_id, 0, 0, [MsgSend(other, 1)])
        return raw
    msgs = {
        4: MsgSend(other, amount),
        5: MsgSend(other, amount),
        6: topic_msg(),
        7: MsgFundTopic(rnd.randrange(1, 4), amount),
        8: MsgRegister(rnd.randrange(1, 4), rnd.random() < 0.5),
        9: MsgAddStake(rnd.randrange(1, 4), amount),
        10: MsgRemoveStake(rnd.randrange(1, 4), amount),
        11: MsgDelegate(val, amount),
        12: MsgUndelegate(val, amount),
        13: MsgInsertWorkerPayload(
            rnd.randrange(1, 3), rnd.randrange(1, 60), rnd.uniform(-5, 5), ()
        ),
        14: MsgCreateValidator(PrivateKey.from_label(f"v{rnd.randrange(3)}").public_key, amount),
        15: topic_msg(p_norm=9.0),  # invalid: refused at decode
    }
    return chain.tx(label, msgs[kind], fee=rnd.choice([0, 0, 1, 10**30]))


async def test_thousand_random_txs_two_stores_agree(tmp_path: Path) -> None:
    rnd = random.Random(SEED)
    params = dict(
        accounts=USERS,
        emissions=EmissionsParams(remove_stake_delay_window=7),
        staking=StakingParams(unbonding_blocks=5),
    )
    node_a = TestChain.create(**params)  # type: ignore[arg-type]
    node_b = TestChain.create(**params)  # type: ignore[arg-type]
    stores = [await Store.open(tmp_path / "a.db"), await Store.open(tmp_path / "b.db")]
    try:
        for store, node in zip(stores, (node_a, node_b), strict=True):
            await save_genesis_state(store, node.state)
        codes: list[int] = []
        sent = 0
        while sent < 1000:
            txs = [random_tx(node_a, rnd) for _ in range(rnd.randrange(1, 60))]
            txs = txs[: 1000 - sent]
            sent += len(txs)
            block_bytes = node_a.build(txs)
            result_a = node_a.block(txs)
            result_b = execute_block(node_b.state, block_bytes, node_b.processor)
            node_b.state = result_b.state
            assert result_a.app_hash == result_b.app_hash, f"seed {SEED}"
            assert result_a.tx_results == result_b.tx_results
            codes += [r.code for r in result_a.tx_results]
            hashes = tuple(sha256(tx) for tx in txs)
            await save_block_result(stores[0], block_bytes, result_a, hashes)
            await save_block_result(stores[1], block_bytes, result_b, hashes)
        validate_invariants(node_a.state)
        assert len(codes) == 1000
        assert 100 < codes.count(0) < 900, f"seed {SEED}: {codes.count(0)} successes"
        assert len(set(codes)) >= 6, f"seed {SEED}: only codes {sorted(set(codes))}"
    finally:
        for store in stores:
            await store.close()
    loaded: list[AppState] = []
    for name in ("a.db", "b.db"):
        async with await Store.open(tmp_path / name) as store:
            loaded.append(await load_app_state(store))
            assert await store.latest_height() == len(node_a.results)
    assert loaded[0].app_hash == loaded[1].app_hash == node_a.state.app_hash
    assert loaded[0].to_dict() == node_b.state.to_dict()
