"""The monthly emission schedule with vesting and the cap (spec/synthesis.md 6, x/mint).

Rates are floats (built from correctly rounded operations only); token amounts are integers
in base units and pass through :func:`alloranet.synthesis.tokens.to_base_units` exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass

from alloranet.synthesis.ema import ema_scalar
from alloranet.synthesis.errors import SynthesisError
from alloranet.synthesis.tokens import to_base_units

MAX_SUPPLY = 10**27  # 1e9 ALLO x 1e18
BLOCKS_PER_MONTH = 864_000


@dataclass(frozen=True)
class MintParams:
    """x/mint defaults (spec 6)."""

    max_supply: int = MAX_SUPPLY
    f_emission: float = 0.025
    one_month_smoothing_degree: float = 0.1
    max_monthly_percentage_yield: float = 0.0095
    ecosystem_treasury_percent: float = 0.3595
    investors_percent: float = 0.2605
    investors_preseed_percent: float = 0.05
    team_percent: float = 0.175
    validators_share: float = 0.25
    blocks_per_month: int = BLOCKS_PER_MONTH


def locked_vesting_fraction(height: int, blocks_per_month: int = BLOCKS_PER_MONTH) -> float:
    """Share of the investor/pre-seed/team buckets still locked at ``height``: all of it for
    12 months, then (36 - months) / 36 until month 36, none after."""
    months = height // blocks_per_month
    if months < 12:
        return 1.0
    if months >= 36:
        return 0.0
    return (36 - months) / 36.0


def target_emission_per_staked(
    f_emission: float, ecosystem_tokens: float, staked: float, circulating: float, max_supply: float
) -> float:
    """e_target = f_e (T_eco / N_staked) (N_circ / MaxSupply)."""
    if staked <= 0.0:
        raise SynthesisError("no staked tokens: emission per staked token is undefined")
    return f_emission * (ecosystem_tokens / staked) * (circulating / max_supply)


def max_emission_per_staked(mpy: float, validators_share: float, reputer_share: float) -> float:
    """e_max = MPY_max / (v + (1 - v) r)."""
    return mpy / (validators_share + (1.0 - validators_share) * reputer_share)


@dataclass(frozen=True)
class MonthlyEmission:
    """One month's recomputed schedule."""

    target_rate: float
    max_rate: float
    capped_rate: float
    smoothed_rate: float
    monthly: int  # base units
    per_block: int  # base units
    validators_per_block: int
    rewards_per_block: int


def compute_monthly_emission(
    height: int,
    staked: int,
    ecosystem_balance: int,
    ecosystem_minted: int,
    previous_smoothed_rate: float | None,
    reputer_share: float,
    params: MintParams | None = None,
) -> MonthlyEmission:
    """Spec 6 for the month starting at ``height``: circulating supply after vesting, target
    and capped rate per staked token, the 0.1-EMA, and the integer monthly/per-block amounts."""
    p = params or MintParams()
    headroom = to_base_units(p.max_supply * p.ecosystem_treasury_percent) - ecosystem_minted
    eco = ecosystem_balance + max(0, headroom)
    vested = p.max_supply * (p.investors_percent + p.investors_preseed_percent + p.team_percent)
    locked = to_base_units(vested * locked_vesting_fraction(height, p.blocks_per_month))
    circulating = p.max_supply - locked - eco
    if circulating < 0:
        raise SynthesisError("circulating supply is negative")
    target = target_emission_per_staked(
        p.f_emission, float(eco), float(staked), float(circulating), float(p.max_supply)
    )
    cap = max_emission_per_staked(p.max_monthly_percentage_yield, p.validators_share, reputer_share)
    capped = min(target, cap)
    smoothed = ema_scalar(p.one_month_smoothing_degree, capped, previous_smoothed_rate)
    monthly = to_base_units(smoothed * float(staked))
    per_block = monthly // p.blocks_per_month
    validators = to_base_units(p.validators_share * float(per_block))
    return MonthlyEmission(
        target_rate=target,
        max_rate=cap,
        capped_rate=capped,
        smoothed_rate=smoothed,
        monthly=monthly,
        per_block=per_block,
        validators_per_block=validators,
        rewards_per_block=per_block - validators,
    )
