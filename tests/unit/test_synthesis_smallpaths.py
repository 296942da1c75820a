"""The small-size Python-float paths of synthesis (session 3) against the array paths they
stand in for: same bits for any input, including the awkward ones (coefficients at 0 or 1,
signed zeros, NaN, zero stakes, huge learning rates that clip and rescale every step).

Why: at 32 inferers and 5 reputers an epoch's cost is numpy's per-call overhead, so short
loops run on Python floats; IEEE-754 +, -, *, / and sqrt are correctly rounded in both, but
the paths must also agree on every edge numpy handles silently (division by zero, NaN in a
maximum, which zero ``clip`` returns).
"""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alloranet.synthesis import scores
from alloranet.synthesis.scenario import make_scenario


def _bits(a: np.ndarray) -> bytes:
    return np.asarray(a, dtype=np.float64).tobytes()


def _both_loops(
    monkeypatch: pytest.MonkeyPatch, seed: int, m: int, coeff: list[float], **kw: float
) -> tuple[scores.ReputerScoring, scores.ReputerScoring]:
    s = make_scenario(seed, 9, 3, m)
    reports = s.reports.reports
    fast = scores.reputer_scores(reports, np.array(coeff), **kw)  # type: ignore[arg-type]
    monkeypatch.setattr(scores, "_PY_LOOP_MAX", 0)
    ref = scores.reputer_scores(reports, np.array(coeff), **kw)  # type: ignore[arg-type]
    monkeypatch.undo()
    return fast, ref


def _assert_same(fast: scores.ReputerScoring, ref: scores.ReputerScoring) -> None:
    assert _bits(fast.scores) == _bits(ref.scores)
    assert _bits(fast.coefficients) == _bits(ref.coefficients)
    assert _bits(fast.adjusted_stakes) == _bits(ref.adjusted_stakes)


@settings(max_examples=120, deadline=None)
@given(
    seed=st.integers(0, 2**20),
    m=st.integers(1, 7),
    coeff=st.lists(
        st.one_of(
            st.floats(0.0, 1.0),
            st.sampled_from([0.0, -0.0, 1.0, 0.999, 1e-300, float("nan"), 1.5, -0.2]),
        ),
        min_size=7,
        max_size=7,
    ),
    learning_rate=st.sampled_from([0.05, 0.5, 5.0, 1e-9]),
    min_stake_fraction=st.sampled_from([0.0, 0.5, 0.95, 0.999]),
    threshold=st.sampled_from([0.001, 0.0, 1e-12]),
    iters=st.sampled_from([1, 3, 10, 40]),
)
def test_float_gradient_loop_equals_array_loop(
    seed: int,
    m: int,
    coeff: list[float],
    learning_rate: float,
    min_stake_fraction: float,
    threshold: float,
    iters: int,
) -> None:
    """reputer_scores with the Python-float loop (M <= _PY_LOOP_MAX) gives the bits of the
    array loop for any coefficients and loop parameters."""
    with pytest.MonkeyPatch.context() as mp:
        fast, ref = _both_loops(
            mp,
            seed,
            m,
            coeff[:m],
            learning_rate=learning_rate,
            min_stake_fraction=min_stake_fraction,
            max_gradient_threshold=threshold,
            max_iters=iters,
        )
    _assert_same(fast, ref)


def test_float_gradient_loop_with_zero_stakes_and_gaps(monkeypatch: pytest.MonkeyPatch) -> None:
    """Zero stakes (zero performance sums: numpy's inf/NaN, not Python's exception) and
    reports with gaps (the consensus scorer instead of the Gram one) agree too."""
    s = make_scenario(3, 9, 3, 4)
    r = s.reports.reports
    stakes = np.array([0.0, 2e5, 0.0, 1e5])
    gappy = r.inferer.copy()
    gappy[1, 2] = np.nan
    for rep in (
        type(r)(stakes, *[getattr(r, f) for f in r.__dataclass_fields__ if f != "stakes"]),
        type(r)(
            r.stakes,
            *[gappy if f == "inferer" else getattr(r, f) for f in r.__dataclass_fields__][1:],
        ),
    ):
        for coeff in ([1.0, 1.0, 1.0, 1.0], [0.0, 0.3, 1.0, 0.7]):
            fast = scores.reputer_scores(rep, np.array(coeff), learning_rate=0.5)
            monkeypatch.setattr(scores, "_PY_LOOP_MAX", 0)
            ref = scores.reputer_scores(rep, np.array(coeff), learning_rate=0.5)
            monkeypatch.undo()
            _assert_same(fast, ref)


@pytest.mark.parametrize(
    "x", [0.5, 0.0, -0.0, 1.0, 1.0000000000000002, -1e-300, 2.0, float("nan"), float("inf")]
)
def test_clip01_is_numpy_clip(x: float) -> None:
    want = float(np.array([x]).clip(0.0, 1.0)[0])
    assert struct.pack("<d", scores._clip01(x)) == struct.pack("<d", want)


@pytest.mark.parametrize(("a", "b"), [(1.0, 0.0), (-1.0, 0.0), (0.0, 0.0), (1.0, -0.0), (3.0, 2.0)])
def test_div_is_numpy_division(a: float, b: float) -> None:
    with np.errstate(all="ignore"):
        want = float(np.float64(a) / np.float64(b))
        got = scores._div(a, b)
    assert struct.pack("<d", got) == struct.pack("<d", want)
