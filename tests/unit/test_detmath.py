"""The deterministic kernels: vector == scalar twin bit for bit on >= 1,000,000 inputs per
function across the whole range (extremes, subnormals, specials), and <= 2 ulp from math.*.

The scalar twin is pure Python; over 1M inputs it takes about 0.5 s per function here.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pytest

from alloranet.synthesis import detmath

SEED = 20261122
N = 1_000_000


def _bits(a: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
    return np.asarray(a, dtype=np.float64).view(np.int64)


def _ulps(got: npt.NDArray[np.float64], ref: npt.NDArray[np.float64]) -> float:
    finite = np.isfinite(ref)
    assert np.array_equal(_bits(got[~finite]), _bits(ref[~finite])) or np.array_equal(
        np.isnan(got[~finite]), np.isnan(ref[~finite])
    )
    spacing = np.spacing(np.abs(ref[finite]))
    return float(np.max(np.abs(got[finite] - ref[finite]) / spacing))


def _exp_inputs() -> npt.NDArray[np.float64]:
    rng = np.random.default_rng(SEED)
    specials = np.array(
        [
            0.0,
            -0.0,
            5e-324,
            -5e-324,
            1e-310,
            -1e-310,
            1e-300,
            709.78,
            709.782712893384,
            -745.13,
            -745.1332191019411,
            -708.4,
            -740.0,
            1.0,
            -1.0,
            0.5 * math.log(2),
        ]
    )
    parts = [
        rng.uniform(-745.13, 709.78, N // 2),
        rng.uniform(-40.0, 40.0, N // 4),
        rng.standard_normal(N // 8) * 1e-8,
        # subnormal results: e^x for x in [-745, -708]
        rng.uniform(-745.13, -708.4, N - N // 2 - N // 4 - N // 8 - specials.size),
        specials,
    ]
    return np.concatenate(parts)


def _log_inputs() -> npt.NDArray[np.float64]:
    rng = np.random.default_rng(SEED + 1)
    subnormals = rng.integers(1, 2**52, N // 8, dtype=np.int64).view(np.float64)
    wide = np.ldexp(rng.uniform(0.5, 1.0, N // 2), rng.integers(-1021, 1024, N // 2))
    near_one = 1.0 + rng.standard_normal(N // 8) * 1e-6
    specials = np.array(
        [
            5e-324,
            2.2250738585072014e-308,
            1.7976931348623157e308,
            1.0,
            np.nextafter(1.0, 2.0),
            np.nextafter(1.0, 0.0),
            2.0,
            0.5,
            10.0,
        ]
    )
    rest = rng.uniform(1e-3, 1e3, N - N // 8 - N // 2 - N // 8 - specials.size)
    return np.concatenate([subnormals, wide, near_one, rest, specials])


@pytest.mark.parametrize(
    ("name", "vec", "scalar", "ref", "inputs"),
    [
        ("exp", detmath.exp, detmath.exp_scalar, math.exp, _exp_inputs),
        ("log", detmath.log, detmath.log_scalar, math.log, _log_inputs),
    ],
)
def test_kernel_equals_scalar_twin_and_is_within_2_ulp(name, vec, scalar, ref, inputs) -> None:  # type: ignore[no-untyped-def]
    x = inputs()
    assert x.size >= N
    got = vec(x)
    twin = np.fromiter((scalar(float(v)) for v in x), dtype=np.float64, count=x.size)
    mismatch = np.flatnonzero(_bits(got) != _bits(twin))
    assert mismatch.size == 0, f"{name}: vector != scalar at x={x[mismatch[:5]]} (seed {SEED})"
    reference = np.fromiter((ref(float(v)) for v in x), dtype=np.float64, count=x.size)
    ulps = _ulps(got, reference)
    print(f"{name}: {x.size} inputs, vector == scalar, max error {ulps:.2f} ulp")
    assert ulps <= 2.0, f"{name}: {ulps} ulp (seed {SEED})"


def test_log1p_log10_power() -> None:
    rng = np.random.default_rng(SEED + 2)
    wide = 10.0 ** rng.uniform(-300, 300, 100_000)
    x = np.concatenate([rng.uniform(-0.999, 50.0, 100_000), wide])
    got = detmath.log1p(x)
    twin = np.array([detmath.log1p_scalar(float(v)) for v in x])
    assert np.array_equal(_bits(got), _bits(twin))
    assert _ulps(got, np.array([math.log1p(float(v)) for v in x])) <= 2.0
    y = x[x > 0]
    got10 = detmath.log10(y)
    twin10 = np.array([detmath.log10_scalar(float(v)) for v in y])
    assert np.array_equal(_bits(got10), _bits(twin10))
    assert _ulps(got10, np.array([math.log10(float(v)) for v in y])) <= 2.0
    b = rng.uniform(0.0, 1e7, 10_000)
    for e in (0.25, 0.5, 1.0, 3.0, 1.7):
        pv = detmath.power(b, e)
        ps = np.array([detmath.power_scalar(float(v), e) for v in b])
        assert np.array_equal(_bits(pv), _bits(ps))
        assert np.allclose(pv, b**e, rtol=1e-13, atol=0.0)


def test_specials() -> None:
    assert detmath.exp_scalar(float("inf")) == float("inf")
    assert detmath.exp_scalar(-float("inf")) == 0.0
    assert math.isnan(detmath.exp_scalar(float("nan")))
    assert float(detmath.exp(np.array([np.inf]))[0]) == np.inf
    assert float(detmath.exp(np.array([-np.inf]))[0]) == 0.0
    assert detmath.log_scalar(0.0) == -float("inf")
    assert math.isnan(detmath.log_scalar(-1.0))
    assert float(detmath.log(np.array([0.0]))[0]) == -np.inf
    assert np.isnan(detmath.log(np.array([-1.0]))[0])
    assert detmath.exp_scalar(0.0) == 1.0 and detmath.log_scalar(1.0) == 0.0


def test_fast_paths_equal_scalar_twin() -> None:
    """The whole-array fast paths (exp with every input in [-700, 709.78]: power of two built
    from its bits; log with every input finite and positive: no special-case fix-ups) are
    taken only when a whole array qualifies, which the mixed inputs above never do."""
    rng = np.random.default_rng(SEED + 3)
    xe = np.concatenate(
        [rng.uniform(-700.0, 709.78, 100_000), rng.uniform(-5.0, 5.0, 100_000), [-700.0, 0.0]]
    )
    got = detmath.exp(xe)
    twin = np.fromiter((detmath.exp_scalar(float(v)) for v in xe), np.float64, xe.size)
    assert np.array_equal(_bits(got), _bits(twin)), f"exp fast path (seed {SEED + 3})"
    xl = np.concatenate(
        [
            np.ldexp(rng.uniform(0.5, 1.0, 100_000), rng.integers(-1021, 1024, 100_000)),
            rng.integers(1, 2**52, 1000, dtype=np.int64).view(np.float64),  # subnormals
            1.0 + rng.standard_normal(10_000) * 1e-9,
        ]
    )
    got_l = detmath.log(xl)
    twin_l = np.fromiter((detmath.log_scalar(float(v)) for v in xl), np.float64, xl.size)
    assert np.array_equal(_bits(got_l), _bits(twin_l)), f"log fast path (seed {SEED + 3})"


def test_log1p_with_and_without_special_inputs_equals_scalar_twin() -> None:
    """log1p skips its selects when no input is tiny (1 + x == 1) or infinite; batches with
    and without such inputs, and each input alone, must give the scalar twin's bits."""
    rng = np.random.default_rng(SEED + 7)
    ordinary = np.concatenate([rng.uniform(-0.999, 50.0, 500), 10.0 ** rng.uniform(-15, 300, 500)])
    special = np.array([0.0, -0.0, 1e-17, -1e-300, 5e-324, np.inf, -np.inf, np.nan, -1.0, -2.0])
    for x in (ordinary, np.concatenate([ordinary, special]), special):
        got = detmath.log1p(x)
        twin = np.array([detmath.log1p_scalar(float(v)) for v in x])
        assert np.array_equal(_bits(got), _bits(twin))
    for v in special:
        one = detmath.log1p(np.array([v]))
        assert np.array_equal(_bits(one), _bits(np.array([detmath.log1p_scalar(float(v))])))


def test_log_of_scalars_and_matrices_keeps_shape_and_bits() -> None:
    """The in-place log kernel handles 0-d inputs (through a 1-element array) and any shape."""
    for v in (2.0, 1e-310, 0.0, -1.0, math.inf):
        got = detmath.log(v)
        assert got.shape == ()
        assert _bits(np.array([float(got)]))[0] == _bits(np.array([detmath.log_scalar(v)]))[0]
    m = np.array([[0.5, 2.0, 7.0], [1e-300, 3.0, 1e300]])
    got = detmath.log(m)
    assert got.shape == m.shape
    twin = np.array([[detmath.log_scalar(float(v)) for v in row] for row in m])
    assert np.array_equal(_bits(got), _bits(twin))
