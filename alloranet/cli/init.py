"""``alloranet init --home DIR``: config (commented TOML), genesis, node key, validator key."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from alloranet.cli.output import add_output_flag, emit, subcommand
from alloranet.node.genesis import load_genesis
from alloranet.node.home import init_home, result_dict

EXAMPLES = """examples:
  alloranet init --home ~/.alloranet --moniker alice
  alloranet init --home ./val1 --chain-id mynet --p2p-port 26656 --rpc-port 1317 --preset production
  alloranet init --home ./val2 --genesis ./genesis.json \\
      --bootstrap /ip4/10.0.0.1/tcp/26656/p2p/12D3KooW... -o json
"""


def _cmd_init(args: argparse.Namespace) -> int:
    genesis = load_genesis(args.genesis) if args.genesis else None
    chain_id = args.chain_id or (genesis.chain_id if genesis else "alloranet-local")
    result = init_home(
        args.home,
        moniker=args.moniker,
        chain_id=chain_id,
        p2p_port=args.p2p_port,
        rpc_port=args.rpc_port,
        bootstrap=tuple(args.bootstrap or ()),
        preset=args.preset,
        genesis=genesis,
        overwrite=args.overwrite,
    )

    def render(d: dict[str, Any]) -> str:
        return (
            f"initialised {d['home']} for chain {d['chain_id']}\n"
            f"validator: {d['validator_address']} (public key {d['validator_public_key']})\n"
            f"p2p:       {d['p2p_address']}\n"
            f"api:       {d['api']}\n"
            f"next: alloranet start --home {d['home']}"
        )

    emit(args, result_dict(result), render)
    return 0


def register(subparsers: Any) -> None:
    parser = subcommand(subparsers, "init", "create a node home (config, genesis, keys)", EXAMPLES)
    parser.add_argument("--home", type=Path, required=True, help="directory to create")
    parser.add_argument("--moniker", default="node", help="human-readable node name")
    parser.add_argument("--chain-id", help="chain id (default: the genesis file's, or local)")
    parser.add_argument("--p2p-port", type=int, default=26656, help="libp2p TCP port")
    parser.add_argument("--rpc-port", type=int, default=1317, help="HTTP API port (loopback)")
    parser.add_argument(
        "--bootstrap", action="append", metavar="MULTIADDR", help="peer to dial (repeatable)"
    )
    parser.add_argument(
        "--preset", choices=("local", "production"), default="local", help="consensus timeouts"
    )
    parser.add_argument("--genesis", type=Path, help="use this genesis.json (joining a chain)")
    parser.add_argument(
        "--overwrite", action="store_true", help="rewrite config and genesis (keys are kept)"
    )
    add_output_flag(parser)
    parser.set_defaults(handler=_cmd_init)
