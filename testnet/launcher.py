"""Start, watch and stop a local testnet: every node and the actors are their own OS processes.

Why processes and HTTP only: this is the black-box harness. It must see the network as an
operator does (PID files, logs, the HTTP API), so a bug that only shows across processes —
ports, restarts, block sync — is caught here and not hidden by shared memory.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from testnet import processes
from testnet.client import try_get_json
from testnet.manifest import Manifest, TestnetError

T = TypeVar("T")

ACTORS_NAME = "actors"


def alloranet_argv(*args: str) -> list[str]:
    """The CLI as a child process of this same interpreter (works in and out of a venv)."""
    return [sys.executable, "-m", "alloranet", *args]


def node_name(index: int) -> str:
    return f"node{index}"


def start_node(root: Path, manifest: Manifest, index: int) -> processes.Spawned:
    entry = manifest.node(index)
    if processes.is_running(root, entry.name):
        raise TestnetError(f"{entry.name} is already running")
    return processes.spawn(root, entry.name, alloranet_argv("start", "--home", entry.home))


def start_nodes(root: Path, manifest: Manifest) -> None:
    for index in range(len(manifest.nodes)):
        start_node(root, manifest, index)


def kill_node(root: Path, manifest: Manifest, index: int) -> bool:
    return processes.kill(root, manifest.node(index).name)


def stop_node(root: Path, manifest: Manifest, index: int, timeout: float = 15.0) -> bool:
    return processes.stop(root, manifest.node(index).name, timeout)


def wait_for(what: str, probe: Callable[[], T | None], timeout: float, interval: float = 0.2) -> T:
    """Poll ``probe`` until it returns something truthy; TestnetError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TestnetError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def node_status(manifest: Manifest, index: int) -> dict[str, Any]:
    """One node's line of ``testnet status``; ``up: false`` when its API does not answer."""
    entry = manifest.node(index)
    status = try_get_json(f"{entry.api}/v1/status", timeout=1.5)
    if not isinstance(status, dict):
        return {
            "name": entry.name,
            "up": False,
            "api": entry.api,
            "height": None,
            "block_hash": None,
            "app_hash": None,
            "peers": 0,
        }
    return {
        "name": entry.name,
        "up": True,
        "api": entry.api,
        "height": status.get("height"),
        "block_hash": status.get("block_hash"),
        "app_hash": status.get("app_hash"),
        "peers": status.get("peers"),
        "validator": status.get("validator"),
        "catching_up": status.get("catching_up"),
    }


def collect_status(root: Path, manifest: Manifest) -> dict[str, Any]:
    nodes = []
    for index, entry in enumerate(manifest.nodes):
        line = node_status(manifest, index)
        line["pid"] = processes.read_pid(root, entry.name)
        line["running"] = processes.is_running(root, entry.name)
        nodes.append(line)
    return {"chain_id": manifest.chain_id, "nodes": nodes}


def wait_all_at_height(manifest: Manifest, height: int, timeout: float) -> list[dict[str, Any]]:
    def probe() -> list[dict[str, Any]] | None:
        lines = [node_status(manifest, i) for i in range(len(manifest.nodes))]
        ok = all(line["up"] and (line["height"] or 0) >= height for line in lines)
        return lines if ok else None

    return wait_for(f"every node at height {height}", probe, timeout)


def run_cli(root: Path, *args: str, timeout: float = 60.0) -> str:
    """Run one ``alloranet`` command for the testnet; its one-line error becomes TestnetError."""
    proc = subprocess.run(
        alloranet_argv(*args), capture_output=True, text=True, timeout=timeout, cwd=str(root)
    )
    if proc.returncode != 0:
        message = (proc.stderr.strip().splitlines() or ["failed"])[-1]
        raise TestnetError(f"`alloranet {' '.join(args[:2])}` failed: {message}")
    return proc.stdout


def start_actors(root: Path, manifest: Manifest, api_index: int = 0) -> processes.Spawned | None:
    """All simulated workers, forecasters and reputers in one process with one p2p host.

    Why one process: each libp2p host costs a Python process and its gossip CPU; eleven of them
    next to four validators would starve a two-core machine, while one host carrying every
    actor's signed submissions shows the same protocol at a fraction of the cost."""
    if not manifest.actors:
        return None
    entry = manifest.node(api_index)
    argv = [
        sys.executable,
        "-m",
        "alloranet.worker.sim",
        "--testnet",
        str(root.resolve()),
        "--api",
        entry.api,
    ]
    return processes.spawn(root, ACTORS_NAME, argv)


def down(root: Path, manifest: Manifest) -> list[str]:
    """Stop the actors first (they submit to nodes), then every node; returns what stopped."""
    stopped = []
    if processes.stop(root, ACTORS_NAME, timeout=10.0):
        stopped.append(ACTORS_NAME)
    for entry in manifest.nodes:
        if processes.stop(root, entry.name, timeout=15.0):
            stopped.append(entry.name)
    return stopped


def logs(root: Path, name: str, lines: int) -> str:
    path = processes.log_file(root, name)
    if not path.exists():
        raise TestnetError(f"no log for {name} at {path}")
    return processes.tail(path, lines)
