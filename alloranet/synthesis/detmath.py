"""Deterministic exp, log and their derivatives from correctly rounded operations only.

Why: ``numpy.exp``/``log``/``power`` and ``math.exp``/``log`` are not bit-reproducible across
CPUs and libraries (DESIGN.md section 4). Here every result is built from IEEE-754 +, -, *, /,
floor, frexp and ldexp (all exact or correctly rounded) in a fixed order without fused
multiply-add, so every node gets the same bits. The algorithms are fdlibm's (``e_exp.c``,
``e_log.c``): range reduction by powers of two plus a short rational/polynomial kernel; both
are accurate to < 1 ulp. Each vector kernel (``exp``, ``log``, ...) has a pure-Python scalar
twin (``exp_scalar``, ...) doing exactly the same operations; a test proves them bit-identical.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_INV_LN2 = 1.44269504088896338700e00
_EXP_OVERFLOW = 7.09782712893383973096e02
_EXP_UNDERFLOW = -7.45133219101941108420e02
_P1 = 1.66666666666666019037e-01
_P2 = -2.77777777770155933842e-03
_P3 = 6.61375632143793436117e-05
_P4 = -1.65339022054652515390e-06
_P5 = 4.13813679705723846039e-08

_LG1 = 6.666666666666735130e-01
_LG2 = 3.999999999940941908e-01
_LG3 = 2.857142874366239149e-01
_LG4 = 2.222219843214978396e-01
_LG5 = 1.818357216161805012e-01
_LG6 = 1.531383769920937332e-01
_LG7 = 1.479819860511658591e-01
_SQRT_HALF = 0.70710678118654757
_INV_LN10 = 0.43429448190325182765


def _zero_d(x: float) -> FloatArray:
    """A read-only 0-d float64 array of x: as an operand it gives the same float64 operation
    as the Python float, without numpy converting the scalar on every call (~0.3 us each,
    which matters at the sizes of a small epoch, where the kernels are ~25 calls)."""
    a = np.array(x, dtype=np.float64)
    a.flags.writeable = False
    return a


_A_LN2_HI = _zero_d(_LN2_HI)
_A_LN2_LO = _zero_d(_LN2_LO)
_A_INV_LN2 = _zero_d(_INV_LN2)
_A_P1 = _zero_d(_P1)
_A_P2 = _zero_d(_P2)
_A_P3 = _zero_d(_P3)
_A_P4 = _zero_d(_P4)
_A_P5 = _zero_d(_P5)
_A_LG1 = _zero_d(_LG1)
_A_LG2 = _zero_d(_LG2)
_A_LG3 = _zero_d(_LG3)
_A_LG4 = _zero_d(_LG4)
_A_LG5 = _zero_d(_LG5)
_A_LG6 = _zero_d(_LG6)
_A_LG7 = _zero_d(_LG7)
_A_SQRT_HALF = _zero_d(_SQRT_HALF)
_A_HALF = _zero_d(0.5)
_A_ONE = _zero_d(1.0)
_A_TWO = _zero_d(2.0)
_A_ZERO = _zero_d(0.0)
_A_EXP_BIAS = np.array(1022, dtype=np.int64)
_A_EXP_SHIFT = np.array(52, dtype=np.int64)
_A_EXP_BIAS.flags.writeable = False
_A_EXP_SHIFT.flags.writeable = False


def _as_array(x: npt.ArrayLike) -> FloatArray:
    return np.asarray(x, dtype=np.float64)


# ----------------------------------------------------------------------------------- exp


def _exp_k_into(xa: FloatArray, k: FloatArray) -> FloatArray:
    """k = floor(x / ln 2 + 0.5) into ``k``: the reduction's multiple of ln 2."""
    np.multiply(xa, _A_INV_LN2, out=k)
    k += _A_HALF
    np.floor(k, out=k)
    return k


def _exp_reduced_into(
    xa: FloatArray, k: FloatArray, hi: FloatArray, lo: FloatArray, r: FloatArray,
    t: FloatArray, c: FloatArray,
) -> FloatArray:  # fmt: skip
    """y = 1 - ((lo - r c / (2 - c)) - hi), the reduced argument's exp (e**x = y 2**k), for
    a finite ``k``: exp_scalar's operations in its order, each into the given buffers (the
    shape of ``xa``; the result is in ``t``, and ``r`` is overwritten)."""
    np.multiply(k, _A_LN2_HI, out=hi)
    np.subtract(xa, hi, out=hi)  # hi = x - k ln2_hi
    np.multiply(k, _A_LN2_LO, out=lo)
    np.subtract(hi, lo, out=r)
    np.multiply(r, r, out=t)
    np.multiply(t, _A_P5, out=c)
    c += _A_P4
    c *= t
    c += _A_P3
    c *= t
    c += _A_P2
    c *= t
    c += _A_P1
    c *= t
    np.subtract(r, c, out=c)  # c = r - t (P1 + t (P2 + ...))
    y = np.multiply(r, c, out=t)
    den = np.subtract(_A_TWO, c, out=r)
    y /= den
    np.subtract(lo, y, out=y)
    y -= hi
    np.subtract(_A_ONE, y, out=y)
    return y


