"""The one place a float becomes a token amount.

Why one function: DESIGN.md section 4 allows floats to become integers only through one
documented, truncating conversion, so every payout rounds the same way on every node (toward
zero; the dust stays in the paying account, as Allora's ``SdkIntTrim``).
"""

from __future__ import annotations

import math

from alloranet.errors import ValidationError


def to_base_units(amount: float) -> int:
    """Truncate a non-negative finite float amount to whole base units (floor)."""
    if not math.isfinite(amount):
        raise ValidationError(f"token amount must be finite, got {amount!r}")
    if amount < 0.0:
        raise ValidationError(f"token amount must be >= 0, got {amount!r}")
    return math.trunc(amount)
