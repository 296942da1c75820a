"""``alloranet testnet chaos --manifest FILE | --random --seed S --runs R [--report FILE]``.

Prints one progress line per run (with its seed, so any run can be replayed), writes the JSON
report and a readable summary, and exits non-zero when any run found a violation.
Registered as a sub-verb of ``alloranet testnet`` by ``alloranet/cli/testnet.py``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from testnet.chaos.runner import RunResult
    from testnet.chaos.schema import ChaosManifest

# The harness is imported only when the verb runs: ``register_chaos`` is called whenever the
# CLI builds its parser, including for ``alloranet start``, whose start-up time is measured.

DEFAULT_REPORT = Path("chaos-report.json")


class ChaosCommandError(Exception):
    """Bad arguments or an unusable manifest (the CLI prints it as one line)."""


def select_manifests(args: argparse.Namespace) -> list[ChaosManifest]:
    from testnet.chaos.generator import generate_manifest
    from testnet.chaos.schema import ChaosManifestError, load_chaos_manifest

    if args.random:
        if args.manifest:
            raise ChaosCommandError("give either --manifest or --random, not both")
        if args.runs < 1:
            raise ChaosCommandError("--runs must be at least 1")
        return [generate_manifest(args.seed + i) for i in range(args.runs)]
    if not args.manifest:
        raise ChaosCommandError("give --manifest FILE (repeatable) or --random --seed S --runs R")
    try:
        return [load_chaos_manifest(Path(p)) for p in args.manifest]
    except ChaosManifestError as exc:
        raise ChaosCommandError(str(exc)) from None


def run_all(
    manifests: list[ChaosManifest], workdir: Path | None = None, keep: bool = False
) -> list[RunResult]:
    from testnet.chaos.runner import run_manifest

    results = []
    for i, manifest in enumerate(manifests):
        print(
            f"run {i + 1}/{len(manifests)}: {manifest.name} (seed {manifest.network.seed}) ...",
            file=sys.stderr,
            flush=True,
        )
        base = workdir or Path(tempfile.gettempdir())
        base.mkdir(parents=True, exist_ok=True)
        root = Path(tempfile.mkdtemp(prefix=f"chaos-{manifest.name}-", dir=base))
        result = run_manifest(manifest, root, lambda line: print(line, file=sys.stderr))
        status = "ok" if result.ok else f"{len(result.violations)} violation(s)"
        heights = max(result.heights.values(), default=0)
        print(
            f"run {i + 1}/{len(manifests)}: {manifest.name} seed {manifest.network.seed}: "
            f"{status}, {len(result.faults)} faults, height {heights}, "
            f"{result.duration_s:.0f}s" + ("" if result.ok else f" (data in {root})"),
            flush=True,
        )
        if result.ok and not keep:
            shutil.rmtree(root, ignore_errors=True)
        results.append(result)
    return results


def command(args: argparse.Namespace) -> int:
    from testnet.chaos.network import ChaosError, timeout_factor
    from testnet.chaos.report import build_report, render_summary, save_report

    try:
        manifests = select_manifests(args)
        factor = timeout_factor()
    except (ChaosCommandError, ChaosError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from alloranet.cli.signals import interrupt_on_stop_signals

    interrupt_on_stop_signals()  # each run's finally stops its nodes on Ctrl-C, kill, hang-up
    try:
        results = run_all(manifests, args.workdir, args.keep)
    except KeyboardInterrupt:
        print("interrupted: the running network was stopped; no report written", file=sys.stderr)
        return 130
    report = build_report(results, factor)
    save_report(args.report, report)
    print(render_summary(report))
    print(f"report: {args.report}")
    return 1 if report["violations"] else 0


def register_chaos(verbs: Any, subcommand: Any) -> None:
    """Add ``chaos`` to the ``testnet`` sub-verbs (``subcommand`` is the CLI's helper)."""
    parser = subcommand(
        verbs,
        "chaos",
        "chaos-test real node processes: partitions, crashes, pauses, Byzantine validators",
        "examples:\n"
        "  alloranet testnet chaos --manifest testnet/manifests/partition-minority.toml\n"
        "  alloranet testnet chaos --random --seed 7 --runs 5 --report chaos.json\n"
        "  ALLORANET_TIMEOUT_FACTOR=2 alloranet testnet chaos --manifest a.toml --manifest b.toml",
    )
    parser.add_argument("--manifest", action="append", default=[], help="TOML manifest file")
    parser.add_argument("--random", action="store_true", help="generate manifests from --seed")
    parser.add_argument("--seed", type=int, default=1, help="first seed of --random runs")
    parser.add_argument("--runs", type=int, default=1, help="number of --random runs")
    parser.add_argument("--report", type=Path, default=DEFAULT_REPORT, help="JSON report path")
    parser.add_argument("--workdir", type=Path, default=None, help="where node homes go")
    parser.add_argument("--keep", action="store_true", help="keep node homes of passing runs")
    parser.set_defaults(handler=command)
