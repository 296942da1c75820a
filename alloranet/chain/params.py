"""Module parameters: emissions (spec/synthesis.md 5.5/5.6), staking and slashing.

Why integers and exact floats: every parameter is consensus state. Token amounts are integer
base units; dimensionless coefficients are float64 stored with their exact bits. Defaults are the
values of spec/synthesis.md 5.6 (fees are in base units, as there) and, for staking, the
small-test-chain values of spec/consensus.md 4.4 (unbonding and evidence age in blocks).
"""

from __future__ import annotations

from dataclasses import astuple, dataclass, fields
from functools import lru_cache
from typing import Any

from alloranet.codec import expect_float, expect_int, expect_tuple
from alloranet.synthesis import ModuleParams, TopicParams
from alloranet.types import UALLO_PER_ALLO


@dataclass(frozen=True, slots=True)
class EmissionsParams:
    """x/emissions DefaultParams (spec/synthesis.md 5.6)."""

    min_topic_weight: int = 100
    required_minimum_stake: int = 10_000
    remove_stake_delay_window: int = 604_800
    min_epoch_length: int = 12
    beta_entropy: float = 0.25
    learning_rate: float = 0.05
    gradient_descent_max_iters: int = 10
    max_gradient_threshold: float = 0.001
    min_stake_fraction: float = 0.5
    topic_reward_stake_importance: float = 0.5
    topic_reward_fee_revenue_importance: float = 0.5
    topic_reward_alpha: float = 0.5
    task_reward_alpha: float = 0.1
    validators_vs_allora_percent_reward: float = 0.25
    create_topic_fee: int = 75_000
    registration_fee: int = 200
    data_sending_fee: int = 10
    max_unfulfilled_worker_requests: int = 100
    max_unfulfilled_reputer_requests: int = 100
    half_max_process_stake_removals_end_block: int = 40
    c_norm: float = 0.75
    p_reward_inference: float = 1.0
    p_reward_forecast: float = 3.0
    p_reward_reputer: float = 3.0
    c_reward_inference: float = 0.75
    c_reward_forecast: float = 0.75
    epsilon_reputer: float = 0.01
    epsilon_safe_div: float = 1e-7
    initial_regret_quantile: float = 0.25
    p_norm_safe_div: float = 8.25
    max_samples_to_scale_scores: int = 10
    max_top_inferers_to_reward: int = 32
    max_top_forecasters_to_reward: int = 6
    max_top_reputers_to_reward: int = 6
    max_elements_per_forecast: int = 12
    max_active_topics_per_block: int = 1
    blocks_per_month: int = 864_000
    min_epoch_length_record_limit: int = 3
    max_serialized_msg_length: int = 1_000_000
    max_string_length: int = 255

    def to_wire(self) -> tuple[Any, ...]:
        return astuple(self)

    @classmethod
    def from_wire(cls, wire: Any) -> EmissionsParams:
        params: EmissionsParams = _from_wire(cls, wire, "emissions params")
        return params


@dataclass(frozen=True, slots=True)
class StakingParams:
    """Staking, slashing, minting and fee parameters for a small chain (spec/consensus.md 4.4).

    ``emission_per_block`` selects the mint: 0 (the default) runs the emission schedule of
    spec/synthesis.md 6 (alloranet/chain/epochs.py); a positive value mints that fixed number of
    base units per block instead (handy for tests that want round numbers). Either way the
    network-emissions share that is still unminted caps it.
    """

    unbonding_blocks: int = 500
    max_validators: int = 100
    max_entries: int = 7
    power_reduction: int = UALLO_PER_ALLO
    slash_fraction_double_sign_ppm: int = 50_000  # 5 %
    evidence_max_age_blocks: int = 100
    min_self_delegation: int = UALLO_PER_ALLO
    min_tx_fee: int = 0
    max_msgs_per_tx: int = 32
    max_tx_bytes: int = 64 * 1024
    max_block_txs: int = 10_000
    emission_per_block: int = 0
    # liveness (spec/consensus.md 4.2/4.4, x/slashing defaults): missing more than window -
    # min_signed of the last window blocks jails for downtime_jail_ms and burns
    # slash_fraction_downtime; window 0 = off. The spec's 0.5 holds because a block's last
    # commit carries every precommit its proposer had when the height finished, not only the
    # first >2/3 (node/app.py record_final_commit; measured on a 4-node local testnet with its
    # actors: 139 of 151 commits held all 4 signatures, a healthy validator missed 0-5 of 100).
    # The local testnet preset widens the window to 1000 blocks (node/localnet.py): at ~0.3 s
    # blocks 100 would be 30 s, shorter than a routine restart plus catch-up.
    signed_blocks_window: int = 100
    min_signed_per_window_ppm: int = 500_000  # 0.5
    downtime_jail_ms: int = 600_000  # 600 s
    slash_fraction_downtime_ppm: int = 10_000  # 1 %

    def to_wire(self) -> tuple[Any, ...]:
        return astuple(self)

    @classmethod
    def from_wire(cls, wire: Any) -> StakingParams:
        params: StakingParams = _from_wire(cls, wire, "staking params")
        return params


def _from_wire(cls: Any, wire: Any, what: str) -> Any:
    """Memoised on the wire value and its element types (params are read from state for every
    transaction; rebuilding the dataclass cost more than the signature check). The types are
    part of the key because ``1 == 1.0 == True``: a cached answer never accepts another type."""
    if isinstance(wire, tuple):
        try:
            return _from_wire_cached(cls, wire, tuple(map(type, wire)), what)
        except TypeError:  # an unhashable element: malformed, checked (and refused) below
            pass
    return _decode_params(cls, wire, what)


@lru_cache(maxsize=64)
def _from_wire_cached(cls: Any, wire: tuple[Any, ...], types: tuple[type, ...], what: str) -> Any:
    return _decode_params(cls, wire, what)


def _decode_params(cls: Any, wire: Any, what: str) -> Any:
    items = expect_tuple(wire, what, len(fields(cls)))
    values: list[Any] = []
    for field, value in zip(fields(cls), items, strict=True):
        name = f"{what}.{field.name}"
        values.append(
            expect_float(value, name) if field.type == "float" else expect_int(value, name)
        )
    return cls(*values)


def compute_module_params(params: EmissionsParams) -> ModuleParams:
    """The synthesis view of the chain's emissions parameters: every ModuleParams field the
    chain has, by name, converted to the synthesis field's type (the one place that does it)."""
    values: dict[str, Any] = {}
    for field in fields(ModuleParams):
        if hasattr(params, field.name):
            value = getattr(params, field.name)
            default = getattr(ModuleParams(), field.name)
            values[field.name] = float(value) if isinstance(default, float) else int(value)
    return ModuleParams(**values)


def compute_topic_params(source: Any) -> TopicParams:
    """The synthesis rules of a topic (a stored Topic, a MsgCreateTopic, any object with the
    rule fields), by the names of TopicParams' fields."""
    return TopicParams(**{field.name: getattr(source, field.name) for field in fields(TopicParams)})
