"""Parameters of the synthesis maths: topic rules and module defaults (spec/synthesis.md 5.6).

Why frozen dataclasses with defaults: the chain stores topic rules per topic and module
parameters globally; the maths only needs the numbers, and a default is the documented Allora
value so a call site names only what it changes.
"""

from __future__ import annotations

from dataclasses import dataclass

from alloranet.errors import ValidationError


@dataclass(frozen=True)
class TopicParams:
    """Per-topic rules set at topic creation (spec 5.6, ``Topic.Validate``)."""

    p_norm: float = 3.0
    alpha_regret: float = 0.1
    epsilon: float = 0.01
    merit_sortition_alpha: float = 0.1
    active_inferer_quantile: float = 0.2
    active_forecaster_quantile: float = 0.2
    active_reputer_quantile: float = 0.2

    def __post_init__(self) -> None:
        if not 2.5 <= self.p_norm <= 4.5:
            raise ValidationError(f"p_norm must be in [2.5, 4.5], got {self.p_norm}")
        if not 0.0 < self.alpha_regret <= 1.0:
            raise ValidationError(f"alpha_regret must be in (0, 1], got {self.alpha_regret}")
        if not self.epsilon > 0.0:
            raise ValidationError(f"epsilon must be > 0, got {self.epsilon}")
        for name in (
            "merit_sortition_alpha",
            "active_inferer_quantile",
            "active_forecaster_quantile",
            "active_reputer_quantile",
        ):
            v = getattr(self, name)
            if not 0.0 <= v < 1.0:
                raise ValidationError(f"{name} must be in [0, 1), got {v}")


@dataclass(frozen=True)
class ModuleParams:
    """Module-wide parameters with Allora's defaults (``DefaultParams``)."""

    c_norm: float = 0.75
    epsilon_safe_div: float = 1e-7
    epsilon_reputer: float = 0.01
    initial_regret_quantile: float = 0.25
    p_norm_safe_div: float = 8.25
    beta_entropy: float = 0.25
    learning_rate: float = 0.05
    gradient_descent_max_iters: int = 10
    max_gradient_threshold: float = 0.001
    min_stake_fraction: float = 0.5
    task_reward_alpha: float = 0.1
    p_reward_inference: float = 1.0
    p_reward_forecast: float = 3.0
    p_reward_reputer: float = 3.0
    c_reward_inference: float = 0.75
    c_reward_forecast: float = 0.75
    topic_reward_stake_importance: float = 0.5
    topic_reward_fee_revenue_importance: float = 0.5
    topic_reward_alpha: float = 0.5
    validators_vs_allora_percent_reward: float = 0.25
    min_topic_weight: float = 100.0
    max_samples_to_scale_scores: int = 10
    blocks_per_month: int = 864000


#: Entropy of a single participant (``Entropy`` special case, spec 5.4).
SINGLE_PARTICIPANT_ENTROPY = 0.173286795139986
