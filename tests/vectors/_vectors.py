"""Shared loading of the reference vectors and the worst-error bookkeeping."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

_REPO = Path(__file__).resolve().parents[2]
#: The reference vectors live beside the repository in ../shared (or set ALLORANET_VECTORS).
VECTORS = Path(os.environ.get("ALLORANET_VECTORS", _REPO.parent / "shared" / "vectors" / "allora"))
_PRESENT = (VECTORS / "synthesis_epoch_300.json").is_file()
if not _PRESENT and os.environ.get("CI"):
    # In CI the vectors must be there: a silent skip would hide a conformance failure.
    raise RuntimeError(f"reference vectors not found at {VECTORS} (CI requires them)")

requires_vectors = pytest.mark.skipif(
    not _PRESENT,
    reason=f"reference vectors not found at {VECTORS} (set ALLORANET_VECTORS)",
)


def load(name: str) -> Any:
    return json.loads((VECTORS / name).read_text())


def rel_error(got: Any, expected: Any) -> float:
    """Worst relative error between two (nested) number lists; NaN/None must match."""
    g = np.array(got, dtype=np.float64)
    e = np.array(expected, dtype=np.float64)
    assert g.shape == e.shape, (g.shape, e.shape)
    assert np.array_equal(np.isnan(g), np.isnan(e))
    ok = ~np.isnan(e)
    if not np.any(ok):
        return 0.0
    denom = np.maximum(np.abs(e[ok]), 1e-300)
    return float(np.max(np.abs(g[ok] - e[ok]) / denom))
