"""The fault simulator in CI: 1,000 seeded schedules, the checker self-test, replayability."""

from __future__ import annotations

import os

from alloranet.consensus.sim import generate_scenario, run_schedule
from alloranet.consensus.sim.parallel import run_many

SCHEDULES = 1000


def test_thousand_seeded_schedules_have_no_violations() -> None:
    jobs = min(2, os.cpu_count() or 1)
    summary = run_many(SCHEDULES, seed=0, jobs=jobs)
    report = "\n".join(
        f"seed={seed}: {v[:3]} | {desc}\n  replay: python -m alloranet.consensus.sim "
        f"--schedules 1 --seed {seed}"
        for seed, desc, v in summary.failures
    )
    assert summary.violations == 0, report
    assert summary.heights > SCHEDULES  # schedules decide heights, not just survive


def test_the_schedules_cover_every_fault_kind() -> None:
    scenarios = [generate_scenario(s) for s in range(SCHEDULES)]
    assert all(4 <= sum(p > 0 for p in sc.powers) <= 7 for sc in scenarios)
    assert all(len(set(sc.powers)) > 1 for sc in scenarios[:50] if len(sc.powers) > 4)
    assert sum(bool(sc.twins) for sc in scenarios) > 200
    assert sum(bool(sc.withholders) for sc in scenarios) > 100
    assert sum(bool(sc.crashes) for sc in scenarios) > 500
    assert sum(any(c.mode == "failpoint" for c in sc.crashes) for sc in scenarios) > 300
    assert sum(bool(sc.partitions) for sc in scenarios) > 500
    assert sum(bool(sc.updates) for sc in scenarios) > 200
    assert sum(sc.drop > 0 for sc in scenarios) > 300
    assert sum(sc.real_crypto for sc in scenarios) > 100  # real Ed25519 in a good share
    no_quorum = 0
    for sc in scenarios:
        total = sum(sc.powers)
        for p in sc.partitions:
            power = [sum(sc.powers[sc.key_of(n)] for n in g) for g in p.groups]
            if all(3 * x <= 2 * total for x in power):
                no_quorum += 1
                break
    assert no_quorum > 200  # partitions where no side has 2/3


def test_self_test_twins_over_a_third_break_safety() -> None:
    summary = run_many(30, seed=0, byzantine_over=True)
    assert summary.violations > 0
    assert any("agreement" in v for _, _, vs in summary.failures for v in vs)


def test_a_schedule_replays_identically_from_its_seed() -> None:
    a, b = run_schedule(123), run_schedule(123)
    assert (a.heights, a.events, a.violations) == (b.heights, b.events, b.violations)


def test_cli_prints_summary_and_exit_codes(capsys) -> None:  # type: ignore[no-untyped-def]
    from alloranet.consensus.sim.__main__ import main

    assert main(["--schedules", "3", "--seed", "5"]) == 0
    out = capsys.readouterr().out
    assert "schedules=3" in out and "violations=0" in out and "heights_decided=" in out
    # the self-test mode exits 0 only when the checkers do find the fork
    assert main(["--schedules", "10", "--seed", "0", "--byzantine-over"]) == 0
    out = capsys.readouterr().out
    assert "FAIL seed=" in out and "replay: python -m alloranet.consensus.sim" in out
