"""Inference synthesis, scores, rewards and emissions (spec/synthesis.md 2-7): pure numpy.

The chain's epoch processing calls, per topic and closed nonce:

1. :func:`compute_network_losses` (reputer bundles -> stake-weighted losses, store it);
2. :func:`compute_regret_update` (all nine regret families + the topic's initial regret);
3. :func:`compute_scores` then :func:`compute_rewards` (integer payouts per actor);

and :func:`compute_network_inferences` whenever a network inference is needed (the query and
the reputers); :func:`compute_monthly_emission` once a month. Deterministic arithmetic only
(DESIGN.md section 4): see :mod:`alloranet.synthesis.detmath` and :mod:`.stats`.

Speed (issue 3): the epoch's pools are weighted in batches of equal length by :mod:`.pools`
(cache-sized blocks, reused buffers, entry-major pairwise sums); the regret update of an
unchanged worker set is one fused pass per family (one pass over all nine for a small topic);
the network losses are one (reputers x entries) matrix; the reputer loop runs on transposed
batches with prebuilt sum trees and reused buffers. At small sizes (32 x 6) the cost is numpy's
per-call overhead, not arithmetic, so independent pool batches share one pass of their element-
wise steps (:func:`.pools.average_pools_many`), and short 1-D pieces (sample std, percentile
interpolation, payouts) run on Python floats, whose + - * / and sqrt are the same correctly
rounded operations in the same order. Every one of these computes the bits of the plain
reference functions (:mod:`.weights`, :func:`.stats.fixed_sum`,
:func:`.losses.stake_weighted_mean`, ...), which tests/unit/test_synthesis_fastpaths.py checks,
together with output hashes recorded before the speed paths existed.
A node should also run with glibc told to keep freed memory
(``MALLOC_MMAP_THRESHOLD_``/``MALLOC_TRIM_THRESHOLD_``, see benchmarks/synthesis_scaling.py);
the library does not set it.
"""

from alloranet.synthesis.api import (
    NetworkInferences,
    NetworkLosses,
    ReputerReports,
    Rewards,
    RewardState,
    Scores,
    WorkerRound,
    compute_network_inferences,
    compute_network_losses,
    compute_regret_update,
    compute_rewards,
    compute_scores,
)
from alloranet.synthesis.emissions import MintParams, MonthlyEmission, compute_monthly_emission
from alloranet.synthesis.errors import SynthesisError
from alloranet.synthesis.inference import InferenceArrays, InferenceRegrets
from alloranet.synthesis.losses import LossArrays, LossReports
from alloranet.synthesis.params import ModuleParams, TopicParams
from alloranet.synthesis.regrets import RegretState
from alloranet.synthesis.tokens import to_base_units

__all__ = [
    "InferenceArrays",
    "InferenceRegrets",
    "LossArrays",
    "LossReports",
    "MintParams",
    "ModuleParams",
    "MonthlyEmission",
    "NetworkInferences",
    "NetworkLosses",
    "RegretState",
    "ReputerReports",
    "RewardState",
    "Rewards",
    "Scores",
    "SynthesisError",
    "TopicParams",
    "WorkerRound",
    "compute_monthly_emission",
    "compute_network_inferences",
    "compute_network_losses",
    "compute_regret_update",
    "compute_rewards",
    "compute_scores",
    "to_base_units",
]
