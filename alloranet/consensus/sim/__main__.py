"""``python -m alloranet.consensus.sim --schedules N --seed S [--byzantine-over] [--jobs J]``.

Prints each failing schedule (with its seed, to replay with ``--schedules 1 --seed <seed>``),
then the number of schedules, heights decided and violations; exits 1 on any violation
(or, with ``--byzantine-over``, 1 if *no* violation was found: the checkers must fire).
"""

from __future__ import annotations

import argparse
import sys
import time

from alloranet.consensus.sim.parallel import run_many


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m alloranet.consensus.sim", description=__doc__)
    p.add_argument("--schedules", type=int, default=100, help="how many seeded schedules")
    p.add_argument("--seed", type=int, default=0, help="seed of the first schedule")
    p.add_argument("--jobs", type=int, default=1, help="worker processes")
    p.add_argument(
        "--byzantine-over",
        action="store_true",
        help="self-test: twins hold >= 1/3 of the power; a violation is expected",
    )
    args = p.parse_args(argv)
    if args.schedules < 1 or args.jobs < 1:
        p.error("--schedules and --jobs must be at least 1")
    t0 = time.monotonic()
    summary = run_many(args.schedules, args.seed, args.byzantine_over, args.jobs)
    for seed, desc, violations in summary.failures:
        print(f"FAIL seed={seed}: {'; '.join(violations[:5])}")
        print(f"     {desc}")
        print(f"     replay: python -m alloranet.consensus.sim --schedules 1 --seed {seed}")
    print(
        f"schedules={args.schedules} heights_decided={summary.heights} "
        f"violations={summary.violations} failing_schedules={len(summary.failures)} "
        f"seconds={time.monotonic() - t0:.1f}"
    )
    if args.byzantine_over:
        return 0 if summary.violations else 1
    return 1 if summary.violations else 0


if __name__ == "__main__":
    sys.exit(main())
