"""The ``alloranet`` command line: one convention for every verb.

Named flags, ``-o json`` on every query, ``--help`` with examples, and one-line errors
(``error: ...``) with a non-zero exit code: 1 for a failed operation, 2 for bad usage.
Each verb lives in its own module with a ``register(subparsers)`` function, so the parts of the
system add their commands without touching each other.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from alloranet.errors import AlloraError

#: Modules under alloranet.cli that contribute verbs, in help order.
VERB_MODULES = ("init", "start", "keys", "tx", "query", "synthesis", "testnet")

EPILOG = """examples:
  alloranet keys add --name alice --home ~/.alloranet
  alloranet keys list -o json
  alloranet synthesis replay case.json
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="alloranet",
        description="alloranet: a self-improving machine-intelligence network on its own BFT chain",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from alloranet import __version__

    parser.add_argument("--version", action="version", version=f"alloranet {__version__}")
    subparsers = parser.add_subparsers(dest="verb", metavar="VERB")
    subparsers.required = True
    for name in VERB_MODULES:
        module = importlib.import_module(f"alloranet.cli.{name}")
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result: int = args.handler(args)
    except AlloraError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    return result
