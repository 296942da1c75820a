"""``alloranet start --home DIR``: run the node daemon until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from alloranet.cli.output import subcommand


def _cmd_start(args: argparse.Namespace) -> int:
    from alloranet.node.daemon import run_node

    if args.test_mode or args.test_unsafe_equivocate:
        from alloranet.node.faults import enable_test_mode

        enable_test_mode(equivocate=args.test_unsafe_equivocate)
    return run_node(args.home)


def register(subparsers: Any) -> None:
    parser = subcommand(
        subparsers,
        "start",
        "run the node (p2p, consensus, state, HTTP API) until SIGTERM or Ctrl-C",
        "examples:\n  alloranet start --home ~/.alloranet\n"
        "  alloranet start --home ./val1 2> node.log",
    )
    parser.add_argument("--home", type=Path, required=True, help="node home (alloranet init)")
    parser.add_argument(
        "--test-mode", action="store_true", help="chaos tests only: serve /v1/admin fault routes"
    )
    parser.add_argument(
        "--test-unsafe-equivocate",
        action="store_true",
        help="chaos negative control only: skip the signer guard and double-sign every prevote",
    )
    parser.set_defaults(handler=_cmd_start)
