"""Shared output helpers: every query prints text for people or JSON for scripts (``-o json``)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any


def add_output_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-o",
        "--output",
        choices=("text", "json"),
        default="text",
        help="output format (default: text)",
    )


def emit(
    args: argparse.Namespace, data: Any, render_text: Callable[[Any], str] | None = None
) -> None:
    """Print ``data`` as JSON when asked, else through ``render_text`` (or JSON if none)."""
    if getattr(args, "output", "text") == "json" or render_text is None:
        json.dump(data, sys.stdout, indent=None if getattr(args, "output", "") == "json" else 2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(render_text(data).rstrip("\n") + "\n")


def subcommand(
    subparsers: Any, name: str, help_text: str, epilog: str = ""
) -> argparse.ArgumentParser:
    """A sub-parser with the shared formatting (examples kept as written)."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        name,
        help=help_text,
        description=help_text,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return parser
