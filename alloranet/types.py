"""Shared vocabulary: units and the aliases every layer uses.

Money, stake and voting power are integers of base units (uallo); floats never become token
amounts except through one truncating conversion (DESIGN.md section 4).
"""

from __future__ import annotations

from typing import Final, NewType

#: Base units per ALLO (1 ALLO = 10**18 uallo).
UALLO_PER_ALLO: Final = 10**18
#: The maximum supply of the chain, in base units (1,000,000,000 ALLO).
MAX_SUPPLY_UALLO: Final = 1_000_000_000 * UALLO_PER_ALLO

Address = NewType("Address", str)
Height = int
Hash = bytes


def allo(amount: int) -> int:
    """Whole ALLO to base units."""
    return amount * UALLO_PER_ALLO
