"""A real local testnet: 4 validator processes, simulated actors, crash and catch-up.

One network serves every assertion (process start-up is the expensive part). Order matters and
is explicit: agreement first, then the epoch pipeline, then the crash of one validator.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from alloranet.worker.sim import REPUTER_STAKE
from testnet import launcher
from testnet.client import get_json, try_get_json
from testnet.manifest import Manifest, load_manifest

pytestmark = [pytest.mark.testnet, pytest.mark.timeout(420)]

SEED = int(os.environ.get("ALLORANET_TEST_SEED", "1"))
T = TypeVar("T")
STARTED: list[float] = []


def wait(what: str, probe: Callable[[], T | None], timeout: float) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what} (seed {SEED})"
        time.sleep(0.3)


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Manifest]]:
    root = tmp_path_factory.mktemp("testnet")
    STARTED.append(time.monotonic())
    cmd = [sys.executable, "-m", "alloranet", "testnet", "up", "--validators", "4",
           "--workers", "3", "--forecasters", "2", "--reputers", "2", "--seed", str(SEED),
           "--home", str(root), "--detach", "-o", "json"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    try:
        assert proc.returncode == 0, proc.stderr[-2000:]
        yield root, load_manifest(root)
    finally:
        subprocess.run(
            [sys.executable, "-m", "alloranet", "testnet", "down", "--home", str(root)],
            capture_output=True,
            timeout=120,
        )


def heights(manifest: Manifest, nodes: list[int] | None = None) -> list[int]:
    out = []
    for i in nodes if nodes is not None else range(len(manifest.nodes)):
        status = try_get_json(f"{manifest.nodes[i].api}/v1/status")
        out.append(int(status["height"]) if status else -1)
    return out


def block(manifest: Manifest, node: int, height: int) -> dict[str, Any]:
    data: dict[str, Any] = get_json(f"{manifest.nodes[node].api}/v1/blocks/{height}")
    return data


def test_first_network_inference_within_60_seconds(net: tuple[Path, Manifest]) -> None:
    """What `make testnet` promises: from `testnet up` to a network inference in <= 60 s."""
    _, manifest = net
    api = manifest.nodes[0].api
    wait(
        "the first network inference",
        lambda: try_get_json(f"{api}/v1/topics/1/network-inference"),
        max(1.0, 60.0 - (time.monotonic() - STARTED[0])),
    )
    assert time.monotonic() - STARTED[0] <= 60.0


def test_validators_agree_on_every_block_and_app_hash(net: tuple[Path, Manifest]) -> None:
    _, manifest = net
    wait("height 21 on every node", lambda: min(heights(manifest)) >= 21, 120)
    for h in range(1, 21):
        blocks = [block(manifest, i, h) for i in range(4)]
        assert len({b["hash"] for b in blocks}) == 1, f"block hashes differ at {h}"
        # The header at h+1 carries the app hash after h: agreement on the state.
        nxt = [block(manifest, i, h + 1) for i in range(4)]
        assert len({b["app_hash"] for b in nxt}) == 1, f"app hashes differ after {h}"
    status = launcher.collect_status(*net)
    assert all(n["peers"] >= 3 for n in status["nodes"]), status
    # Last commits carry the precommits that came in during timeout_commit too, so healthy
    # validators are not counted as offline (downtime jailing relies on it). Before, every
    # commit held exactly the first 3 of 4; now most hold all 4 (measured: 139 of 151).
    signers = [len(block(manifest, 0, h)["last_commit_signers"]) for h in range(3, 22)]
    assert sum(n == 4 for n in signers) >= len(signers) // 2, signers
    validators = get_json(f"{manifest.nodes[0].api}/v1/validators")["validators"]
    assert not any(v["jailed"] for v in validators), validators


def test_worker_submissions_synthesis_and_rewards(net: tuple[Path, Manifest]) -> None:
    _, manifest = net
    api = manifest.nodes[1].api

    def closed_epoch() -> dict[str, Any] | None:
        data = try_get_json(f"{api}/v1/topics/1/network-inference/history")
        for entry in (data or {}).get("network_inferences", []):
            weights = [w["weight"] for w in entry["inferer_weights"]]
            if entry["losses"]["inferer_losses"] and all(w is not None for w in weights):
                return dict(entry)
        return None

    entry = wait("a closed epoch with weights and reputer losses", closed_epoch, 180)
    nonce = int(entry["nonce"])
    inferers = {v["worker"] for v in entry["network_inferences"]["inferer_values"]}
    assert len(inferers) == 3, entry  # every simulated worker's inference was included
    again = get_json(f"{api}/v1/topics/1/network-inference?nonce={nonce}")
    assert (
        again["network_inferences"]["combined_value"]
        == entry["network_inferences"]["combined_value"]
    )
    alias = get_json(f"{api}/emissions/v1/latest_network_inferences/1")
    assert "inferer_weights" in alias and "confidence_interval_values" in alias
    rewards = get_json(f"{api}/v1/topics/1/rewards")["rewards"]
    paid = [r for r in rewards if int(r["amount"]) > 0]
    assert paid, f"no rewards paid (seed {SEED})"
    assert {"inferer", "reputer"} <= {r["role"] for r in paid}
    # a reputer's reward is added to its stake in the topic (spec 5.4), not to its account
    paid_reputers = {r["actor"] for r in paid if r["role"] == "reputer"}
    stakes = {
        s["address"]: int(s["stake"]) for s in get_json(f"{api}/v1/topics/1")["reputer_stakes"]
    }
    assert all(stakes[a] > REPUTER_STAKE for a in paid_reputers), (stakes, paid_reputers)


def test_killed_validator_catches_up_and_votes_again(net: tuple[Path, Manifest]) -> None:
    root, manifest = net
    assert launcher.kill_node(root, manifest, 3)
    start = max(heights(manifest, [0, 1, 2]))
    wait(
        "three validators keep committing",
        lambda: min(heights(manifest, [0, 1, 2])) >= start + 5,
        60,
    )
    launcher.start_node(root, manifest, 3)
    target = max(heights(manifest, [0, 1, 2]))
    wait("the restarted validator catches up", lambda: heights(manifest, [3])[0] >= target, 90)
    address = get_json(f"{manifest.nodes[3].api}/v1/status")["validator_address"]

    def signs_again() -> bool:
        top = heights(manifest, [0])[0]
        return any(
            address in block(manifest, 0, h)["last_commit_signers"] for h in range(top - 3, top + 1)
        )

    wait("the restarted validator's precommits in new blocks", signs_again, 60)
    top = heights(manifest, [0])[0]
    assert all(block(manifest, 0, h)["evidence"] == 0 for h in range(1, top + 1)), "double sign"
    log = (root / "logs" / "node3.log").read_text()
    assert "refuse" not in log.lower() or "signer" not in log.lower(), "signer guard refused"
    json.dumps(launcher.collect_status(root, manifest))
