"""Golden SHA-256 hashes of every synthesis output for fixed seeded scenarios.

Fails if any bit of any output changes (network inferences, losses, regret state, scores,
rewards, emissions). To regenerate after an intended change, run
``ALLORANET_UPDATE_GOLDEN=1 pytest tests/unit/test_synthesis_golden.py`` and explain the
change in the commit message.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from alloranet import codec
from alloranet.synthesis import (
    ModuleParams,
    RegretState,
    TopicParams,
    WorkerRound,
    compute_monthly_emission,
    compute_network_inferences,
)
from alloranet.synthesis.scenario import make_scenario, run_epoch

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "synthesis_golden.json"
SCENARIOS = [(seed, n, k) for seed in (1, 2, 3) for n, k in ((5, 3), (32, 6), (64, 12))]


def _hex(value: codec.Value) -> str:
    return codec.sha256(codec.encode(value)).hex()


def compute_hashes() -> dict[str, str]:
    out: dict[str, str] = {}
    for seed, n, k in SCENARIOS:
        e = run_epoch(make_scenario(seed, n, k))
        name = f"seed{seed}_{n}x{k}"
        out[f"{name}/inferences"] = _hex(e.inferences.to_wire())
        out[f"{name}/losses"] = _hex(e.losses.to_wire())
        out[f"{name}/regrets"] = _hex(e.regrets.to_wire())
        out[f"{name}/scores"] = _hex(e.scores.to_wire())
        out[f"{name}/rewards"] = _hex(e.rewards.to_wire())
    topic, module = TopicParams(), ModuleParams()
    r = WorkerRound(("a", "b", "c", "d"), np.array([0.1, 0.5, 0.2, 0.9]), (), np.zeros((0, 4)))
    s = make_scenario(9, 4, 0)
    out["degenerate/median"] = _hex(
        compute_network_inferences(topic, module, r, RegretState.empty(1.0), None).to_wire()
    )
    out["degenerate/all_new"] = _hex(
        compute_network_inferences(topic, module, r, RegretState.empty(0.0), s.latest).to_wire()
    )
    em = compute_monthly_emission(864_001 * 13, 3 * 10**26, 10**26, 10**25, 0.018, 0.3)
    out["emission/month13"] = _hex(
        (em.target_rate, em.max_rate, em.smoothed_rate, em.monthly, em.per_block)
    )
    return out


def test_golden_hashes() -> None:
    got = compute_hashes()
    if os.environ.get("ALLORANET_UPDATE_GOLDEN") == "1":
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
    expected = json.loads(GOLDEN.read_text())
    changed = sorted(k for k in expected if got.get(k) != expected[k])
    assert set(got) == set(expected), "scenario list changed"
    assert not changed, f"outputs changed bits: {changed}"
