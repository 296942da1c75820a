"""Hypothesis: for any valid topic timing, the windows accept exactly the documented heights.

Worker nonce n (opened at the end of epoch-end block n): payloads in n+1 .. n+W.
Reputer nonce n: payloads in max(n+GTL, n+W+1) .. n+2*GTL (it opens when the worker window
closes at the end of n+W).
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from alloranet.chain.msgs import (
    MsgAddStake,
    MsgInsertReputerPayload,
    MsgInsertWorkerPayload,
    MsgRegister,
    ValueBundle,
)
from alloranet.chain.params import EmissionsParams
from alloranet.chain.testkit import TestChain, topic_msg

N_WORKERS = 20
N_REPUTERS = 40


@st.composite
def timings(draw: st.DrawFn) -> tuple[int, int, int]:
    epoch = draw(st.integers(12, 15))
    lag = draw(st.integers(epoch, 2 * epoch))
    window = draw(st.integers(1, epoch))
    return epoch, lag, window


@settings(max_examples=12, deadline=None)
@given(timings())
def test_windows_accept_exactly_their_heights(timing: tuple[int, int, int]) -> None:
    epoch, lag, window = timing
    workers = [f"w{i}" for i in range(N_WORKERS)]
    reputers = [f"r{i}" for i in range(N_REPUTERS)]
    chain = TestChain.create(
        accounts=(*workers, *reputers, "alice"),
        emissions=EmissionsParams(max_top_reputers_to_reward=N_REPUTERS),
    )
    chain.block([chain.tx("alice", topic_msg(epoch, lag, window))])  # h1
    txs = [chain.tx(w, MsgRegister(1, False)) for w in workers]
    txs += [chain.tx(r, MsgRegister(1, True)) for r in reputers]
    txs += [chain.tx(r, MsgAddStake(1, 20_000)) for r in reputers]
    assert all(r.code == 0 for r in chain.block(txs).tx_results)  # h2: topic active
    nonce = 2 + epoch
    chain.advance_to(nonce - 2)
    accepted_workers = []
    for i, height in enumerate(range(nonce - 1, nonce + window + 2)):
        assert len(chain.results) + 1 == height
        msg = MsgInsertWorkerPayload(1, nonce, float(i), ())
        if chain.block([chain.tx(workers[i], msg)]).tx_results[0].code == 0:
            accepted_workers.append(height)
    assert accepted_workers == list(range(nonce + 1, nonce + window + 1)), timing

    bundle = ValueBundle(-1.0, -1.0, (), (), (), (), (), ())
    chain.advance_to(nonce + lag - 2)  # no-op when the worker loop already went further
    tried, accepted_reputers = [], []
    for reputer in reputers:
        height = len(chain.results) + 1
        if height > nonce + 2 * lag + 1:
            break
        msg = MsgInsertReputerPayload(1, nonce, bundle)
        tried.append(height)
        if chain.block([chain.tx(reputer, msg)]).tx_results[0].code == 0:
            accepted_reputers.append(height)
    first = max(nonce + lag, nonce + window + 1)
    assert tried[-1] == nonce + 2 * lag + 1  # one after the window was tried
    assert accepted_reputers == [h for h in tried if first <= h <= nonce + 2 * lag], timing
