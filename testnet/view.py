"""What ``testnet up`` and ``testnet status`` print for people.

The live view answers the project's one question at a glance: is the network inference
better than every single worker? It shows each node's height and peers, then the latest network
inference of the sample topic and, per worker, its loss next to the network's loss.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from testnet import launcher
from testnet.client import try_get_json
from testnet.manifest import Manifest


def _short(value: Any, width: int = 12) -> str:
    text = "-" if value is None else str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def render_status(status: dict[str, Any]) -> str:
    lines = [
        f"chain {status.get('chain_id', '?')}",
        f"{'node':<7}{'up':<4}{'height':>8}  {'block hash':<14}{'app hash':<14}{'peers':>5}  api",
    ]
    for n in status["nodes"]:
        lines.append(
            f"{n['name']:<7}{'yes' if n['up'] else 'no':<4}{_short(n['height'], 8):>8}  "
            f"{_short(n['block_hash']):<14}{_short(n['app_hash']):<14}"
            f"{_short(n['peers'], 5):>5}  {n['api']}"
        )
    return "\n".join(lines)


def _float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def render_inference(inference: dict[str, Any] | None) -> str:
    if not inference or "network_inferences" not in inference:
        return "network inference: none yet (waiting for the first epoch to close)"
    bundle = inference["network_inferences"]
    weights = {w["worker"]: w["weight"] for w in inference.get("inferer_weights", [])}
    values = {v["worker"]: v["value"] for v in bundle.get("inferer_values", [])}
    losses = inference.get("losses", {})
    worker_losses = {w["worker"]: w["value"] for w in losses.get("inferer_losses", [])}
    lines = [
        f"topic {bundle.get('topic_id')}  nonce {inference.get('nonce')}  "
        f"(inference block {inference.get('inference_block_height')}, "
        f"losses from block {inference.get('loss_block_height')})",
        f"network inference {bundle.get('combined_value')}   naive {bundle.get('naive_value')}",
        f"network loss (log10) {_short(losses.get('combined_loss'), 10)}",
        f"{'worker':<48}{'value':>14}{'weight':>10}{'loss':>12}",
    ]
    network_loss = _float(losses.get("combined_loss"))
    beaten = 0
    for worker in sorted(values):
        loss = _float(worker_losses.get(worker))
        if loss is not None and network_loss is not None and network_loss < loss:
            beaten += 1
        lines.append(
            f"{worker:<48}{_short(values[worker], 13):>14}{_short(weights.get(worker), 9):>10}"
            f"{_short(worker_losses.get(worker), 11):>12}"
        )
    if worker_losses and network_loss is not None:
        lines.append(f"the network inference beats {beaten} of {len(worker_losses)} workers")
    return "\n".join(lines)


def render_view(root: Path, manifest: Manifest, topic_id: int = 1) -> str:
    status = launcher.collect_status(root, manifest)
    api = next((n["api"] for n in status["nodes"] if n["up"]), manifest.nodes[0].api)
    inference = try_get_json(f"{api}/v1/topics/{topic_id}/network-inference")
    return render_status(status) + "\n\n" + render_inference(inference) + "\n\n(Ctrl-C stops)"