def exp_in_range_into(
    xa: FloatArray, k: FloatArray, hi: FloatArray, lo: FloatArray, r: FloatArray,
    t: FloatArray, c: FloatArray, bits: npt.NDArray[np.int64],
) -> FloatArray:  # fmt: skip
    """:func:`exp` of ``xa`` with every value in [-700, 709.78] (no NaN), computed in the
    given buffers of its shape (``bits`` int64): for callers that keep scratch buffers. The
    result is in ``t``; ``xa`` is not touched.

    Why a separate scaling: k is in [-1010, 1024] and y in [0.7, 1.42] here, so y 2^(k-1) 2
    is exact, and 2^(k-1) is built from its bits: the same exact result as ldexp, without
    its slow loop."""
    _exp_k_into(xa, k)
    y = _exp_reduced_into(xa, k, hi, lo, r, t, c)
    np.copyto(bits, k, casting="unsafe")
    bits += _A_EXP_BIAS
    bits <<= _A_EXP_SHIFT
    y *= bits.view(np.float64)
    y *= _A_TWO
    return y


def exp(x: npt.ArrayLike) -> FloatArray:
    """e**x elementwise; inf above 709.78, +0 below -745.13, NaN stays NaN."""
    xa = _as_array(x)
    if xa.ndim == 0:  # the in-place steps need real arrays
        return np.asarray(exp(xa.reshape(1)).reshape(()), dtype=np.float64)
    if xa.size == 0:
        return xa.copy()
    # np.min/np.max, unwrapped: NaN propagates, failing the range test
    lo_x, hi_x = np.minimum.reduce(xa, axis=None), np.maximum.reduce(xa, axis=None)
    in_range = bool(lo_x >= _EXP_UNDERFLOW and hi_x <= _EXP_OVERFLOW)
    # in-place steps (out=) keep the exact operation order of exp_scalar while avoiding a
    # fresh array per operation; constants as 0-d arrays (_A_*), see _zero_d
    k, hi, lo, r, t, c = (np.empty(xa.shape) for _ in range(6))
    with np.errstate(all="ignore"):
        if in_range and lo_x >= -700.0:
            y = exp_in_range_into(xa, k, hi, lo, r, t, c, np.empty(xa.shape, dtype=np.int64))
            return np.asarray(y, dtype=np.float64)
        _exp_k_into(xa, k)
        if not in_range:
            k = np.where(np.isfinite(k), k, 0.0)
        y = _exp_reduced_into(xa, k, hi, lo, r, t, c)
        out = np.ldexp(y, k.astype(np.int64))
        if not in_range:
            out = np.where(xa > _EXP_OVERFLOW, np.inf, out)
            out = np.where(xa < _EXP_UNDERFLOW, 0.0, out)
            out = np.where(np.isnan(xa), np.nan, out)
    return np.asarray(out, dtype=np.float64)


def exp_scalar(x: float) -> float:
    """Scalar twin of :func:`exp`: the same operations in the same order."""
    if x != x:
        return math.nan
    if x > _EXP_OVERFLOW:
        return math.inf
    if x < _EXP_UNDERFLOW:
        return 0.0
    k = math.floor(x * _INV_LN2 + 0.5)
    kf = float(k)
    hi = x - kf * _LN2_HI
    lo = kf * _LN2_LO
    r = hi - lo
    t = r * r
    c = r - t * (_P1 + t * (_P2 + t * (_P3 + t * (_P4 + t * _P5))))
    y = 1.0 - ((lo - (r * c) / (2.0 - c)) - hi)
    return math.ldexp(y, k)


# ----------------------------------------------------------------------------------- log


