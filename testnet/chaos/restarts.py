"""Where a restarted validator's time goes, from process spawn to its first vote (issue 7).

``python -m testnet.chaos.restarts [--restarts N] [--down-s S] [--root DIR]`` starts a
4-validator network with the chaos load, then SIGKILLs and restarts validators 1..3 in turn,
``N`` times in all, and prints one row per restart plus the median and max of each phase:

- ``imports``: spawn -> ``Node.start`` entered (interpreter, CLI and module imports);
- ``state``, ``p2p``, ``wal``, ``api``: the node's own start-up phases (its ``node started``
  log line carries them), cumulative;
- ``vote_node``: API up -> the node committed a block whose commit holds its own precommit;
- ``vote``: spawn -> the header time of the first block carrying its precommit (black box, as
  the chaos runner measures it), and ``vote_ready`` the same counted from the API answering.

The last line is one JSON object with the medians and maxima. Run it under the heavy lock.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from testnet import processes
from testnet.chaos.homes import LOAD_ACCOUNTS, load_account_key
from testnet.chaos.load import LoadDriver
from testnet.chaos.network import ChaosNetwork
from testnet.chaos.schema import NetworkSpec
from testnet.client import try_get_json

COLUMNS = ("imports", "state", "p2p", "wal", "api", "vote_node", "vote_ready", "vote")


def _ts(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _log_lines(net: ChaosNetwork, name: str, offset: int) -> list[dict[str, Any]]:
    path = processes.log_file(net.root, name)
    out = []
    with path.open("rb") as f:
        f.seek(offset)
        for raw in f:
            try:
                entry = json.loads(raw)
            except ValueError:
                continue
            if isinstance(entry, dict):
                out.append(entry)
    return out


def _first_vote_time(net: ChaosNetwork, address: str, from_height: int, timeout: float) -> float:
    """Header time (s) of the first block >= ``from_height`` whose last commit holds
    ``address``'s precommit."""
    deadline = time.monotonic() + timeout
    height = from_height
    while time.monotonic() < deadline:
        block = try_get_json(f"{net.api('node0')}/v1/blocks/{height}")
        if not isinstance(block, dict):
            time.sleep(0.05)
            continue
        if address in block.get("last_commit_signers", []):
            return int(block["time_ms"]) / 1000.0
        height += 1
    raise TimeoutError(f"{address} did not vote within {timeout}s")


def measure_restart(net: ChaosNetwork, name: str, down_s: float) -> dict[str, float]:
    address = net.homes[name].validator_key.address
    net.kill(name)
    time.sleep(down_s)  # the outage is the experiment: the network moves on meanwhile
    log_path = processes.log_file(net.root, name)
    offset = log_path.stat().st_size if log_path.exists() else 0
    from_height = max(net.height("node0"), 1) + 1
    spawned = time.time()
    net.start(name)
    net.wait_up([name], 60.0)
    ready = time.time()
    voted = _first_vote_time(net, address, from_height, 30.0)
    row: dict[str, float] = {}
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        lines = _log_lines(net, name, offset)
        started = next((e for e in lines if e.get("msg") == "node started"), None)
        first = next((e for e in lines if e.get("msg") == "first vote since start in a commit"),
                     None)  # fmt: skip
        if started is not None and first is not None:
            phases = started["start_phases_s"]
            start_entered = _ts(started["ts"]) - phases["api_up"]
            row["imports"] = start_entered - spawned
            row["state"] = phases["state_loaded"]
            row["p2p"] = phases["p2p_listening"]
            row["wal"] = phases["wal_replayed"]
            row["api"] = phases["api_up"]
            row["vote_node"] = float(first["since_api_up_s"])
            break
        time.sleep(0.1)
    row["vote_ready"] = voted - ready
    row["vote"] = voted - spawned
    return row


def _row(label: str, values: dict[str, float]) -> str:
    cells = [f"{values[c]:10.3f}" if c in values else f"{'-':>10}" for c in COLUMNS]
    return "  ".join([f"{label:>10}", *cells])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--restarts", type=int, default=10)
    parser.add_argument("--down-s", type=float, default=2.0)
    parser.add_argument("--load-tps", type=float, default=4.0)
    parser.add_argument("--root", type=Path, default=None)
    args = parser.parse_args()
    root = args.root or Path(tempfile.mkdtemp(prefix="alloranet-restarts-"))
    spec = NetworkSpec(validators=4, seed=5, load_tps=args.load_tps)
    net = ChaosNetwork(root, spec)
    net.create()
    load = None
    rows: list[dict[str, float]] = []
    try:
        net.start_many(net.names)
        net.wait_up(net.names, 90.0)
        net.wait_height(net.names, 3, 90.0)
        keys = [load_account_key(spec.seed, i) for i in range(LOAD_ACCOUNTS)]
        load = LoadDriver(net.chain_id, keys, lambda: [net.api("node0")], spec.load_tps, 5)
        load.start()
        print("  ".join(f"{c:>10}" for c in ("node", *COLUMNS)))
        for i in range(args.restarts):
            name = f"node{1 + i % 3}"
            row = measure_restart(net, name, args.down_s)
            rows.append(row)
            print(_row(name, row))
            net.wait_height([name], net.height("node0"), 30.0)
    finally:
        if load is not None:
            load.stop()
        net.stop_all()
    summary: dict[str, Any] = {"restarts": len(rows), "root": str(root)}
    for column in COLUMNS:
        values = [r[column] for r in rows if column in r]
        if values:
            summary[f"{column}_p50"] = round(statistics.median(values), 3)
            summary[f"{column}_max"] = round(max(values), 3)
    for stat in ("p50", "max"):
        print(_row(stat, {c: summary[f"{c}_{stat}"] for c in COLUMNS if f"{c}_{stat}" in summary}))
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
