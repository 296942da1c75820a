"""Crash safety: SIGKILL a real process in the middle of writing a block, then reopen.

The child writes blocks whose change sets are large (so the write takes a while) and prints
"saving N" before and "saved N" after each. The parent kills it right after a "saving" line.
On reopen the last committed block must be complete (its state hashes to its app hash and
every written value carries its height) and the partial block must be absent.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from alloranet.state.chainstore import load_app_state
from alloranet.state.store import Store

CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from alloranet.chain.kv import AppState
    from alloranet.state.store import Store

    ROWS = 30_000

    async def main(path):
        store = await Store.open(path)
        state = AppState.empty()
        await store.save_genesis({}, state.app_hash)
        height = 0
        while True:
            height += 1
            value = height.to_bytes(8, "big")
            changes = {i.to_bytes(4, "big"): value for i in range(ROWS)}
            state = state.apply(changes)
            print(f"saving {height}", flush=True)
            await store.save_block(height, value * 4, value, changes, state.app_hash)
            print(f"saved {height}", flush=True)

    asyncio.run(main(sys.argv[1]))
    """
)


def _run_and_kill(path: Path, kill_at: int) -> tuple[int, bool]:
    """Start the child, SIGKILL it right after it starts saving ``kill_at``."""
    env = dict(os.environ)
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path)], stdout=subprocess.PIPE, text=True, env=env
    )
    saved = 0
    mid_write = False
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            kind, number = line.split()
            if kind == "saved":
                saved = int(number)
            elif int(number) == kill_at:
                proc.send_signal(signal.SIGKILL)
                mid_write = True
                break
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    return saved, mid_write


async def test_sigkill_mid_block_keeps_last_committed_block(tmp_path: Path) -> None:
    path = tmp_path / "crash.db"
    saved, mid_write = await asyncio.to_thread(_run_and_kill, path, 4)
    assert mid_write and saved == 3
    async with await Store.open(path) as store:
        height = await store.latest_height()
        # the kill landed after "saving 4": block 4 is either wholly there or wholly absent
        assert height in (3, 4)
        state = await load_app_state(store)  # raises if state and app hash disagree
        values = set(state.to_dict().values())
        assert values == {height.to_bytes(8, "big")}
        assert await store.load_block(height) == height.to_bytes(8, "big")
        assert await store.load_block(height + 1) is None
        # the store keeps working after the crash
        changes = {b"after": b"crash"}
        await store.save_block(height + 1, b"h", b"b", changes, state.apply(changes).app_hash)
        assert await store.latest_height() == height + 1
