"""Start and drive ``node_demo`` processes (tests/testnet and benchmarks/p2p_gossip.py).

Why: the process tests and the benchmark both need N real nodes on 127.0.0.1 that can be
commanded, killed with SIGKILL and restarted with the same key; this keeps that plumbing in one
place. Each process reports its listen address (port 0: the OS picks a free port); a
restarted node reuses its port so peers' redial loops find it again.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from alloranet.p2p.errors import P2PError


class DemoProcess:
    """One node_demo process; ``command`` sends a JSON line and awaits the JSON reply."""

    def __init__(self, workdir: Path, index: int, network: str = "demo") -> None:
        self.workdir = workdir
        self.index = index
        self.network = network
        self.key = workdir / f"node{index}.key"
        self.proc: asyncio.subprocess.Process | None = None
        self.peer_id = ""
        self.addr = ""
        self._lock = asyncio.Lock()

    async def start(self, listen: str = "/ip4/127.0.0.1/tcp/0", timeout: float = 30.0) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        log = open(self.workdir / f"node{self.index}.log", "ab")  # noqa: SIM115
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "alloranet.p2p.node_demo",
            "--key",
            str(self.key),
            "--listen",
            listen,
            "--network",
            self.network,
            "--index",
            str(self.index),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=log,
            env=env,
            limit=64 * 1024 * 1024,
        )
        log.close()
        ready = await self._read(timeout)
        if ready.get("event") != "ready":
            raise P2PError(f"node {self.index} did not start: {ready}")
        self.peer_id = ready["peer_id"]
        self.addr = ready["addrs"][0]

    @property
    def listen(self) -> str:
        """The listen multiaddr without /p2p (to restart on the same port)."""
        return self.addr.split("/p2p/")[0]

    async def _read(self, timeout: float) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        if not line:
            raise P2PError(f"node {self.index} exited (rc={self.proc.returncode})")
        result: dict[str, Any] = json.loads(line)
        return result

    async def command(self, timeout: float = 30.0, **cmd: Any) -> dict[str, Any]:
        async with self._lock:
            assert self.proc is not None and self.proc.stdin is not None
            self.proc.stdin.write((json.dumps(cmd) + "\n").encode())
            await self.proc.stdin.drain()
            reply = await self._read(timeout)
        if not reply.get("ok"):
            raise P2PError(f"node {self.index}: {cmd.get('cmd')} failed: {reply.get('error')}")
        return reply

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)
            await self.proc.wait()

    async def stop(self, timeout: float = 8.0) -> None:
        if self.proc is None or self.proc.returncode is not None:
            return
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write(b'{"cmd": "quit"}\n')
            await self.proc.stdin.drain()
            await asyncio.wait_for(self.proc.wait(), timeout)
        except (TimeoutError, ConnectionError):
            await self.kill()


async def start_cluster(workdir: Path, n: int, network: str = "demo") -> list[DemoProcess]:
    """N processes started together, full mesh (node i dials every j < i)."""
    nodes = [DemoProcess(workdir, i, network) for i in range(n)]
    try:
        await asyncio.gather(*(node.start() for node in nodes))
        for i, node in enumerate(nodes):
            for other in nodes[:i]:
                await node.command(cmd="connect", addr=other.addr)
    except BaseException:
        await stop_all(nodes)
        raise
    return nodes


async def wait_for_mesh(nodes: list[DemoProcess], channel: str, timeout: float = 20.0) -> None:
    """Until every node sees every other node subscribed to ``channel``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    want = {node.peer_id for node in nodes}
    while True:
        ok = True
        for node in nodes:
            reply = await node.command(cmd="peers", channel=channel)
            if set(reply["topic_peers"]) != want - {node.peer_id}:
                ok = False
                break
        if ok:
            return
        if loop.time() > deadline:
            raise P2PError(f"mesh for {channel} not formed in {timeout}s")
        await asyncio.sleep(0.1)


async def stop_all(nodes: list[DemoProcess]) -> None:
    await asyncio.gather(*(node.stop() for node in nodes), return_exceptions=True)
