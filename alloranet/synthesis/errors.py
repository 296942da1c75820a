"""Typed errors of the synthesis maths."""

from __future__ import annotations

from alloranet.errors import ValidationError


class SynthesisError(ValidationError):
    """Inputs the synthesis cannot work with (no inferences, wrong shapes, bad values)."""
