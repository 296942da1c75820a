"""Typed errors of the synthesis maths."""

from __future__ import annotations

import operator

from alloranet.errors import ValidationError


class SynthesisError(ValidationError):
    """Inputs the synthesis cannot work with (no inferences, wrong shapes, bad values)."""


def require_sorted_unique(addresses: tuple[str, ...], what: str) -> None:
    """Every address list the maths takes is sorted and duplicate-free (outputs are independent
    of input order only because of it): a SynthesisError otherwise."""
    # all(a < b) over neighbours (== not any(a >= b) for strings), compared in C
    if not all(map(operator.lt, addresses, addresses[1:])):
        raise SynthesisError(f"{what} addresses must be sorted and unique")
