"""``alloranet query VERB``: read the chain over a node's HTTP API (status, block, account,
topics, topic, network-inference, rewards, tx, validators, supply)."""

from __future__ import annotations

import argparse
import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from alloranet.cli.output import add_output_flag, emit, subcommand
from alloranet.errors import AlloraError

DEFAULT_API = "http://127.0.0.1:1317"


class ApiCallError(AlloraError):
    """The node could not be reached or answered with an error."""


def api_url(args: argparse.Namespace) -> str:
    """``--api`` if given, else the ``[rpc] listen`` of ``--home``'s config, else the default."""
    if getattr(args, "api", None):
        return str(args.api).rstrip("/")
    home = getattr(args, "home", None)
    if home is not None and (Path(home) / "config.toml").exists():
        from alloranet.node.config import load_config

        return "http://" + load_config(Path(home)).rpc.listen
    return DEFAULT_API


def call(url: str, body: bytes | None = None, timeout: float = 10.0) -> Any:
    headers = {"Content-Type": "application/octet-stream"} if body is not None else {}
    request = urllib.request.Request(url, data=body, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read())["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = exc.reason
        raise ApiCallError(f"{message} (HTTP {exc.code})") from None
    except (urllib.error.URLError, OSError) as exc:
        raise ApiCallError(f"cannot reach the node at {url}: {exc}") from None


def add_api_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--api", help=f"node HTTP API URL (default: from --home, else {DEFAULT_API})"
    )
    parser.add_argument("--home", type=Path, help="node home whose config names the API address")
    add_output_flag(parser)


def _text(data: Any) -> str:
    return json.dumps(data, indent=2)


def _status_text(d: dict[str, Any]) -> str:
    return (
        f"chain {d['chain_id']}  height {d['height']}  peers {d['peers']}\n"
        f"block {d['block_hash']}\napp   {d['app_hash']}\n"
        f"validator {d['validator_address'] or 'no'}  catching up: {d['catching_up']}"
    )


def _inference_text(d: dict[str, Any]) -> str:
    b = d["network_inferences"]
    lines = [f"nonce {d.get('nonce')}: network inference {b['combined_value']} "
             f"(naive {b['naive_value']})"]  # fmt: skip
    weights = {w["worker"]: w["weight"] for w in d.get("inferer_weights", [])}
    for v in b["inferer_values"]:
        lines.append(f"  {v['worker']}  {v['value']}  weight {weights.get(v['worker'])}")
    band = d.get("confidence_interval_values") or []
    if band:
        lines.append(f"confidence band {band}")
    return "\n".join(lines)


def _validators_text(d: dict[str, Any]) -> str:
    """One line per validator: what an operator scans for after downtime or a slash."""
    lines = []
    for v in d.get("validators", []):
        extras = " ".join(f"{k}={v[k]}" for k in sorted(v) if k not in ("public_key", "address"))
        lines.append(f"{v.get('public_key', '')[:16]}... {v.get('address', '')} {extras}")
    return "\n".join(lines) or "no validators"


def _cmd(args: argparse.Namespace) -> int:
    base = api_url(args)
    verb = args.query_verb
    if verb == "status":
        emit(args, call(f"{base}/v1/status"), _status_text)
    elif verb == "block":
        emit(args, call(f"{base}/v1/blocks/{args.height or 'latest'}"), _text)
    elif verb == "account":
        emit(args, call(f"{base}/v1/accounts/{args.address}"), _text)
    elif verb == "topic":
        emit(args, call(f"{base}/v1/topics/{args.id}"), _text)
    elif verb == "topics":
        emit(args, call(f"{base}/v1/topics"), _text)
    elif verb == "network-inference":
        suffix = f"?nonce={args.nonce}" if args.nonce is not None else ""
        emit(
            args, call(f"{base}/v1/topics/{args.topic}/network-inference{suffix}"), _inference_text
        )
    elif verb == "rewards":
        params = "&".join(
            f"{k}={v}" for k, v in (("nonce", args.nonce), ("actor", args.actor)) if v is not None
        )
        emit(args, call(f"{base}/v1/topics/{args.topic}/rewards?{params}"), _text)
    elif verb == "tx":
        emit(args, call(f"{base}/v1/txs/{args.hash}"), _text)
    elif verb == "supply":
        emit(args, call(f"{base}/v1/supply"), _text)
    elif verb == "validators":
        emit(args, call(f"{base}/v1/validators"), _validators_text)
    return 0


def register(subparsers: Any) -> None:
    parser = subcommand(
        subparsers,
        "query",
        "read the chain through a node's HTTP API",
        "examples:\n  alloranet query status --api http://127.0.0.1:1317\n"
        "  alloranet query network-inference --topic 1 -o json\n"
        "  alloranet query rewards --topic 1 --actor allo1...\n"
        "  alloranet query block --height 20 --home ~/.alloranet",
    )
    verbs = parser.add_subparsers(dest="query_verb", metavar="VERB")
    verbs.required = True
    specs: list[tuple[str, str, list[tuple[str, dict[str, Any]]]]] = [
        ("status", "node and chain status", []),
        ("block", "a block (latest by default)", [("--height", {"type": int})]),
        ("account", "balance and sequence", [("--address", {"required": True})]),
        ("topics", "every topic: id, metadata, epoch length, weight", []),
        ("topic", "a topic's rules, members, reputer stakes and open windows",
         [("--id", {"type": int, "required": True})]),
        ("network-inference", "the latest (or --nonce) network inference of a topic",
         [("--topic", {"type": int, "required": True}), ("--nonce", {"type": int})]),
        ("rewards", "rewards paid per epoch and actor",
         [("--topic", {"type": int, "required": True}), ("--nonce", {"type": int}),
          ("--actor", {})]),
        ("tx", "where a transaction was included, and its result",
         [("--hash", {"required": True})]),
        ("validators", "every validator: tokens, voting power, jailed, missed blocks", []),
        ("supply", "total token supply and the bonded part (uallo)", []),
    ]  # fmt: skip
    #: what the example puts in each required flag
    samples = {"--id": "1", "--topic": "1", "--address": "allo1...", "--hash": "TX_HASH_HEX"}
    for name, text, flags in specs:
        required = "".join(
            f" {flag} {samples[flag]}" for flag, options in flags if options.get("required")
        )
        sub = subcommand(verbs, name, text, f"example:\n  alloranet query {name}{required} -o json")
        for flag, options in flags:
            sub.add_argument(flag, **options)
        add_api_flags(sub)
        sub.set_defaults(handler=_cmd)