def log(x: npt.ArrayLike) -> FloatArray:
    """Natural log elementwise; -inf at 0, NaN below 0, inf at inf."""
    xa = _as_array(x)
    if xa.ndim == 0:  # the in-place steps need real arrays
        return np.asarray(log(xa.reshape(1)).reshape(()), dtype=np.float64)
    with np.errstate(all="ignore"):
        # in-place steps (out=) keep the exact operation order of log_scalar while avoiding
        # a fresh array per operation; a * b and b * a, a + b and b + a are the same bits
        # constants as 0-d arrays (_A_*): the same float64 operations, see _zero_d
        m, e = np.frexp(xa)
        small = np.less(m, _A_SQRT_HALF)
        np.multiply(m, _A_TWO, out=m, where=small)
        e -= small  # exact integer exponents
        kf = e.astype(np.float64)
        f = m
        f -= _A_ONE
        s = np.add(_A_TWO, f)
        np.divide(f, s, out=s)  # s = f / (2 + f)
        z = s * s
        w = z * z
        t1 = np.multiply(w, _A_LG6)
        t1 += _A_LG4
        t1 *= w
        t1 += _A_LG2
        t1 *= w  # t1 = w (LG2 + w (LG4 + w LG6))
        t2 = np.multiply(w, _A_LG7)
        t2 += _A_LG5
        t2 *= w
        t2 += _A_LG3
        t2 *= w
        t2 += _A_LG1
        t2 *= z  # t2 = z (LG1 + w (LG3 + w (LG5 + w LG7)))
        t2 += t1  # R = t2 + t1
        hfsq = np.multiply(f, _A_HALF)
        hfsq *= f  # hfsq = 0.5 f f
        t2 += hfsq
        t2 *= s  # s (hfsq + R)
        t1 = np.multiply(kf, _A_LN2_LO, out=t1)
        t2 += t1  # s (hfsq + R) + k ln2_lo
        np.subtract(hfsq, t2, out=t2)
        t2 -= f
        out = np.multiply(kf, _A_LN2_HI, out=kf)
        out -= t2  # k ln2_hi - ((hfsq - (s (hfsq + R) + k ln2_lo)) - f)
        if (
            xa.size
            and np.minimum.reduce(xa, axis=None) > 0.0
            and (np.maximum.reduce(xa, axis=None) < np.inf)
        ):
            # every input finite and positive (NaN fails both tests): no special case applies
            return out
        out = np.where(xa == 0.0, -np.inf, out)
        out = np.where(xa < 0.0, np.nan, out)
        out = np.where(xa == np.inf, np.inf, out)
        out = np.where(np.isnan(xa), np.nan, out)
    return np.asarray(out, dtype=np.float64)


def log_scalar(x: float) -> float:
    """Scalar twin of :func:`log`."""
    if x != x or x < 0.0:
        return math.nan
    if x == 0.0:
        return -math.inf
    if x == math.inf:
        return math.inf
    m, e = math.frexp(x)
    if m < _SQRT_HALF:
        m = m * 2.0
        e = e - 1
    kf = float(e)
    f = m - 1.0
    s = f / (2.0 + f)
    z = s * s
    w = z * z
    t1 = w * (_LG2 + w * (_LG4 + w * _LG6))
    t2 = z * (_LG1 + w * (_LG3 + w * (_LG5 + w * _LG7)))
    big_r = t2 + t1
    hfsq = 0.5 * f * f
    return kf * _LN2_HI - ((hfsq - (s * (hfsq + big_r) + kf * _LN2_LO)) - f)


# ------------------------------------------------------------------- derived functions


def log10(x: npt.ArrayLike) -> FloatArray:
    """log10(x) = log(x) / ln 10, as one extra correctly rounded multiply."""
    return np.asarray(log(x) * _INV_LN10, dtype=np.float64)


def log10_scalar(x: float) -> float:
    """Scalar twin of :func:`log10`."""
    return log_scalar(x) * _INV_LN10


def log1p(x: npt.ArrayLike) -> FloatArray:
    """ln(1 + x), accurate for tiny x (Goldberg's trick: log(u) * x / (u - 1), u = 1 + x)."""
    xa = _as_array(x)
    with np.errstate(all="ignore"):
        u = 1.0 + xa
        d = u - 1.0
        if not (d == 0.0).any() and not (xa == np.inf).any():
            # no input too tiny to move 1 + x and none infinite (the usual case): neither
            # special case below applies, the same operations without the selects
            return np.asarray(log(u) * (xa / d), dtype=np.float64)
        ratio = np.where(d == 0.0, 1.0, xa / np.where(d == 0.0, 1.0, d))
        out = np.where(d == 0.0, xa, log(u) * ratio)
        out = np.where(xa == np.inf, np.inf, out)
    return np.asarray(out, dtype=np.float64)


def log1p_scalar(x: float) -> float:
    """Scalar twin of :func:`log1p`."""
    u = 1.0 + x
    d = u - 1.0
    if d == 0.0:
        return x
    if x == math.inf:
        return math.inf
    return log_scalar(u) * (x / d)


def power(base: npt.ArrayLike, exponent: float) -> FloatArray:
    """base**exponent for base >= 0: exact paths for 0, 0.5 (sqrt) and small integers,
    otherwise exp(exponent * log(base))."""
    b = _as_array(base)
    if exponent == 0.0:
        return np.ones_like(b)
    if exponent == 0.5:
        return np.asarray(np.sqrt(b), dtype=np.float64)
    if exponent == float(int(exponent)) and 1 <= exponent <= 16:
        out = b.copy()
        for _ in range(int(exponent) - 1):
            out = out * b
        return out
    with np.errstate(all="ignore"):
        res = exp(exponent * log(b))
        return np.asarray(np.where(b == 0.0, 0.0 if exponent > 0 else np.inf, res), np.float64)


def power_scalar(base: float, exponent: float) -> float:
    """Scalar twin of :func:`power`."""
    if exponent == 0.0:
        return 1.0
    if exponent == 0.5:
        return math.sqrt(base)
    if exponent == float(int(exponent)) and 1 <= exponent <= 16:
        out = base
        for _ in range(int(exponent) - 1):
            out = out * base
        return out
    if base == 0.0:
        return 0.0 if exponent > 0 else math.inf
    return exp_scalar(exponent * log_scalar(base))
