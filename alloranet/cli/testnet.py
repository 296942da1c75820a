"""``alloranet testnet up|status|down|logs``: a local multi-node network in one command."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from alloranet.cli.output import add_output_flag, emit, subcommand
from alloranet.cli.signals import ignore_stop_signals, interrupt_on_stop_signals
from alloranet.errors import AlloraError
from alloranet.node.localnet import create_local_testnet
from testnet import launcher
from testnet.manifest import TestnetError, load_manifest, manifest_from_dict, save_manifest
from testnet.view import render_status, render_view

DEFAULT_HOME = Path(".testnet")


class TestnetCommandError(AlloraError):
    """A testnet step failed; the message says which and where the logs are."""


def _wrap(exc: TestnetError) -> TestnetCommandError:
    return TestnetCommandError(str(exc))


def _stop(root: Path, manifest: Any) -> None:
    ignore_stop_signals()
    print("\nstopping the testnet ...", file=sys.stderr)
    launcher.down(root, manifest)


def _cmd_up(args: argparse.Namespace) -> int:
    root: Path = args.home
    interrupt_on_stop_signals()  # Ctrl-C, kill or hang-up: stop every process we started
    try:
        if not (root / "testnet.json").exists():
            raw = create_local_testnet(
                root,
                validators=args.validators,
                workers=args.workers,
                forecasters=args.forecasters,
                reputers=args.reputers,
                seed=args.seed,
            )
            manifest = manifest_from_dict(raw)
            save_manifest(root, manifest)
            print(f"created {len(manifest.nodes)} node homes in {root}", file=sys.stderr)
        manifest = load_manifest(root)
        try:
            launcher.start_nodes(root, manifest)
            print("waiting for the first blocks ...", file=sys.stderr)
            try:
                launcher.wait_all_at_height(manifest, 2, timeout=args.start_timeout)
            except TestnetError as exc:
                launcher.down(root, manifest)
                raise TestnetError(f"{exc}; see `alloranet testnet logs 0 --home {root}`") from None
            launcher.start_actors(root, manifest)
            if args.detach:
                emit(args, launcher.collect_status(root, manifest), render_status)
                return 0
            while True:
                sys.stdout.write("\x1b[2J\x1b[H" if sys.stdout.isatty() else "\n")
                sys.stdout.write(render_view(root, manifest) + "\n")
                sys.stdout.flush()
                time.sleep(args.refresh)
        except KeyboardInterrupt:
            _stop(root, manifest)
        return 0
    except TestnetError as exc:
        raise _wrap(exc) from None


def _cmd_status(args: argparse.Namespace) -> int:
    try:
        manifest = load_manifest(args.home)
    except TestnetError as exc:
        raise _wrap(exc) from None
    emit(args, launcher.collect_status(args.home, manifest), render_status)
    return 0


def _cmd_down(args: argparse.Namespace) -> int:
    try:
        manifest = load_manifest(args.home)
    except TestnetError as exc:
        raise _wrap(exc) from None
    stopped = launcher.down(args.home, manifest)
    emit(args, {"stopped": stopped}, lambda d: f"stopped: {', '.join(d['stopped']) or 'nothing'}")
    return 0


def _cmd_logs(args: argparse.Namespace) -> int:
    try:
        manifest = load_manifest(args.home)
        name = args.node if not args.node.isdigit() else manifest.node(int(args.node)).name
        sys.stdout.write(launcher.logs(args.home, name, args.lines) + "\n")
    except TestnetError as exc:
        raise _wrap(exc) from None
    return 0


def _cmd_node(args: argparse.Namespace) -> int:
    """kill (SIGKILL, for crash tests), stop (SIGTERM) or start one node."""
    try:
        manifest = load_manifest(args.home)
        index = int(args.node)
        if args.testnet_verb == "kill":
            done = launcher.kill_node(args.home, manifest, index)
        elif args.testnet_verb == "stop":
            done = launcher.stop_node(args.home, manifest, index)
        else:
            launcher.start_node(args.home, manifest, index)
            done = True
    except (TestnetError, ValueError) as exc:
        raise TestnetCommandError(str(exc)) from None
    emit(args, {"node": index, "done": done}, lambda d: f"node{d['node']}: {args.testnet_verb}")
    return 0


def _home(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--home", type=Path, default=DEFAULT_HOME, help="testnet directory (default: .testnet)"
    )


def register(subparsers: Any) -> None:
    parser = subcommand(
        subparsers,
        "testnet",
        "run a local multi-node testnet with simulated workers and reputers",
        "examples:\n  alloranet testnet up --validators 4 --workers 5 --forecasters 3 "
        "--reputers 3 --seed 1 --home .testnet\n  alloranet testnet up --home .testnet --detach\n"
        "  alloranet testnet status -o json\n  alloranet testnet logs 2 --lines 50\n"
        "  alloranet testnet down",
    )
    verbs = parser.add_subparsers(dest="testnet_verb", metavar="VERB")
    verbs.required = True
    up = subcommand(
        verbs,
        "up",
        "create (first time) and start the testnet, then show a live status until Ctrl-C",
        "example:\n  alloranet testnet up --validators 4 --workers 5 --seed 1 --detach",
    )
    up.add_argument("--validators", type=int, default=4)
    up.add_argument("--workers", type=int, default=5)
    up.add_argument("--forecasters", type=int, default=3)
    up.add_argument("--reputers", type=int, default=3)
    up.add_argument("--seed", type=int, default=1)
    up.add_argument("--detach", action="store_true", help="return once blocks are produced")
    up.add_argument("--refresh", type=float, default=1.0, help="live view refresh, seconds")
    up.add_argument("--start-timeout", type=float, default=60.0, help="seconds to first blocks")
    _home(up)
    add_output_flag(up)
    up.set_defaults(handler=_cmd_up)

    status = subcommand(
        verbs,
        "status",
        "height, hashes and peers of every node",
        "example:\n  alloranet testnet status -o json",
    )
    _home(status)
    add_output_flag(status)
    status.set_defaults(handler=_cmd_status)

    down = subcommand(
        verbs,
        "down",
        "stop every process of the testnet (by PID)",
        "example:\n  alloranet testnet down --home .testnet",
    )
    _home(down)
    add_output_flag(down)
    down.set_defaults(handler=_cmd_down)

    logs = subcommand(
        verbs,
        "logs",
        "the last lines of one node's (or the actors') log",
        "examples:\n  alloranet testnet logs 0\n  alloranet testnet logs actors",
    )
    logs.add_argument("node", help="node index (0, 1, ...) or process name (actors)")
    logs.add_argument("--lines", type=int, default=100)
    _home(logs)
    logs.set_defaults(handler=_cmd_logs)

    from testnet.chaos.cli import register_chaos  # chaos testing lives in testnet/chaos

    register_chaos(verbs, subcommand)
