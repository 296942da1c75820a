"""The invariants checked after every schedule (spec 2.5).

- agreement: no two honest nodes commit different values at one height;
- validity: every committed value is well-formed for its height and its commit verifies
  against that height's validator set;
- no double sign: no honest key sends two different signed messages for one (h, r, step)
  across restarts (checked as messages leave, in :meth:`Simulation._check_double_sign`);
- evidence: every equivocation an honest node received in one incarnation at that height
  produced DuplicateVoteEvidence from some honest node;
- liveness: after the last fault heals every honest node commits LIVENESS_HEIGHTS more
  heights within LIVENESS_BOUND_S simulated seconds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from alloranet.consensus.errors import ConsensusError
from alloranet.consensus.sim.scenario import LIVENESS_BOUND_S
from alloranet.consensus.types import compute_value_id
from alloranet.consensus.votes import verify_commit

if TYPE_CHECKING:
    from alloranet.consensus.sim.runner import Simulation


def run_checkers(sim: Simulation) -> None:
    from alloranet.consensus.sim.runner import CHAIN_ID

    v = sim.violations
    honest = [n for n in sim.nodes if n.honest]
    # agreement
    by_height: dict[int, bytes] = {}
    for n in honest:
        for h, value in sim.commits.get(n.node, {}).items():
            first = by_height.setdefault(h, value)
            if first != value:
                v.append(f"agreement: two different values committed at height {h}")
    # validity
    for n in honest:
        for h, d in n.app.blocks.items():
            if sim.decode_value(h, d.value) is None:
                v.append(f"validity: node {n.node} committed an invalid value at height {h}")
            try:
                verify_commit(
                    CHAIN_ID, n.app.sets[h], h, compute_value_id(d.value), d.commit, sim.verifier
                )
            except ConsensusError as e:
                v.append(f"validity: node {n.node} height {h} commit does not verify: {e}")
    # evidence for every observed equivocation
    for (_node, _inc, key, h, r, t), block_ids in sim.observed.items():
        if len(block_ids) > 1 and (key, h, r, t) not in sim.evidence_keys:
            v.append(f"evidence: equivocation at (h={h}, r={r}, type={t}) without evidence")
    # the signer guard never had to refuse an honest replica (replay was exact)
    for n in honest:
        refusals = n.refusals + (n.replica.refusals if n.replica is not None else 0)
        if refusals:
            v.append(f"replay: the signer guard refused {refusals} request(s) on node {n.node}")
    # liveness
    target = sim._target()
    for n in honest:
        if n.app.last_height < target:
            v.append(
                f"liveness: node {n.node} at height {n.app.last_height} < {target} "
                f"{LIVENESS_BOUND_S} s after heal"
            )
